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
from typing import Any, Protocol

from gateway.config.settings import GatewaySettings
from gateway.errors import SecurityError
from gateway.security.signing import (
    Caller,
    CommandRefusedError,
    ReplayCache,
    Verifier,
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


@dataclass(frozen=True, slots=True)
class SignedCommands:
    """Obey trusted operators' signed commands only."""

    verifier: Verifier
    signed: bool = True

    def authorize(
        self, command: str, payload: dict[str, Any]
    ) -> tuple[Caller | None, dict[str, Any]]:
        """Verify the signature, target, freshness and nonce."""
        caller, rest = self.verifier.verify(command, payload)
        return caller, rest


def authorizer_for(settings: GatewaySettings) -> Authorizer:
    """The policy ``settings`` ask for (never raises: a broken trust file refuses all)."""
    sec = settings.security
    if sec.unsigned_commands:
        log.warning("unsigned commands are obeyed: anyone on the broker can command this unit")
        return UnsignedCommands()
    if sec.trusted_operators is None:
        return RefuseAll("this unit has no trusted operators (security.trusted_operators)")
    try:
        trusted = load_trusted_operators(
            sec.trusted_operators.read_bytes(), str(sec.trusted_operators)
        )
    except OSError as exc:
        reason = f"cannot read {sec.trusted_operators}: {exc.strerror}"
        log.error("every command will be refused: %s", reason)
        return RefuseAll(reason)
    except SecurityError as exc:
        log.error("every command will be refused: %s", exc)
        return RefuseAll(str(exc))
    if not trusted:
        return RefuseAll(f"{sec.trusted_operators} names no operator")
    gw = settings.gateway
    replay = ReplayCache(
        sec.replay_cache_size, sec.command_max_age_s, gw.data_dir / "command-nonces.json"
    )
    return SignedCommands(Verifier(trusted, f"{gw.site}/{gw.id}", sec.command_max_age_s, replay))


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
