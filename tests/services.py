"""Real servers for the tests: Mosquitto and VictoriaMetrics on free loopback ports.

Each server is a small object the test can stop and start again on the same port
(the reliability tests take the broker and the database away mid-run).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def find_binary(*names: str) -> str:
    """The path of the first of ``names`` on PATH or in /usr/sbin; a clear error otherwise."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(
        f"{names[0]} is not installed: run .ci/run (or apt-get install {names[0]}) first"
    )


class Server:
    """A child process serving on a fixed loopback port, restartable."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{type(self).__name__.lower()}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        try:
            self.wait_ready()
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(
                f"{self.command()[0]} did not start: {self.log.read_text()[-2000:]}"
            ) from exc

    def wait_ready(self) -> None:
        wait_port(self.port)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Mosquitto(Server):
    """Mosquitto 2.x listening on 127.0.0.1 only, persistence off, MQTT v5 capable.

    ``extra_config`` lines are appended to the listener block (TLS, auth).
    """

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = "") -> None:
        super().__init__(workdir, port)
        self.extra_config = extra_config

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_inflight_messages 0\n"
            "max_queued_messages 100000\n"
            "log_type error\nlog_type warning\n"
            f"{self.extra_config}\n"
        )
        return [find_binary("mosquitto"), "-c", str(conf)]


class VictoriaMetrics(Server):
    """VictoriaMetrics single node: takes InfluxDB's /api/v2/write, exports /api/v1/export."""

    def command(self) -> list[str]:
        return [
            find_binary("victoria-metrics"),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError("victoria-metrics /health did not answer")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flush(self) -> None:
        """Make freshly written points visible to queries."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, object]]:
        """Every stored series matching ``match``, as JSON lines from /api/v1/export."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as resp:
            return [json.loads(line) for line in resp.read().decode().splitlines() if line]

    def export_until(
        self,
        match: str,
        done: Callable[[list[dict[str, object]]], bool],
        timeout: float = 15.0,
    ) -> list[dict[str, object]]:
        """Poll :meth:`export` until ``done(series)`` (writes take about a second to show)."""
        deadline = time.monotonic() + timeout
        series = self.export(match)
        while not done(series) and time.monotonic() < deadline:
            time.sleep(0.25)
            series = self.export(match)
        return series
