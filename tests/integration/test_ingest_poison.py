"""Poison messages: every hostile payload is dead-lettered with a reason, the worker survives.

A real worker on real Mosquitto and VictoriaMetrics gets a good event, then each poison
payload followed by another good event: every good event is stored, every poison payload
is dead-lettered with its reason, and the pipeline thread is still alive at the end.
The decode -> map -> line-protocol path is also fuzzed: it raises nothing but
:class:`~gateway.ingest.decode.RejectedError`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest.convert import Limits, convert
from gateway.ingest.deadstore import DeadLetterStore
from gateway.ingest.decode import REASONS, RejectedError
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.integration.test_ingest_reliability import DeadLetterListener
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
    topic_of,
)
from tests.unit.ingest.test_ingest_mapping import CASES

NOW_S = 1_795_000_000.0  # the instant of the test events (tests.support.ingest.BASE_MS)


def _event(number: int, **changes: Any) -> bytes:
    event = line_event(number)
    data = changes.pop("data", {})
    event.update(changes)
    event["data"].update(data)
    return json.dumps(event).encode()


def _sensor(seq: int, values: dict[str, Any]) -> bytes:
    event = {
        **line_event(seq),
        "type": "sensor_reading",
        "data": {"sensor": "pm-1", "protocol": "pms5003", "values": values},
    }
    return json.dumps(event).encode()


def _aggregate(seq: int, lines: dict[str, Any]) -> bytes:
    data = {"interval_s": 60, "lines": lines, "zones": {}, "mean_speed_kmh": {}}
    return json.dumps({**line_event(seq), "type": "aggregate", "data": data}).encode()


# (name, payload, dead-letter reason). Seqs from 10_000 on: never a good event's seq.
POISON: list[tuple[str, bytes, str]] = [
    ("nested-arrays-5000", b"[" * 5000 + b"]" * 5000, "malformed_json"),
    ("nested-objects-5000", b'{"a":' * 5000 + b"1" + b"}" * 5000, "malformed_json"),
    ("lone-surrogate-tag", _event(10_001, data={"label": "\ud800"}), "invalid_event"),
    ("lone-surrogate-key", _aggregate(10_002, {"\udfff": {"in": {"car": 1}}}), "invalid_event"),
    ("huge-int-speed", _event(10_003, data={"speed_kmh": 10**400}), "out_of_range"),
    ("huge-int-sensor", _sensor(10_004, {"pm25": 10**400}), "out_of_range"),
    ("seq-1e30", _event(10_015, seq=10**30), "out_of_range"),
    ("count-1e30", _aggregate(10_005, {"l1": {"in": {"car": 10**30}}}), "out_of_range"),
    ("year-9999", _event(10_006, ts="9999-12-31T23:59:59.999Z"), "out_of_range"),
    ("year-0", _event(10_007, ts="0000-01-01T00:00:00.000Z"), "invalid_event"),
    ("month-13", _event(10_008, ts="2026-13-01T00:00:00.000Z"), "invalid_event"),
    ("nan-speed", _event(10_009).replace(b'"speed_kmh": 40.0', b'"speed_kmh": NaN'), "ok"),
    ("control-in-tag", _event(10_010, data={"label": "car\r\n\tx\x00"}), "invalid_event"),
    ("control-in-key", _sensor(10_011, {"pm\x0025": 3.0}), "invalid_event"),
    ("empty-key", _sensor(10_012, {"": 3.0}), "invalid_event"),
    ("long-tag", _event(10_013, data={"label": "x" * 5000}), "invalid_event"),
    ("invalid-utf8", b'{"schema": 1, "id": "\xff\xfe"}', "malformed_json"),
    ("zero-bytes", b"", "malformed_json"),
    ("json-array", b"[1, 2, 3]", "malformed_json"),
    ("json-string", b'"hello"', "malformed_json"),
    ("json-null", b"null", "malformed_json"),
    ("many-digits", b'{"a": ' + b"9" * 5000 + b"}", "malformed_json"),
    ("nul-bytes", b"\x00" * 64, "malformed_json"),
    ("bom", b"\xef\xbb\xbf" + _event(10_014), "malformed_json"),
]


def test_poison_messages_are_dead_lettered_and_the_good_ones_around_them_stored(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path)
    listener = DeadLetterListener(mosquitto.port, settings.ingest.dead_letter_topic)
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    topic = topic_of(line_event(1))
    bad = [(name, payload, reason) for name, payload, reason in POISON if reason != "ok"]
    seq = 1
    try:
        publisher.event(line_event(seq))
        for _name, payload, _reason in POISON:
            publisher.publish(topic, payload)
            seq += 1
            publisher.event(line_event(seq))
        publisher.wait_all()
        letters = listener.wait_for(len(bad), timeout=20)
        stored = [*range(1, seq + 1), 10_009]  # the NaN speed is left out, the event stored
        samples = seq_samples(victoria, expected=len(stored), timeout=20)
        alive = worker.failed is None and not worker.failed_event.is_set()
    finally:
        publisher.close()
        listener.close()
        worker.stop()
    assert alive, f"the pipeline died: {worker.failed!r}"
    assert_exactly_once(samples, stored)
    assert [m["reason"] for m in letters] == [reason for _, _, reason in bad], [
        (name, m["reason"], m["detail"]) for (name, _, _), m in zip(bad, letters, strict=False)
    ]
    assert all(m["detail"] for m in letters)
    stats = worker.stats.snapshot()
    assert stats["pending_acks"] == 0
    assert sum(stats["dead_letter"].values()) == len(bad)
    store = DeadLetterStore(settings.ingest.dead_letter_path or Path(), 2**30)
    kept = store.letters()
    store.close()  # every poison payload is kept, whole, with its reason
    assert [(x.payload, x.reason) for x in kept] == [(p, r) for _, p, r in bad]


# -- fuzzing the decode -> map -> line protocol path ------------------------------------------

LIMITS = Limits(max_payload_bytes=64 * 1024)

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_names = st.text(max_size=12) | st.sampled_from(["", "time", "seq", "a b", "x,y=z", "\\"])


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts (the dicts themselves included)."""
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*path, key)))
    return out


@st.composite
def _near_events(draw: st.DrawFn) -> bytes:
    """A valid event of every mapped type with one value replaced or one key added."""
    kind, data, source, _expected = draw(st.sampled_from(CASES))
    event: dict[str, Any] = copy.deepcopy({**line_event(1), "type": kind, "source": source})
    event["data"] = copy.deepcopy(data)
    path = draw(st.sampled_from(_paths(event)))
    if path:
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = draw(_json)
    target = event
    for key in path:
        target = target[key] if isinstance(target, dict) else target
    if isinstance(target, dict) and draw(st.booleans()):
        target[draw(_names)] = draw(_json)
    text = json.dumps(event, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def _check(payload: bytes) -> None:
    rejected: RejectedError | None = None
    try:
        out = convert(payload, LIMITS, NOW_S)
    except RejectedError as exc:
        rejected = exc
    if rejected is not None:
        assert rejected.reason in REASONS
        assert rejected.reason != "ingest_error", rejected.detail  # the safety net caught a defect
        assert rejected.detail
        rejected.detail.encode("utf-8")  # a detail is always printable as UTF-8
        return
    out.body.decode("utf-8")  # strict: no surrogates reached the line protocol
    assert out.points == (out.body.count(b"\n") + 1 if out.body else 0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_near_events())
def test_fuzz_near_valid_events_raise_only_rejections(payload: bytes) -> None:
    _check(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_raise_only_rejections(payload: bytes) -> None:
    _check(payload)


@pytest.mark.parametrize(("name", "payload", "reason"), POISON, ids=[p[0] for p in POISON])
def test_poison_table_reasons(name: str, payload: bytes, reason: str) -> None:
    if reason == "ok":
        assert convert(payload, LIMITS, NOW_S).points == 2  # the point and its ledger receipt
        return
    with pytest.raises(RejectedError) as info:
        convert(payload, LIMITS, NOW_S)
    assert info.value.reason == reason, info.value.detail
