"""The doctor's checks in one explicit registry, and the run over them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.settings import ENV_MARK
from gateway.doctor.broker import check_broker
from gateway.doctor.cameras import check_cameras
from gateway.doctor.clock import check_clock
from gateway.doctor.context import Context, Role
from gateway.doctor.database import check_database
from gateway.doctor.disk import check_disk
from gateway.doctor.models import check_models
from gateway.doctor.providers import check_providers
from gateway.doctor.result import CheckResult, DoctorReport
from gateway.doctor.serial import check_serial
from gateway.errors import ConfigError

log = logging.getLogger(__name__)

Check = Callable[[Context], Iterable[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check and the roles it belongs to."""

    run: Check
    roles: frozenset[Role]
    about: str


RUN: frozenset[Role] = frozenset({"run"})
INGEST: frozenset[Role] = frozenset({"ingest"})
BOTH: frozenset[Role] = RUN | INGEST

# The explicit registry, in the order the checks run and print.
CHECKS: dict[str, CheckSpec] = {
    "providers": CheckSpec(check_providers, RUN, "ONNX Runtime offers each configured provider"),
    "models": CheckSpec(check_models, RUN, "each camera's detector loads"),
    "cameras": CheckSpec(check_cameras, RUN, "each camera opens and yields a frame"),
    "serial": CheckSpec(check_serial, RUN, "each sensor's port opens and what arrives decodes"),
    "broker": CheckSpec(check_broker, BOTH, "TCP, TLS and CONNACK with the credentials"),
    "database": CheckSpec(check_database, INGEST, "the ingest's database takes writes"),
    "disk": CheckSpec(check_disk, BOTH, "room for the outbox (or the ingest spool)"),
    "clock": CheckSpec(check_clock, BOTH, "the clock is set and synchronised"),
}


def roles_of(data: dict[str, Any]) -> frozenset[Role]:
    """What a config file is for, from its tables.

    ``ingest`` when it has an ``[ingest]`` table; ``run`` unless it has only that
    (no cameras, no sensors).
    """
    roles: set[Role] = set()
    if "ingest" in data:
        roles.add("ingest")
    if "ingest" not in data or data.get("cameras") or data.get("sensors"):
        roles.add("run")
    return frozenset(roles)


def run_doctor(
    config_path: Path,
    *,
    roles: frozenset[Role] | None = None,
    timeout_s: float | None = None,
    only: Sequence[str] | None = None,
    model_dir: Path | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> DoctorReport:
    """Check everything ``gateway run`` (or ``ingest``) needs from ``config_path``.

    Args:
        config_path: the TOML file (environment overrides apply, as for ``run``).
        roles: ``run``, ``ingest`` or both; by default from the file (:func:`roles_of`).
        timeout_s: one timeout for every network check instead of the configured ones.
        only: names from :data:`CHECKS` to run (the config is always checked).
        model_dir: the model store to look in instead of the configured one.
        on_result: called with each result as soon as it is known (progress).
    """
    from gateway.config.settings import read_toml, validate_settings

    report = DoctorReport(str(config_path))

    def add(result: CheckResult) -> None:
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    unknown = sorted(set(only or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    try:
        data = read_toml(config_path)
    except ConfigError as exc:
        report.unreadable_config = True
        add(_config_failed(exc))
        return report
    try:
        settings = validate_settings(data, str(config_path))
    except ConfigError as exc:
        add(_config_failed(exc))
        return report
    if model_dir is not None:
        settings = settings.model_copy(
            update={"gateway": settings.gateway.model_copy(update={"model_dir": model_dir})}
        )
    ctx = Context(settings, roles or roles_of(data), timeout_s)
    report.roles = tuple(sorted(ctx.roles, key=("run", "ingest").index))
    add(_config_ok(config_path, ctx))
    for key, spec in CHECKS.items():
        if only is not None and key not in only:
            continue
        if not ctx.roles & spec.roles:
            continue
        try:
            for result in spec.run(ctx):
                add(result)
        except Exception as exc:  # a check's own bug must not hide the other checks
            log.debug("doctor check %s crashed", key, exc_info=True)
            add(CheckResult(key, key, "fail", f"the check itself failed: {exc!r}", None))
    return report


def _config_failed(exc: ConfigError) -> CheckResult:
    detail = str(exc)
    if exc.problems:
        detail += ": " + "; ".join(exc.problems)
    fix = "fix the lines named (gateway config check FILE shows them one per line)"
    if any(ENV_MARK in p for p in exc.problems):
        fix = "correct or unset the GATEWAY_* environment variables named; " + fix
    return CheckResult("config", "config", "fail", detail, fix)


def _config_ok(path: Path, ctx: Context) -> CheckResult:
    s = ctx.settings
    parts = [
        f"{len(s.cameras)} camera(s)",
        f"{len(s.sensors)} sensor(s)",
        f"broker {s.mqtt.host}:{s.mqtt.port}",
    ]
    if "ingest" in ctx.roles:
        parts.append(f"database {s.ingest.influx.url}")
    roles = " and ".join(sorted(ctx.roles))
    return CheckResult("config", "config", "ok", f"{path}: valid for {roles}: {', '.join(parts)}")
