"""End to end over real pseudo-terminals: simulator -> pty -> SensorReader -> readings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config.sensors import SensorConfig
from gateway.errors import UsageError
from gateway.sensors.registry import PROTOCOLS, ProtocolSpec, _external, make_decoder
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from simulators.sensors.stream import StreamSimulator, parse_faults
from tests.support.polling import wait_until
from tests.support.sensors import Sink


def _cfg(protocol: str, port: str, **kw: object) -> SensorConfig:
    return SensorConfig.model_validate(
        {"id": f"t-{protocol}", "protocol": protocol, "port": port} | kw
    )


@pytest.mark.parametrize(
    ("protocol", "value_key", "faults"),
    [
        ("pms5003", "pm2_5", "split,garbage,badsum"),
        ("sds011", "pm10", "merge,garbage,badsum"),
        ("nmea", "lat", "split,garbage,badsum"),
        ("ops243", "speed_kmh", "merge,garbage,badsum"),
    ],
)
def test_faulty_stream_every_good_frame_decoded(protocol: str, value_key: str, faults: str) -> None:
    sim = StreamSimulator(
        protocol,
        faults=parse_faults(faults),
        rate_hz=40,
        seed=7,
        fault_probability=0.3,
    )
    path = sim.open()
    sink = Sink()
    reader = SensorReader(_cfg(protocol, path), sink)
    reader.start()
    try:
        wait_until(lambda: reader.health().counters()["state"] == "open", what="port open")
        sim.start()
        wait_until(lambda: sim.stats.good_frames >= 40, what="frames sent")
        sim.stop(close=False)  # stop sending; the reader drains what is in flight
        sent = sim.stats.good_frames
        wait_until(lambda: reader.health().counters()["good"] >= sent, what=f"{sent} readings")
    finally:
        sim.stop()
        reader.stop()
    stats = reader.health().counters()
    assert stats["good"] == sent == sink.count()
    assert all(r.sensor_id == f"t-{protocol}" and value_key in r.values for r in sink.readings)
    assert int(stats["bytes"]) == sim.stats.bytes
    if protocol != "ops243":  # the radar has no checksum: a mangled line is a bad frame
        assert stats["bad_checksum"] == sim.stats.corrupted_frames > 0
    else:
        assert int(stats["bad_frames"]) >= sim.stats.corrupted_frames > 0
    assert int(stats["resyncs"]) > 0 or protocol == "ops243"
    assert stats["state"] == "stopped"


def test_port_vanishes_and_returns(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyPM0")
    sim = StreamSimulator(
        "pms5003",
        link=link,
        faults=frozenset({"unplug"}),
        rate_hz=20,
        seed=1,
        fault_period_s=1.0,
        unplug_gap_s=0.6,
    )
    assert sim.open() == link
    sink = Sink()
    reader = SensorReader(_cfg("pms5003", link, reopen_max_s=0.4), sink)
    reader.start()
    sim.start()
    try:
        wait_until(lambda: sim.stats.unplugs >= 1, what="an unplug")
        wait_until(lambda: int(reader.health().counters()["reopens"]) >= 1, what="a re-open")
        after_reopen = sink.count()
        wait_until(lambda: sink.count() >= after_reopen + 5, what="readings after re-open")
    finally:
        sim.stop()
        reader.stop()
    stats = reader.health().counters()
    assert int(stats["reopens"]) >= 1
    assert "lost" in str(stats["last_error"]) or "cannot open" in str(stats["last_error"])


def test_missing_port_keeps_retrying_and_stops(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-here")
    reader = SensorReader(_cfg("nmea", missing, reopen_max_s=0.2), Sink())
    reader.start()
    try:
        wait_until(lambda: int(reader.health().counters()["open_failures"]) >= 3, what="retries")
        assert reader.health().counters()["state"] in ("waiting", "opening")
        assert missing in str(reader.health().counters()["last_error"])
    finally:
        reader.stop()
    assert reader.health().counters()["state"] == "stopped"


def test_late_device_is_picked_up(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyGPS")
    sink = Sink()
    reader = SensorReader(_cfg("nmea", link, reopen_max_s=0.2), sink)
    reader.start()
    sim = StreamSimulator("nmea", link=link, rate_hz=20, seed=3)
    try:
        wait_until(
            lambda: int(reader.health().counters()["open_failures"]) >= 1, what="first failure"
        )
        sim.start()
        wait_until(lambda: sink.count() >= 4, what="readings")
    finally:
        sim.stop()
        reader.stop()
    assert reader.health().counters()["reopens"] == 0  # the first successful open is not a re-open
    assert sink.readings[0].values["fix"] == 1


def test_callback_failure_counted_reader_survives() -> None:
    calls = []

    def bad_callback(reading: Reading) -> None:
        calls.append(reading)
        raise RuntimeError("consumer bug")

    sim = StreamSimulator("sds011", rate_hz=40, seed=2)
    path = sim.open()
    reader = SensorReader(_cfg("sds011", path), bad_callback)
    reader.start()
    try:
        wait_until(lambda: reader.health().counters()["state"] == "open", what="open")
        sim.start()
        wait_until(lambda: len(calls) >= 5, what="callbacks")
    finally:
        sim.stop()
        reader.stop()
    assert int(reader.health().counters()["callback_errors"]) == len(calls)


def test_silence_counts_timeouts() -> None:
    sim = StreamSimulator("pms5003", rate_hz=10)
    path = sim.open()
    reader = SensorReader(_cfg("pms5003", path, read_timeout_s=0.3), Sink())
    reader.start()
    try:
        wait_until(lambda: int(reader.health().counters()["timeouts"]) >= 2, what="timeouts")
    finally:
        reader.stop()
        sim.close()


class EchoDecoder:
    """A decoder with write-back: acknowledges every chunk (what firmware bridges do)."""

    def __init__(self) -> None:
        self.acks = 0

    def feed(self, chunk: bytes) -> list[Reading]:
        self.acks += 1
        return [Reading("echo", {"n": len(chunk)})]

    def pending_writes(self) -> bytes:
        return b"ACK\n"


def test_pending_writes_reach_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PROTOCOLS, "echo", ProtocolSpec("echo", "stream", "test", lambda sid, opts: EchoDecoder())
    )
    sim = StreamSimulator("nmea", rate_hz=20, seed=5)
    path = sim.open()
    sink = Sink()
    reader = SensorReader(_cfg("echo", path, id="t-nmea"), sink)
    reader.start()
    try:
        wait_until(lambda: reader.health().counters()["state"] == "open", what="open")
        sim.start()
        wait_until(lambda: b"ACK\n" in bytes(sim.received), what="ack written back")
    finally:
        sim.stop()
        reader.stop()
    assert sink.readings
    assert sink.readings[0].sensor_id == "t-nmea"


def test_external_decoder_fails_only_when_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = _external("no_such_package.decoder:Missing", "ghost")
    monkeypatch.setitem(PROTOCOLS, "ghost", ProtocolSpec("ghost", "stream", "missing", factory))
    with pytest.raises(UsageError, match=r"no_such_package\.decoder:Missing is not available"):
        make_decoder("ghost")
    with pytest.raises(ValidationError, match=r"no_such_package\.decoder:Missing is not available"):
        _cfg("ghost", "/dev/null")  # a config selecting it fails to load, naming the decoder
    assert make_decoder("nmea").feed(b"") == []  # other protocols are unaffected


def test_rsb_protocol_resolves_lazily() -> None:
    decoder = make_decoder("rsb", "board1")
    assert decoder.feed(b"\x00\x00garbage\x00") == []
    assert callable(getattr(decoder, "pending_writes", None))


class BrokenDecoder:
    """A decoder with a bug on every third chunk."""

    def __init__(self) -> None:
        self.calls = 0

    def feed(self, chunk: bytes) -> list[Reading]:
        self.calls += 1
        if self.calls % 3 == 0:
            raise ValueError("decoder bug")
        return [Reading("broken", {"n": len(chunk)})]


def test_decoder_exception_counted_reader_survives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PROTOCOLS,
        "broken",
        ProtocolSpec("broken", "stream", "test", lambda sid, opts: BrokenDecoder()),
    )
    sim = StreamSimulator("nmea", rate_hz=40, seed=8)
    path = sim.open()
    sink = Sink()
    reader = SensorReader(_cfg("broken", path), sink)
    reader.start()
    try:
        wait_until(lambda: reader.health().counters()["state"] == "open", what="open")
        sim.start()
        wait_until(
            lambda: int(reader.health().counters()["decoder_errors"]) >= 3, what="decoder errors"
        )
        wait_until(lambda: sink.count() >= 6, what="readings between errors")
    finally:
        reader.stop()
        sim.stop()
    assert "decoder bug" in str(reader.health().counters()["last_error"])
    assert reader.health().counters()["reopens"] == 0  # a decoder bug is not a port failure
