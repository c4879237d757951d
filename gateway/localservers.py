"""Real servers on free loopback ports: Mosquitto, VictoriaMetrics, InfluxDB 1.x; tests, benches.

The one way the test suite, the benchmarks (``gateway bench outbox|ingest|soak|chaos``)
and fault campaigns start the servers a gateway talks to. Each server is a child
process bound to ``127.0.0.1`` on a port picked here (or given), restartable on the
same port, and can be taken away the ways the field does it: a clean stop (SIGTERM),
``kill -9``, or frozen with SIGSTOP and thawed with SIGCONT.

Mosquitto runs from a config generated here (persistence on or off, listeners, TLS,
queue limits); VictoriaMetrics from its data directory (kept across restarts, so a
restarted database still holds what it stored).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gateway.errors import GatewayError

LOOPBACK = "127.0.0.1"
_SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"


class ServerError(GatewayError):
    """A local server that is not installed, does not start, or does not answer."""


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=256)
_HANDED_OUT_LOCK = threading.Lock()
# Below Linux's ephemeral range (32768-60999, where the kernel's own choice and outgoing
# connections live), drawn by a generator of this process alone: test processes running
# side by side (pytest-xdist workers) do not pick the same just-closed port.
_PORTS = range(20000, 32768)
_RANDOM = random.Random(os.urandom(16))


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Not one of the last 256 this process handed out: two servers set up before either
    binds (a broker and its second listener) would otherwise be given the same port.
    """
    with _HANDED_OUT_LOCK:
        for _ in range(64):
            port = _RANDOM.choice(_PORTS)
            if port not in _HANDED_OUT and _bindable(port):
                break
        else:  # the range is crowded: the kernel's choice
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = int(sock.getsockname()[1])
        _HANDED_OUT.append(port)
        return port


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), 0.2):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port (``TimeoutError``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def find_binary(*names: str) -> str:
    """The path of the first of ``names`` on PATH or in the sbin directories."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=_SBIN)
        if found:
            return found
    raise ServerError(
        f"{names[0]} is not installed: run deploy/install-dev.sh (or apt-get install "
        f"{names[0]}) first"
    )


def end_process(
    proc: subprocess.Popen[bytes],
    *,
    kill: bool = False,
    timeout: float = 10.0,
    paused: bool = False,
) -> int | None:
    """Send SIGTERM (SIGKILL with ``kill``) and wait; SIGKILL after ``timeout`` seconds.

    A ``paused`` (SIGSTOPped) process is thawed after the signal so that it can act
    on it. Returns the exit code.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        if paused:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def _thread_states(pid: int) -> list[str]:
    """The scheduler state letter of each thread of ``pid`` (empty once it is gone)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            # "tid (comm) S ...": the comm may hold spaces and parentheses
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
    return states


def wait_stopped(pid: int, timeout: float) -> None:
    """Wait until every thread of ``pid`` is in the stopped state (``T``)."""
    deadline = time.monotonic() + timeout
    while True:
        states = _thread_states(pid)
        if not states or all(state in "TtZX" for state in states):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} not stopped after {timeout} s: {states}")
        time.sleep(0.005)


class Process:
    """A child process: start, stop, kill, pause, restart; every run's output in :attr:`log`.

    Subclasses give :meth:`command` (and :meth:`environment`, :meth:`wait_ready`).
    """

    ready_timeout_s = 20.0

    def __init__(self, workdir: Path, name: str | None = None) -> None:
        self.workdir = workdir
        self.name = name or type(self).__name__.lower()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.name}.log"
        self.paused = False

    def command(self) -> list[str]:
        """The command line of one run (called at every start)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The environment of one run (``None``: this process's own)."""
        return None

    def start(self, wait: bool = True) -> None:
        """Start the process (no-op if it runs) and, with ``wait``, wait until it is ready."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.environment(),
            )
        self.paused = False
        if not wait:
            return
        try:
            self.wait_ready()
        except TimeoutError as exc:
            tail = self.log_text()[-2000:]
            self.stop(kill=True)
            raise ServerError(f"{Path(cmd[0]).name} did not start: {exc}\n{tail}") from exc

    def wait_ready(self) -> None:
        """Wait until the process is ready (``TimeoutError``); by default it only started."""

    def stop(self, kill: bool = False, timeout: float = 10.0) -> int | None:
        """SIGTERM (or SIGKILL with ``kill``) and wait (:func:`end_process`).

        Returns the exit code (``None`` if it was not running).
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        code = end_process(proc, kill=kill, timeout=timeout, paused=self.paused)
        self.paused = False
        return code

    def kill(self) -> None:
        """``kill -9``: no chance to save anything."""
        self.stop(kill=True)

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP: the process is frozen, its sockets stay open and unanswered.

        Returns once every thread of the process is stopped (the signal is delivered
        asynchronously: a thread running on another core can still answer a request
        sent right after ``kill``); ``TimeoutError`` if that takes over ``timeout`` s.
        """
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True
            wait_stopped(self.proc.pid, timeout)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.proc is not None and self.paused:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again."""
        self.stop(kill=kill)
        self.start()

    @property
    def running(self) -> bool:
        """Whether the process exists and has not exited (paused counts as running)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The exit code of a run that ended on its own (``None`` while it runs)."""
        return self.proc.poll() if self.proc is not None else None

    @property
    def pid(self) -> int | None:
        """The process id of the current run."""
        return self.proc.pid if self.proc is not None else None

    def log_text(self) -> str:
        """Everything the process wrote so far (all runs)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Server(Process):
    """A child process serving on a fixed loopback port, restartable on that port.

    Subclasses give :meth:`command` and, when a listening port is not enough,
    :meth:`wait_ready`.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.port = port or free_port()

    def wait_ready(self) -> None:
        """Wait until the server accepts connections on its port (``TimeoutError``)."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise TimeoutError(f"it exited with code {self.proc.returncode}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {LOOPBACK}:{self.port}")

    def wait_http(self, url: str, status: int) -> None:
        """Wait until ``GET url`` answers ``status`` (``TimeoutError``; also if it exited)."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise TimeoutError(f"it exited with code {self.proc.returncode}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=1) as resp,
            ):
                if resp.status == status:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not answer {status}")


@dataclass(frozen=True)
class MqttTls:
    """A TLS listener's files; ``require_certificate`` asks clients for theirs."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = True

    def lines(self) -> list[str]:
        """The Mosquitto listener options."""
        return [
            f"cafile {self.cafile}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
            f"require_certificate {'true' if self.require_certificate else 'false'}",
        ]


@dataclass(frozen=True)
class Listener:
    """One more Mosquitto listener on 127.0.0.1 (plain, or TLS with ``tls``)."""

    port: int
    tls: MqttTls | None = None


class Mosquitto(Server):
    """Mosquitto 2.x on 127.0.0.1, anonymous clients allowed, MQTT v5 capable.

    ``persistence`` keeps sessions, subscriptions and queued messages in
    ``workdir/store`` across a restart (written on a clean stop and every
    ``autosave_interval_s``); off, a restart forgets everything. ``tls`` makes the
    main listener a TLS one; ``listeners`` adds more. ``max_queued`` bounds each
    offline session's queue. ``extra_config`` lines go at the end (ACLs, passwords,
    packet limits). Started as root the broker keeps root's rights (``user root``), so
    it can read files in private temporary directories.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        *,
        persistence: bool = False,
        autosave_interval_s: int | None = None,
        tls: MqttTls | None = None,
        listeners: Sequence[Listener] = (),
        max_queued: int = 100_000,
        log_types: Sequence[str] = ("error", "warning"),
    ) -> None:
        super().__init__(workdir, port)
        self.extra_config = extra_config
        self.persistence = persistence
        self.autosave_interval_s = autosave_interval_s
        self.tls = tls
        self.listeners = tuple(listeners)
        self.max_queued = max_queued
        self.log_types = tuple(log_types)

    @property
    def store(self) -> Path:
        """The persistence directory (with ``persistence``)."""
        return self.workdir / "store"

    def config_text(self) -> str:
        """The generated ``mosquitto.conf``."""
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            lines.append(f"persistence_location {self.store}/")
            if self.autosave_interval_s is not None:
                lines.append(f"autosave_interval {self.autosave_interval_s}")
        if os.geteuid() == 0:
            lines.append("user root")
        lines += ["max_inflight_messages 0", f"max_queued_messages {self.max_queued}"]
        lines += [f"log_type {kind}" for kind in self.log_types]
        lines.append(f"listener {self.port} {LOOPBACK}")
        lines += self.tls.lines() if self.tls is not None else []
        for extra in self.listeners:
            lines.append(f"listener {extra.port} {LOOPBACK}")
            lines += extra.tls.lines() if extra.tls is not None else []
        return "\n".join(lines) + f"\n{self.extra_config}\n"

    def command(self) -> list[str]:
        """Write the config and run ``mosquitto -c`` on it."""
        if self.persistence:
            self.store.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        return [find_binary("mosquitto"), "-c", str(conf)]

    def reload(self) -> None:
        """SIGHUP: re-read the config (ACL and password files)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)


class VictoriaMetrics(Server):
    """VictoriaMetrics single node: takes InfluxDB's /api/v2/write, exports /api/v1/export.

    Its data directory (``workdir/data``) survives restarts. Debian's build keeps the
    last second or so of writes in memory: a ``kill -9`` loses them although each was
    answered 204 (:meth:`flush` first, or :meth:`stop` with SIGTERM, when a count must
    be exact).
    """

    @property
    def data_dir(self) -> Path:
        """Where it stores its data."""
        return self.workdir / "data"

    def command(self) -> list[str]:
        """The ``victoria-metrics`` command line (queries see fresh points at once)."""
        return [
            find_binary("victoria-metrics"),
            f"-httpListenAddr={LOOPBACK}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]

    def wait_ready(self) -> None:
        """Wait until ``/health`` answers 200."""
        self.wait_http(f"{self.url}/health", 200)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    def flush(self, timeout: float = 10.0) -> None:
        """Make freshly written points visible to queries (and durable on disk)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=timeout):
            pass

    def export(
        self,
        match: str = '{__name__=~".+"}',
        timeout: float = 60.0,
        *,
        all_time: bool = False,
    ) -> list[dict[str, Any]]:
        """Every stored series matching ``match``, as JSON lines from /api/v1/export.

        ``all_time`` asks for every sample from 1970 to a year ahead (without it the
        server picks the time range, which can leave out samples stamped in the
        future or the distant past).
        """
        self.flush(timeout)
        params = {"match[]": match}
        if all_time:
            params.update(start="0", end=str(int(time.time()) + 366 * 86400))
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=timeout) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line]

    def export_until(
        self,
        match: str,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        """Poll :meth:`export` until ``done(series)`` (writes take about a second to show)."""
        deadline = time.monotonic() + timeout
        series = self.export(match)
        while not done(series) and time.monotonic() < deadline:
            time.sleep(0.25)
            series = self.export(match)
        return series


class InfluxDB(Server):
    """InfluxDB 1.x (Debian bookworm's ``influxdb``, 1.6): InfluxQL ``/query``, v1 ``/write``.

    It has no ``/api/v2/write`` (that came with 1.8), so the ingest cannot write to it;
    tests write the ingest's line-protocol bodies with :meth:`write` (``/write?db=``) and
    read them back with the ledger audit's InfluxQL reader. Runs from a generated config:
    its meta, data and WAL directories under ``workdir`` (kept across restarts), the HTTP
    API on ``port``, the RPC (backup) listener on another free port, reporting and the
    ``_internal`` monitor store off, no admin/UDP/Graphite/collectd/OpenTSDB listeners.
    Authentication is off unless ``admin`` (user, password) is given: then it is on, and
    :meth:`wait_ready` creates that admin user first. :meth:`wait_ready` creates
    ``database``.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        database: str = "roadside",
        admin: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()
        self.database = database
        self.admin = admin

    def config_text(self) -> str:
        """The generated ``influxdb.conf``."""
        return "\n".join(
            [
                "reporting-enabled = false",
                f'bind-address = "{LOOPBACK}:{self.rpc_port}"',
                "[meta]",
                f'  dir = "{self.workdir / "meta"}"',
                "[data]",
                f'  dir = "{self.workdir / "data"}"',
                f'  wal-dir = "{self.workdir / "wal"}"',
                "  query-log-enabled = false",
                "[monitor]",
                "  store-enabled = false",
                "[http]",
                f'  bind-address = "{LOOPBACK}:{self.port}"',
                f"  auth-enabled = {'true' if self.admin else 'false'}",
                "  log-enabled = false",
                "  pprof-enabled = false",
                "[continuous_queries]",
                "  enabled = false",
                "[logging]",
                '  level = "warn"',
                "  suppress-logo = true",
                "",
            ]
        )

    def command(self) -> list[str]:
        """Write the config and run ``influxd run -config`` on it."""
        conf = self.workdir / "influxdb.conf"
        conf.write_text(self.config_text())
        return [find_binary("influxd"), "run", "-config", str(conf)]

    def environment(self) -> dict[str, str]:
        """The environment without ``INFLUXDB_*`` variables (they override the config)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    def wait_ready(self) -> None:
        """Wait until ``/ping`` answers 204, then create :attr:`database`."""
        self.wait_http(f"{self.url}/ping", 204)
        if self.admin is not None:
            user, password = self.admin
            with contextlib.suppress(urllib.error.HTTPError):  # it exists after a restart
                self.query(  # the first user is created without credentials
                    f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES",
                    auth=False,
                )
        self.query(f'CREATE DATABASE "{self.database}"')

    def _credentials(self) -> dict[str, str]:
        return {"u": self.admin[0], "p": self.admin[1]} if self.admin else {}

    def query(
        self, q: str, db: str | None = None, timeout: float = 30.0, *, auth: bool = True
    ) -> dict[str, Any]:
        """Run InfluxQL (POST ``/query``, ns epochs, as the admin with ``auth``); the answer."""
        params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
        data = urllib.parse.urlencode(params).encode()
        who = urllib.parse.urlencode(self._credentials() if auth else {})  # only in the URL
        address = f"{self.url}/query?{who}"
        with urllib.request.urlopen(address, data=data, timeout=timeout) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
        return answer

    def write(self, body: bytes, db: str | None = None, timeout: float = 30.0) -> None:
        """Write line protocol (ns precision) with the v1 API, ``/write?db=``."""
        params = {"db": db or self.database, "precision": "ns", **self._credentials()}
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.url}/write?{query}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if resp.status != 204:
                raise ServerError(f"InfluxDB /write answered {resp.status}")
