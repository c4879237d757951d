"""Who may command this unit: trusted operators, signature freshness, the rollback deadline."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.config.common import StrictModel


class SecurityConfig(StrictModel):
    """Command authorization on the unit (see ``docs/security.md``)."""

    trusted_operators: Path | None = Field(
        default=None,
        description=(
            "PEM file of the operator certificates whose signed commands this unit obeys "
            "(installed by `gateway enroll`). Without it every command is refused."
        ),
    )
    unsigned_commands: bool = Field(
        default=False,
        description=(
            "Obey unsigned commands from anyone who can publish to the unit's cmd topics "
            "(labs and tests only: no authorization, no audit of who)."
        ),
    )
    command_max_age_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="A signed command older (or further in the future) than this is refused.",
    )
    replay_cache_size: int = Field(
        default=4096,
        ge=16,
        le=1_000_000,
        description="Nonces of accepted commands remembered (kept on disk across restarts).",
    )
    rollback_deadline_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description=(
            "A change of broker, port, TLS or identity must reconnect within this long, "
            "else the last good config is restored."
        ),
    )
