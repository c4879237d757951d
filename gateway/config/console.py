"""The crew console: a local web page served by ``gateway run`` (off by default)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.config.common import StrictModel

ConsoleRole = Literal["admin", "read-only"]
# scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>: what `gateway console passwd` writes.
PASSWORD_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]{16,}\$[A-Za-z0-9+/=]{32,}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
PASSWD_FIX = "set one with: gateway console passwd -c FILE --user NAME"


class ConsoleUser(StrictModel):
    """One console login: its role and the scrypt hash of its password."""

    role: ConsoleRole = Field(
        default="admin", description="admin: may change settings; read-only: may only look."
    )
    password_hash: str = Field(
        description="Written by `gateway console passwd` (never the password itself)."
    )

    @model_validator(mode="after")
    def _hash(self) -> ConsoleUser:
        if not PASSWORD_HASH.match(self.password_hash):
            raise ValueError(f"password_hash: not a hash written by the gateway ({PASSWD_FIX})")
        return self


class ConsoleConfig(StrictModel):
    """The crew console (``[console]``, with users in ``[console.users.<name>]``)."""

    enabled: bool = Field(default=False, description="Serve the console from `gateway run`.")
    bind: str = Field(
        default="0.0.0.0",
        min_length=1,
        description="Address to listen on: the unit's crew-facing interface, 0.0.0.0 for all.",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0: any free port).")
    tls_cert: Path | None = Field(default=None, description="PEM certificate: serve HTTPS.")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    users: dict[str, ConsoleUser] = Field(
        default_factory=dict, description="Logins by name (`gateway console passwd`)."
    )
    session_idle_s: float = Field(
        default=1800.0, gt=0, le=86_400, description="A session unused this long ends."
    )
    session_max_s: float = Field(
        default=12 * 3600.0,
        gt=0,
        le=7 * 86_400,
        description="A session ends this long after login.",
    )
    max_sessions: int = Field(
        default=16, ge=1, le=1024, description="Sessions kept at once (the oldest ends first)."
    )
    view_fps: float = Field(
        default=4.0,
        gt=0,
        le=15,
        description="Live-view frames encoded per camera per second, at most.",
    )
    view_max_width: int = Field(
        default=960, ge=160, le=3840, description="Live-view frames are scaled down to this width."
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest model file accepted by upload."
    )

    @model_validator(mode="after")
    def _checks(self) -> ConsoleConfig:
        problems = []
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append("tls_cert and tls_key go together")
        bad = sorted(name for name in self.users if not USER_NAME.match(name))
        if bad:
            problems.append(
                f"users: bad user name(s) {', '.join(map(repr, bad))} (A-Z a-z 0-9 _ . -)"
            )
        if self.enabled and not self.users:
            problems.append(
                "users: the console has no login and refuses to start without one "
                f"(there is no default password); {PASSWD_FIX}"
            )
        if problems:  # the field path is in each message: one line for the section
            raise ValueError("; ".join(problems))
        return self
