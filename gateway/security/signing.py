"""Signed commands: an operator's key signs the command, its target unit, a time and a nonce.

A signed command is the command's JSON object with one more member::

    "auth": {"v": 1, "signer": "operator:alice", "target": "east/rsu-0001",
             "command": "set_config", "ts": 1764590000.25, "nonce": "<32 hex>",
             "sig": "<base64 ECDSA P-256 SHA-256 signature, DER>"}

The signature covers :func:`signed_bytes`: a fixed context line and the canonical
JSON (sorted keys, no spaces, UTF-8) of ``auth`` without ``sig`` and of the rest of
the payload (arguments, ``reply_to`` and ``correlation`` included). The unit obeys a
command only when the signer is one of its trusted operators (their certificates
come with the enrollment bundle), the certificate is within its validity, the
signature verifies, ``target`` is this unit and ``command`` the topic's, ``ts`` is
within ``command_max_age_s`` of the unit's clock and the nonce was never accepted
before (:class:`ReplayCache`, kept on disk across restarts).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import SecurityError
from gateway.security.files import PRIVATE, write_secure
from gateway.security.identity import Role
from gateway.security.pki import identity_of

VERSION = 1
_CONTEXT = b"roadside-gateway signed command v1\n"
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_AUTH_KEYS = frozenset({"v", "signer", "target", "command", "ts", "nonce", "sig"})


class CommandRefusedError(SecurityError):
    """A command that is not authorized; its message is the error reply."""


def canonical(obj: object) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8, finite numbers only."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def signed_bytes(auth: dict[str, Any], payload: dict[str, Any]) -> bytes:
    """What the signature covers: ``auth`` without ``sig`` and the payload without ``auth``."""
    unsigned = {k: v for k, v in auth.items() if k != "sig"}
    return _CONTEXT + canonical({"auth": unsigned, "payload": payload})


def sign_command(
    command: str,
    target: str,
    payload: dict[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey,
    signer: str,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Return ``payload`` with its ``auth`` member, signed with ``key``."""
    if "auth" in payload:
        raise SecurityError("the payload already has an 'auth' member")
    auth: dict[str, Any] = {
        "v": VERSION,
        "signer": signer,
        "target": target,
        "command": command,
        "ts": round(time.time() if now is None else now, 3),
        "nonce": nonce or secrets.token_hex(16),
    }
    signature = key.sign(signed_bytes(auth, payload), ec.ECDSA(hashes.SHA256()))
    auth["sig"] = base64.b64encode(signature).decode()
    return {**payload, "auth": auth}


@dataclass(frozen=True, slots=True)
class TrustedOperator:
    """One operator whose signed commands the unit obeys."""

    name: str
    role: Role
    public_key: ec.EllipticCurvePublicKey
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent an accepted command (or made a change on the unit's console).

    A signed command has its signature's ``nonce`` and time; a console user
    (``console:<user>``, logged in on the unit itself) has neither.
    """

    name: str
    role: Role
    nonce: str | None
    issued_at: float | None


def load_trusted_operators(
    data: bytes, origin: str = "trusted operators"
) -> dict[str, TrustedOperator]:
    """Read a PEM file of operator certificates; :class:`SecurityError` when it is not one."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise SecurityError(f"{origin}: not a PEM file of certificates: {exc}") from exc
    out: dict[str, TrustedOperator] = {}
    for cert in certs:
        who = identity_of(cert)
        key = cert.public_key()
        if who.kind != "operator" or who.role is None:
            raise SecurityError(f"{origin}: {who.common_name!r} is not an operator certificate")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SecurityError(f"{origin}: {who.common_name!r} has no EC key")
        out[who.common_name] = TrustedOperator(
            who.common_name, who.role, key, cert.not_valid_before_utc, cert.not_valid_after_utc
        )
    return out


def load_fleet_operators(
    data: bytes, ca: x509.Certificate, origin: str
) -> dict[str, TrustedOperator]:
    """Operators from ``data`` that were all issued by ``ca``, with at least one admin."""
    trusted = load_trusted_operators(data, origin)
    for cert in x509.load_pem_x509_certificates(data):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            name = identity_of(cert).common_name
            raise SecurityError(f"{origin}: {name} was not issued by the fleet CA") from exc
    if not any(op.role == "admin" for op in trusted.values()):
        raise SecurityError(f"{origin}: names no admin (the unit could never be changed again)")
    return trusted


class _ReplayState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    floor: float = 0.0
    nonces: dict[str, float] = {}


class ReplayCache:
    """Nonces of accepted commands, bounded; a command at or below ``floor`` is refused.

    When the cache is full, the oldest nonce is forgotten and the floor rises to its
    time, so a forgotten nonce can never be accepted again. Entries older than the
    signature window are dropped first (such commands are refused as expired).
    The state is written to ``path`` (0600) after every accepted command.
    """

    def __init__(self, size: int, max_age_s: float, path: Path | None = None) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self.path = path
        self.state = _ReplayState()
        if path is not None and path.exists():
            try:
                self.state = _ReplayState.model_validate_json(path.read_bytes())
            except (ValidationError, OSError):
                # Unreadable: refuse everything signed before now (fail closed).
                self.state = _ReplayState(floor=time.time())

    def __len__(self) -> int:
        return len(self.state.nonces)

    def check(self, nonce: str, ts: float) -> None:
        """Raise :class:`CommandRefusedError` when ``nonce`` was used or ``ts`` is too old."""
        if nonce in self.state.nonces:
            raise CommandRefusedError("refused: replayed command (its nonce was already used)")
        if ts <= self.state.floor:
            raise CommandRefusedError(
                "refused: command older than the replay window (sign a new one)"
            )

    def add(self, nonce: str, ts: float, now: float) -> None:
        """Remember an accepted command's nonce."""
        nonces = self.state.nonces
        for old in [n for n, t in nonces.items() if t < now - self.max_age_s]:
            del nonces[old]
        nonces[nonce] = ts
        while len(nonces) > self.size:
            oldest = min(nonces, key=nonces.__getitem__)
            self.state.floor = max(self.state.floor, nonces.pop(oldest))
        if self.path is not None:
            write_secure(self.path, self.state.model_dump_json().encode(), PRIVATE)


class Verifier:
    """Checks signed commands for one unit (``target`` is ``<site>/<gateway>``)."""

    def __init__(
        self,
        trusted: dict[str, TrustedOperator],
        target: str,
        max_age_s: float,
        replay: ReplayCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trusted = trusted
        self.target = target
        self.max_age_s = max_age_s
        self.replay = replay
        self.clock = clock

    def replace_trusted(self, trusted: dict[str, TrustedOperator]) -> None:
        """Obey these operators from the next command on."""
        self.trusted = trusted

    def verify(self, command: str, payload: dict[str, Any]) -> tuple[Caller, dict[str, Any]]:
        """Return the caller and the payload without ``auth``; refuse with the reason."""
        auth = payload.get("auth")
        if auth is None:
            raise CommandRefusedError("refused: command is not signed")
        if not isinstance(auth, dict) or set(auth) != _AUTH_KEYS:
            raise CommandRefusedError(f"refused: 'auth' must have exactly {sorted(_AUTH_KEYS)}")
        rest = {k: v for k, v in payload.items() if k != "auth"}
        signer, ts, nonce = auth["signer"], auth["ts"], auth["nonce"]
        if auth["v"] != VERSION:
            raise CommandRefusedError(
                f"refused: signature version {auth['v']!r} (this unit reads 1)"
            )
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            raise CommandRefusedError("refused: auth.ts must be a number (seconds since the epoch)")
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise CommandRefusedError("refused: auth.nonce must be 32 lowercase hex digits")
        operator = self.trusted.get(signer) if isinstance(signer, str) else None
        if operator is None:
            raise CommandRefusedError(f"refused: {signer!r} is not a trusted operator of this unit")
        try:
            signature = base64.b64decode(auth["sig"], validate=True)
            operator.public_key.verify(
                signature, signed_bytes(auth, rest), ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, binascii.Error, TypeError, ValueError) as exc:
            raise CommandRefusedError(
                f"refused: the signature of {signer} does not verify"
            ) from exc
        if auth["target"] != self.target:
            raise CommandRefusedError(
                f"refused: the command is signed for {auth['target']!r}, "
                f"this unit is {self.target!r}"
            )
        if auth["command"] != command:
            raise CommandRefusedError(
                f"refused: the signature is for command {auth['command']!r}, not {command!r}"
            )
        now = self.clock()
        if abs(now - ts) > self.max_age_s:
            when = "old" if ts < now else "in the future"
            raise CommandRefusedError(
                f"refused: command signed {abs(now - ts):.0f} s {'ago' if ts < now else 'ahead'}"
                f" ({when}; the limit is {self.max_age_s:.0f} s: check the clocks)"
            )
        now_dt = dt.datetime.fromtimestamp(now, dt.UTC)
        if not operator.not_before <= now_dt <= operator.not_after:
            raise CommandRefusedError(f"refused: the certificate of {signer} is not valid now")
        self.replay.check(nonce, float(ts))
        self.replay.add(nonce, float(ts), now)
        return Caller(operator.name, operator.role, nonce, float(ts)), rest
