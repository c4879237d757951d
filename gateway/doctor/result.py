"""The outcome of one doctor check, and of a whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of ``gateway doctor``.

    Attributes:
        check: the registry key of the check that produced it (``camera``, ``broker``...).
        name: what was checked (``camera north``, ``broker tls``).
        status: ``ok`` (works), ``warn`` (``gateway run`` works, but look at it),
            ``fail`` (``gateway run`` would not work, or not fully).
        detail: what was found.
        fix: what to do about it (``None`` when there is nothing to do).
    """

    check: str
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "check": self.check,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(slots=True)
class DoctorReport:
    """Every result of one run, in the order the checks ran."""

    config: str
    results: list[CheckResult] = field(default_factory=list)
    roles: tuple[str, ...] = ()  # what the config was checked for (empty: it did not load)
    unreadable_config: bool = False  # the file is missing, unreadable or not TOML

    @property
    def ok(self) -> bool:
        """Whether ``gateway run`` (or ``ingest``) would work: no check failed."""
        return all(r.status != "fail" for r in self.results)

    @property
    def verdict(self) -> str:
        """``gateway run would work`` (or ``would not work``), naming the commands checked."""
        commands = " and ".join(f"gateway {r}" for r in self.roles) or "gateway run"
        return f"{commands} would {'' if self.ok else 'not '}work"

    def count(self, status: Status) -> int:
        """How many results have ``status``."""
        return sum(1 for r in self.results if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "config": self.config,
            "roles": list(self.roles),
            "ok": self.ok,
            "counts": {s: self.count(s) for s in STATUSES},
            "checks": [r.as_dict() for r in self.results],
        }
