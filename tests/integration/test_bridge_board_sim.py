"""The simulated board end to end: through memory and a real pty into BridgeDecoder."""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import serial

from firmware_bridge.messages import CONFIG_BAD_VALUE, CONFIG_OK, KIND_I32, ConfigValue, Pong
from gateway.config.sensors import SensorConfig
from gateway.sensors.rsb import BridgeDecoder
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from simulators.board.board import KEY_REPORT_INTERVAL_MS, BoardOptions
from simulators.board.faults import FaultConfig
from simulators.board.runner import BoardRunner
from simulators.board.transport import MemoryLine
from simulators.sensors.ptyport import PtyPort
from tests.support.cli import run_cli
from tests.support.polling import wait_for

FAULTS = FaultConfig(drop_frame=0.12, flip=0.002, garbage=0.05, split=0.3, merge=0.2)


class Host:
    """The gateway side: read, feed the decoder, write back its pending writes."""

    def __init__(self, read: Callable[[float], bytes], write: Callable[[bytes], object]) -> None:
        self.read, self.write = read, write
        self.decoder = BridgeDecoder()
        self.readings: list[Reading] = []

    def pump_until(self, done: Callable[[], bool], what: str, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit  # a hang guard, not a timing assertion
        while time.monotonic() < deadline:
            data = self.read(0.02)
            if data:
                self.readings += self.decoder.feed(data)
            out = self.decoder.pending_writes()
            if out:
                self.write(out)
            if done():
                return
        pytest.fail(f"gave up waiting for {what}: {self.decoder.stats()}")


def check_exactly_once(host: Host, runner: BoardRunner) -> None:
    got = [(int(r.extra["boot_id"]), int(r.extra["seq"])) for r in host.readings]
    produced = list(runner.board.produced)
    assert len(got) == len(set(got)), "a reading was delivered twice"
    delivered = set(got)
    assert got == [p for p in produced if p in delivered], "delivery out of order"
    missing = set(produced) - delivered
    assert missing <= set(runner.board.lost_on_reboot), "a reading was lost"


def run_session(host: Host, runner: BoardRunner, reboot_after: int, total: int) -> None:
    board = runner.board
    host.pump_until(lambda: len(board.produced) >= reboot_after, "readings before reboot")
    board.reboot(time.monotonic())
    host.pump_until(lambda: len(board.produced) >= total, "readings after reboot")
    with board.lock:
        board.paused = True
    host.pump_until(board.drained, "the board to drain its queue")
    host.pump_until(lambda: True, "one more read")
    assert runner.error is None


def ask(host: Host, request: Callable[[], int]) -> object:
    """Send a best-effort request (again every 0.3 s) until its answer arrives."""
    seqs: set[int] = set()
    found: list[object] = []
    last = 0.0

    def done() -> bool:
        nonlocal last
        found.extend(m.body for m in host.decoder.responses() if m.seq in seqs)
        if found:
            return True
        if time.monotonic() - last > 0.3:
            seqs.add(request())
            last = time.monotonic()
        return False

    host.pump_until(done, "an answer to a request")
    return found[0]


def test_memory_line_with_faults_and_reboot_delivers_exactly_once() -> None:
    line = MemoryLine()
    options = BoardOptions(
        node=3, interval=0.03, rto=0.12, seed=11, faults_out=FAULTS, faults_in=FAULTS, log_every=10
    )
    with BoardRunner(line, options) as runner:
        host = Host(line.host.read, line.host.write)
        run_session(host, runner, reboot_after=40, total=90)
    check_exactly_once(host, runner)
    stats = host.decoder.stats()
    assert stats["link_reboots"] == 1
    assert stats["framer_bad_crc"] + stats["framer_decode_errors"] > 0  # faults did happen
    assert runner.board.stats()["retransmits"] > 0
    assert stats["logs"] > 0
    assert all(set(r.values) >= {"temperature_c", "pm2_5"} for r in host.readings)


def test_real_pty_with_faults_reboot_ping_and_config() -> None:
    line = PtyPort()
    options = BoardOptions(
        node=9,
        interval=0.04,
        rto=0.15,
        seed=5,
        faults_out=FAULTS,
        faults_in=FaultConfig(drop_frame=0.05, flip=0.001),
    )
    try:
        with BoardRunner(line, options) as runner, serial.Serial(line.path, timeout=0.02) as port:
            host = Host(lambda t: port.read(4096), port.write)
            run_session(host, runner, reboot_after=30, total=70)
            with runner.board.lock:
                runner.board.paused = False
            pong = ask(host, lambda: host.decoder.ping(9, nonce=77))
            assert isinstance(pong, Pong)
            assert pong.nonce == 77
            ok = ask(host, lambda: host.decoder.config_set(9, KEY_REPORT_INTERVAL_MS, 250))
            assert ok == ConfigValue(KEY_REPORT_INTERVAL_MS, CONFIG_OK, KIND_I32, 250)
            bad = ask(host, lambda: host.decoder.config_set(9, KEY_REPORT_INTERVAL_MS, 5))
            assert bad == ConfigValue(KEY_REPORT_INTERVAL_MS, CONFIG_BAD_VALUE, KIND_I32, 250)
            with runner.board.lock:
                runner.board.paused = True  # readings produced meanwhile must arrive too
            host.pump_until(runner.board.drained, "the board to drain again")
    finally:
        line.close()
    check_exactly_once(host, runner)
    assert runner.board.interval_ms == 250


def test_through_the_gateway_sensor_reader() -> None:
    """The gateway's SensorReader drives BridgeDecoder on a pty and writes the ACKs back."""
    line = PtyPort()
    options = BoardOptions(
        node=4,
        interval=0.04,
        rto=0.15,
        seed=21,
        faults_out=FAULTS,
        faults_in=FaultConfig(drop_frame=0.1),
    )
    got: queue.Queue[Reading] = queue.Queue()
    cfg = SensorConfig(
        id="pole-7-air", protocol="rsb", port=line.path, baud=115200, publish_interval_s=0
    )
    reader = SensorReader(cfg, got.put)
    try:
        with BoardRunner(line, options) as runner:
            reader.start()
            wait_for(lambda: len(runner.board.produced) >= 40, 60)  # a hang guard
            with runner.board.lock:
                runner.board.paused = True
            wait_for(runner.board.drained, 60)
            time.sleep(0.3)  # let the reader pass on what it has read
            assert runner.board.drained(), reader.health().counters()
    finally:
        reader.stop()
        line.close()
    readings = []
    while not got.empty():
        readings.append(got.get())
    host = Host(lambda t: b"", lambda b: None)
    host.readings = readings
    check_exactly_once(host, runner)
    assert len(readings) == len(runner.board.produced)
    assert {r.sensor_id for r in readings} == {"pole-7-air"}
    assert reader.health().counters()["bad_checksum"] > 0


def test_port_reopen_and_gateway_restart_lose_nothing() -> None:
    """The host closes and reopens the pty, then restarts with a fresh decoder."""
    line = PtyPort()
    options = BoardOptions(node=6, interval=0.04, rto=0.15, seed=8, faults_out=FAULTS)
    first: list[Reading] = []
    try:
        with BoardRunner(line, options) as runner:
            board = runner.board
            with serial.Serial(line.path, timeout=0.02) as port:
                host = Host(lambda t: port.read(4096), port.write)
                host.pump_until(lambda: len(host.readings) >= 10, "readings before close")
            time.sleep(0.5)  # port closed: the board keeps producing and retransmitting
            with serial.Serial(line.path, timeout=0.02) as port:
                host.read, host.write = (lambda t: port.read(4096)), port.write
                host.pump_until(lambda: len(board.produced) >= 40, "readings after reopen")
                first = host.readings
                restarted = Host(lambda t: port.read(4096), port.write)  # a new gateway
                restarted.pump_until(lambda: len(board.produced) >= 70, "after restart")
                with board.lock:
                    board.paused = True
                restarted.pump_until(board.drained, "the board to drain")
    finally:
        line.close()
    got = [(int(r.extra["boot_id"]), int(r.extra["seq"])) for r in first + restarted.readings]
    assert set(got) == set(runner.board.produced)  # nothing lost
    assert len(got) - len(set(got)) <= 8  # at most a window repeated across the restart
    assert restarted.decoder.stats()["link_no_session"] > 0  # it resynced via NACK + HELLO


def test_cli_serves_a_pty() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators",
            "board",
            "--pty",
            "--interval",
            "0.05",
            "--duration",
            "20",
            "--seed",
            "3",
            "--faults",
            "drop_frame=0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        with serial.Serial(path, timeout=0.02) as port:
            host = Host(lambda t: port.read(4096), port.write)
            host.pump_until(lambda: len(host.readings) >= 10, "10 readings from the CLI board")
        assert host.decoder.nodes()[1].name == "sim-board"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "drop=0.1"], "bad fault"),
        (["--faults", "flip=2"], "outside 0..1"),
        (["--faults", "flip=x"], "not a number"),
        (["--node", "300"], "300"),
    ],
)
def test_cli_rejects_bad_options(args: list[str], message: str) -> None:
    result = run_cli("simulators", "board", *args, "--duration", "0.1", timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
