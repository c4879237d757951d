"""What every doctor check gets: the validated settings, the roles, the timeout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.config.settings import GatewaySettings

Role = Literal["run", "ingest"]


@dataclass(frozen=True, slots=True)
class Context:
    """The settings being checked and how.

    Attributes:
        settings: the validated settings (file and environment).
        roles: what the config is for: ``run`` (a roadside unit), ``ingest`` (a
            central worker), or both.
        timeout_s: a limit for every network check (cameras, broker, database);
            ``None``: each uses its configured timeout.
    """

    settings: GatewaySettings
    roles: frozenset[Role]
    timeout_s: float | None = None

    def timeout(self, configured: float) -> float:
        """The timeout of a check whose own configured timeout is ``configured``."""
        return self.timeout_s if self.timeout_s is not None else configured
