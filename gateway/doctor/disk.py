"""Room on disk for the outbox (roadside) or the spool (ingest)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult

MIN_FREE = 64 * 1024 * 1024  # below this the outbox soon cannot store events


def check_disk(ctx: Context) -> Iterator[CheckResult]:
    """The outbox's folder (``run``) and the ingest spool's (``ingest``, when set)."""
    settings = ctx.settings
    if "run" in ctx.roles:
        path = settings.outbox.path or settings.gateway.data_dir / "outbox.sqlite3"
        yield _room("disk outbox", path, settings.outbox.max_bytes, "outbox.max_bytes")
    spool = settings.ingest.spool_path
    if "ingest" in ctx.roles and spool is not None:
        yield _room("disk spool", spool, MIN_FREE, "the spool")


def _existing_parent(path: Path) -> Path:
    here = path.parent
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def _room(name: str, path: Path, cap: int, cap_name: str) -> CheckResult:
    folder = path.parent
    where = folder if folder.exists() else _existing_parent(path)
    try:
        if folder.exists():
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                pass
        else:  # run creates it: try that (and take the trial back)
            os.rmdir(tempfile.mkdtemp(dir=where, prefix=".doctor-"))
    except OSError as exc:
        return CheckResult(
            "disk",
            name,
            "fail",
            f"{folder} is not writable: {exc}",
            f"create {folder} for the service user, or set gateway.data_dir",
        )
    usage = shutil.disk_usage(where)
    free = usage.free
    detail = f"{folder}: {_size(free)} free of {_size(usage.total)}"
    if free < MIN_FREE:
        return CheckResult(
            "disk",
            name,
            "fail",
            f"{detail}: too little to store events",
            f"free space on {where} (or move gateway.data_dir)",
        )
    if free < cap:
        return CheckResult(
            "disk",
            name,
            "warn",
            f"{detail}, less than {cap_name} ({_size(cap)})",
            f"lower {cap_name} below the free space, or free space: the disk would fill "
            "before the oldest events are dropped",
        )
    return CheckResult("disk", name, "ok", f"{detail} (cap {_size(cap)})")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
