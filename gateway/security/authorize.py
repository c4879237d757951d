"""Who may run a command on this unit: the policy the command handler asks before anything runs.

Three policies, chosen by ``[security]``:

- :class:`SignedCommands` (``trusted_operators`` set): only commands signed by a trusted
  operator (:mod:`gateway.security.signing`); replies go only into the caller's own
  reply space ``{base}/reply/{caller}/``; a read-only operator runs read-only commands.
- :class:`RefuseAll` (no trusted operators, or their file cannot be read): every
  command is refused with the reason.
- :class:`UnsignedCommands` (``unsigned_commands = true``): anyone who can publish to
  the unit's ``cmd`` topics is obeyed (labs and tests).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from gateway.config.settings import GatewaySettings
from gateway.errors import SecurityError
from gateway.security.files import PUBLIC, write_secure
from gateway.security.pki import load_certificate
from gateway.security.signing import (
    Caller,
    CommandRefusedError,
    ReplayCache,
    Verifier,
    load_fleet_operators,
    load_trusted_operators,
)

log = logging.getLogger(__name__)

_OPERATOR = re.compile(r"^operator:[A-Za-z0-9_.-]{1,64}$")


class Authorizer(Protocol):
    """The command policy of one unit."""

    @property
    def signed(self) -> bool:
        """Whether callers are known (replies then go only into the caller's space)."""

    def authorize(
        self, command: str, payload: dict[str, Any]
    ) -> tuple[Caller | None, dict[str, Any]]:
        """Return the caller and the payload without ``auth``, or raise the refusal."""

    def set_trust(self, pem: str) -> list[str]:
        """Replace the trusted operators (``set_trust``); return their names."""


def claimed_signer(payload: dict[str, Any]) -> str | None:
    """The ``auth.signer`` a payload claims, when it is an operator name (not yet verified)."""
    auth = payload.get("auth")
    signer = auth.get("signer") if isinstance(auth, dict) else None
    return signer if isinstance(signer, str) and _OPERATOR.fullmatch(signer) else None


@dataclass(frozen=True, slots=True)
class UnsignedCommands:
    """Obey everyone (``unsigned_commands = true``)."""

    signed: bool = False

    def authorize(
        self, command: str, payload: dict[str, Any]
    ) -> tuple[Caller | None, dict[str, Any]]:
        """Accept; an ``auth`` member is ignored."""
        return None, {k: v for k, v in payload.items() if k != "auth"}

    def set_trust(self, pem: str) -> list[str]:
        """Refuse: this unit obeys unsigned commands, it trusts nobody in particular."""
        raise CommandRefusedError("refused: this unit obeys unsigned commands (no trust to set)")


@dataclass(frozen=True, slots=True)
class RefuseAll:
    """Refuse every command, saying why."""

    reason: str
    signed: bool = True

    def authorize(
        self, command: str, payload: dict[str, Any]
    ) -> tuple[Caller | None, dict[str, Any]]:
        """Refuse."""
        raise CommandRefusedError(f"refused: {self.reason}")

    def set_trust(self, pem: str) -> list[str]:
        """Refuse (never reached: every command is refused first)."""
        raise CommandRefusedError(f"refused: {self.reason}")


@dataclass(frozen=True, slots=True)
class SignedCommands:
    """Obey trusted operators' signed commands only."""

    verifier: Verifier
    ca: x509.Certificate | None = None
    trust_path: Path | None = None
    signed: bool = True

    def authorize(
        self, command: str, payload: dict[str, Any]
    ) -> tuple[Caller | None, dict[str, Any]]:
        """Verify the signature, target, freshness and nonce."""
        caller, rest = self.verifier.verify(command, payload)
        return caller, rest

    def set_trust(self, pem: str) -> list[str]:
        """Check ``pem`` (operators of the fleet CA, an admin among them), save it, obey it."""
        if self.ca is None or self.trust_path is None:
            raise CommandRefusedError(
                "refused: the unit knows no fleet CA ([mqtt.tls] ca_file) to check operators by"
            )
        trusted = load_fleet_operators(pem.encode(), self.ca, "set_trust")
        write_secure(self.trust_path, pem.encode(), PUBLIC)
        self.verifier.replace_trusted(trusted)
        return sorted(trusted)


def trust_override(settings: GatewaySettings) -> Path:
    """Where ``set_trust`` keeps the operators it was given (they win over the bundle's)."""
    return settings.gateway.data_dir / "trusted-operators.pem"


def authorizer_for(settings: GatewaySettings) -> Authorizer:
    """The policy ``settings`` ask for (never raises: a broken trust file refuses all)."""
    sec = settings.security
    if sec.unsigned_commands:
        log.warning("unsigned commands are obeyed: anyone on the broker can command this unit")
        return UnsignedCommands()
    ca_file = settings.mqtt.tls.ca_file if settings.mqtt.tls else None
    override = trust_override(settings)
    source = override if override.exists() and ca_file else sec.trusted_operators
    if source is None:
        return RefuseAll("this unit has no trusted operators (security.trusted_operators)")
    try:
        data = source.read_bytes()
        ca = load_certificate(ca_file.read_bytes(), str(ca_file)) if ca_file else None
        if source == override and ca is not None:
            trusted = load_fleet_operators(data, ca, str(source))
        else:
            trusted = load_trusted_operators(data, str(source))
    except OSError as exc:
        reason = f"cannot read {exc.filename}: {exc.strerror}"
        log.error("every command will be refused: %s", reason)
        return RefuseAll(reason)
    except SecurityError as exc:
        log.error("every command will be refused: %s", exc)
        return RefuseAll(str(exc))
    if not trusted:
        return RefuseAll(f"{source} names no operator")
    gw = settings.gateway
    replay = ReplayCache(
        sec.replay_cache_size, sec.command_max_age_s, gw.data_dir / "command-nonces.json"
    )
    verifier = Verifier(trusted, f"{gw.site}/{gw.id}", sec.command_max_age_s, replay)
    return SignedCommands(verifier, ca=ca, trust_path=override)


def leaf_paths(patch: object, prefix: str = "") -> Iterable[str]:
    """The dotted paths a merge patch sets (``mqtt.port``), without their values."""
    if not isinstance(patch, dict) or not patch:
        yield prefix or "(root)"
        return
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path)
        else:
            yield path
