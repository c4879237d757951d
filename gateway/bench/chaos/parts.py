"""The system a campaign runs: units, ingest workers, their configs, and the fault handles.

Everything runs on loopback from one work directory:

* the broker's users and ACL: each unit is user ``{site}/{gateway}`` and gets exactly its
  own topics from the ACL that ``gateway pki broker-config`` generates (the same
  patterns; passwords instead of certificates), the ingest workers read every unit,
  the rogue client is a unit of its own;
* :class:`GatewayProcess` and :class:`IngestProcess`: ``gateway run`` and
  ``gateway ingest`` as child processes (:class:`gateway.localservers.Process`);
* :class:`Volume`: a small tmpfs for one unit's outbox that a filler file can fill;
* :class:`FakeClock`: one unit's wall clock, stepped at run time through libfaketime
  (its monotonic clock is left alone);
* :class:`TornWrite`: a preload that makes a unit ``kill -9`` itself in the middle of a
  write to its outbox's files, when asked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import glob
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.patch import to_toml
from gateway.localservers import Process, ServerError, find_binary

SITE = "chaos"
PREFIX = "city"
SHARE_GROUP = "chaos"
ROGUE = "rogue"
PASSWORD = "chaos-campaign"  # every user's password: the ACL, not secrecy, is under test
MIB = 1024 * 1024


@dataclass(frozen=True)
class UnitSpec:
    """One roadside unit of the campaign."""

    gateway: str
    synthetic_per_s: float
    camera: bool = False
    disk: bool = False  # outbox on a small volume (disk full)
    clock: bool = False  # wall clock stepped through libfaketime

    @property
    def user(self) -> str:
        """Its broker user name (the CN its certificate would carry)."""
        return f"{SITE}/{self.gateway}"


def unit_specs(rate: float) -> tuple[UnitSpec, ...]:
    """Three units: synthetic on a small volume, synthetic with a steppable clock, a camera."""
    return (
        UnitSpec("rsu-1", rate, disk=True),
        UnitSpec("rsu-2", rate, clock=True),
        UnitSpec("rsu-3", max(1.0, rate / 10), camera=True),
    )


def ingest_user(worker: str) -> str:
    """The broker user of ingest worker ``worker``.

    Its certificate CN with ``-`` for ``:``, which a Mosquitto password file refuses.
    """
    from gateway.security import identity

    return identity.ingest(f"{SHARE_GROUP}-{worker}").common_name.replace(":", "-")


def broker_auth(work: Path, units: tuple[UnitSpec, ...], workers: tuple[str, ...]) -> str:
    """Write the password file and the generated ACL; return the broker config lines."""
    from gateway.security.broker import BrokerLayout, acl_text
    from gateway.security.pki import CertRecord

    now = dt.datetime.now(dt.UTC)
    records = [
        CertRecord(
            serial=str(i),
            kind="ingest",
            name=f"{SHARE_GROUP}-{worker}",
            common_name=ingest_user(worker),
            not_before=now,
            not_after=now + dt.timedelta(days=30),
            fingerprint="-",
        )
        for i, worker in enumerate(workers, start=1)
    ]
    work.mkdir(parents=True, exist_ok=True)
    acl = work / "acl"
    acl.write_text(acl_text(BrokerLayout(prefix=PREFIX), records))
    passwd = work / "passwd"
    users = [u.user for u in units] + [f"{SITE}/{ROGUE}"] + [r.common_name for r in records]
    tool = find_binary("mosquitto_passwd")
    for i, user in enumerate(users):
        flags = ["-c"] if i == 0 else []
        subprocess.run([tool, "-b", *flags, str(passwd), user, PASSWORD], check=True)
    passwd.chmod(0o600)
    return (
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\nmax_packet_size 1048576\n"
    )


def _mqtt(port: int, user: str) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "username": user,
        "password": PASSWORD,
        "keepalive_s": 10,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 10,
    }


def gateway_config(unit: UnitSpec, work: Path, port: int, outbox: Path) -> Path:
    """Write the TOML of one unit's ``gateway run``; return its path."""
    data: dict[str, Any] = {
        "gateway": {"id": unit.gateway, "site": SITE, "data_dir": str(work)},
        "mqtt": {**_mqtt(port, unit.user), "topic_prefix": PREFIX},
        "outbox": {"path": str(outbox), "retry_max_s": 10},
        "events": {"synthetic_events_per_s": unit.synthetic_per_s, "health_interval_s": 10},
    }
    if unit.camera:
        from gateway.demo.scenario import camera_config

        camera = camera_config(seed=11, fps=5.0).model_dump(mode="json", exclude_none=True)
        data["cameras"] = [camera]
    path = work / "gateway.toml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(data))
    return path


def ingest_config(work: Path, port: int, db_url: str, worker: str) -> Path:
    """Write the TOML of one ingest worker (one data dir: one dead-letter store)."""
    data: dict[str, Any] = {
        "gateway": {"data_dir": str(work)},
        "mqtt": _mqtt(port, ingest_user(worker)),
        "ingest": {
            "share_group": SHARE_GROUP,
            "stats_interval_s": 5,
            "influx": {
                "url": db_url,
                "token": "chaos",
                "batch_size": 1000,
                "flush_interval_s": 0.5,
                "timeout_s": 5,
                "retry_max_s": 5,
            },
        },
    }
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"ingest-{worker}.toml"
    path.write_text(to_toml(data))
    return path


class GatewayProcess(Process):
    """``gateway run`` for one unit (optionally under :class:`FakeClock`, :class:`TornWrite`)."""

    def __init__(
        self,
        unit: UnitSpec,
        workdir: Path,
        config: Path,
        clock: FakeClock | None,
        torn: TornWrite | None = None,
    ):
        super().__init__(workdir, unit.gateway)
        self.unit = unit
        self.config = config
        self.clock = clock
        self.torn = torn
        self.torn_trigger = workdir / "kill-mid-write"

    def command(self) -> list[str]:
        """``python -m gateway run -c <config>``."""
        return [sys.executable, "-m", "gateway", "run", "-c", str(self.config)]

    def environment(self) -> dict[str, str] | None:
        """The environment: this one's, plus libfaketime and the torn-write preload."""
        if self.clock is None and self.torn is None:
            return None
        env = dict(os.environ)
        preload = []
        if self.torn is not None:
            env.update(self.torn.env(self.torn_trigger))
            preload.append(str(self.torn.shim))
        if self.clock is not None:
            env.update(self.clock.env())
            preload.append(env["LD_PRELOAD"])
        env["LD_PRELOAD"] = " ".join(preload)
        return env

    def kill_mid_write(self, skip: int, timeout_s: float = 5.0) -> bool:
        """Make the unit ``kill -9`` itself inside a write to its outbox's files.

        The writes ``skip`` pass, the next one is torn. Returns whether that happened
        within ``timeout_s``; if not (no write came, or the preload cannot see SQLite's
        writes), the unit is killed the plain way.
        """
        assert self.torn is not None
        self.torn.arm(self.torn_trigger, skip)
        try:
            deadline = time.monotonic() + timeout_s
            while self.running and time.monotonic() < deadline:
                time.sleep(0.005)
            torn = not self.running
        finally:
            remove_quietly(self.torn_trigger)
        self.stop(kill=True)
        return torn


class IngestProcess(Process):
    """``gateway ingest --worker <name>``; ready once it has subscribed."""

    ready_timeout_s = 60.0

    def __init__(self, worker: str, workdir: Path, config: Path) -> None:
        super().__init__(workdir, f"ingest-{worker}")
        self.worker = worker
        self.config = config
        self._mark = 0

    def command(self) -> list[str]:
        """``python -m gateway ingest -c <config> --worker <name>``."""
        self._mark = len(self.log_text())
        return [
            sys.executable,
            "-m",
            "gateway",
            "ingest",
            "-c",
            str(self.config),
            "--worker",
            self.worker,
        ]

    def wait_ready(self) -> None:
        """Wait for this run's ``subscribed`` log line (``TimeoutError``)."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise TimeoutError(f"it exited with code {self.proc.returncode}")
            if "subscribed" in self.log_text()[self._mark :]:
                return
            time.sleep(0.1)
        raise TimeoutError("no 'subscribed' line")


class Volume:
    """A tmpfs of ``size_bytes`` at ``path`` (root only) that :meth:`fill` fills up."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.filler = path / "filler.bin"
        self.mounted = False

    @staticmethod
    def possible() -> bool:
        """Whether this process may mount (root)."""
        return os.geteuid() == 0

    def mount(self) -> None:
        """Mount the tmpfs (a clear error if it cannot)."""
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"cannot mount a tmpfs at {self.path}: {done.stderr.strip()}")
        self.mounted = True

    def fill(self) -> int:
        """Write the filler file until the volume is full; return how much was written."""
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (64 * 1024, 4096, 512):
                block = b"\0" * chunk
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Remove the filler file."""
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount (lazily: a process still holding a file does not keep it mounted)."""
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self.mounted = False


# libfaketime 0.9.10 (Debian 12) breaks clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
# when the monotonic clock is not faked (wolfcw/libfaketime#426): Python 3.11's
# time.sleep fails with EINVAL. This preload in front of it sends monotonic sleeps
# straight to the kernel and everything else to libfaketime.
_SLEEP_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req,
                    struct timespec *rem) {
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (clock_id == CLOCK_MONOTONIC || clock_id == CLOCK_BOOTTIME) {
        long rc = syscall(SYS_clock_nanosleep, clock_id, flags, req, rem);
        return rc == 0 ? 0 : errno;
    }
    if (!next) next = dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock_id, flags, req, rem);
}
"""


# A preload that makes the process SIGKILL itself in the middle of a write to a file
# whose path contains $CHAOS_TORN_MATCH once the file $CHAOS_TORN_TRIGGER exists: it
# lets the number of matching writes the trigger holds pass, then writes the first half
# of the next one and raises SIGKILL. SQLite writes its database and WAL with pwrite64,
# a transaction's frame headers and pages one call each: the kill leaves a WAL frame
# (or, in a checkpoint, a database page) half written, in the middle of a transaction.
_TORN_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*next)(int, const void *, size_t, off_t);
    static long pass = -1;
    if (!next) next = dlsym(RTLD_NEXT, "pwrite64");
    const char *trigger = getenv("CHAOS_TORN_TRIGGER");
    const char *match = getenv("CHAOS_TORN_MATCH");
    if (trigger && match && access(trigger, F_OK) == 0) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, path, sizeof path - 1);
        if (len > 0) {
            path[len] = 0;
            if (strstr(path, match)) {
                if (pass < 0) {
                    FILE *f = fopen(trigger, "r");
                    pass = 0;
                    if (f) {
                        if (fscanf(f, "%ld", &pass) != 1) pass = 0;
                        fclose(f);
                    }
                }
                if (pass-- == 0) {
                    next(fd, buf, count / 2, offset);
                    raise(SIGKILL);
                }
            }
        }
    }
    return next(fd, buf, count, offset);
}
"""


def _build_shim(source: str, work: Path, name: str) -> Path:
    """Compile a preload library from C ``source`` into ``work`` (a clear error if it cannot)."""
    work.mkdir(parents=True, exist_ok=True)
    c_file, library = work / f"{name}.c", work / f"{name}.so"
    c_file.write_text(source)
    done = subprocess.run(
        [find_binary("gcc"), "-shared", "-fPIC", "-O2", "-o", str(library), str(c_file), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(f"cannot build the preload {name}: {done.stderr[-500:]}")
    return library


class TornWrite:
    """The preload that kills a unit inside a write to its outbox (``kill -9`` mid-write)."""

    def __init__(self, work: Path, match: str = "outbox.sqlite3") -> None:
        self.work = work
        self.match = match
        self.shim = work / "torn_write.so"

    def prepare(self) -> None:
        """Build the preload."""
        self.shim = _build_shim(_TORN_SHIM, self.work, "torn_write")

    def env(self, trigger: Path) -> dict[str, str]:
        """The variables of one process (``trigger``: the file that arms it)."""
        return {"CHAOS_TORN_TRIGGER": str(trigger), "CHAOS_TORN_MATCH": self.match}

    @staticmethod
    def arm(trigger: Path, skip: int) -> None:
        """Arm a process: its write number ``skip + 1`` to the matching files is torn."""
        tmp = trigger.with_suffix(".tmp")
        tmp.write_text(f"{skip}\n")
        os.replace(tmp, trigger)


class FakeClock:
    """A wall-clock offset for one process, changed at run time (libfaketime).

    The offset lives in a timestamp file that libfaketime reads at every clock call
    (``FAKETIME_NO_CACHE=1``); ``CLOCK_MONOTONIC`` is not faked
    (``FAKETIME_DONT_FAKE_MONOTONIC=1``), as on a unit whose NTP steps the clock.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.file = work / "faketime.rc"
        self.offset_s = 0.0
        self.library = self._library()
        self.shim = work / "monotonic_sleep.so"

    @staticmethod
    def _library() -> str:
        found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
        if not found:
            raise ServerError(
                "libfaketime is not installed: run deploy/install-dev.sh "
                "(or apt-get install faketime)"
            )
        return found[0]

    def prepare(self) -> None:
        """Build the sleep shim and write offset 0."""
        self.shim = _build_shim(_SLEEP_SHIM, self.work, "monotonic_sleep")
        self.set(0.0)

    def set(self, offset_s: float) -> None:
        """Step the clock to true time + ``offset_s`` (atomically: never a half-written file)."""
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+.0f}s\n" if offset_s else "+0\n")
        os.replace(tmp, self.file)
        self.offset_s = offset_s

    def env(self) -> dict[str, str]:
        """The environment variables of the faked process."""
        return {
            "LD_PRELOAD": f"{self.shim} {self.library}",
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }


def remove_quietly(path: Path) -> None:
    """Remove a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
