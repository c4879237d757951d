"""Negotiated compact batches: the consumers' declarations, good, withdrawn and hostile."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.events import validate_event
from gateway.events.capabilities import (
    MAX_DECLARATION_BYTES,
    DeclarationError,
    encode_declaration,
    parse_declaration,
)
from gateway.events.envelope import envelope
from gateway.events.health import batch as batch_fields
from gateway.events.topics import capabilities_topic, event_type_of
from gateway.localservers import free_port
from gateway.transport.forwarder import Batching
from gateway.transport.negotiate import BULK_TYPES, MAX_CONSUMERS, BatchPolicy
from tests.support.transport import settings_for

PREFIX = "city"
TS = "2026-12-01T16:00:00.000Z"
OWN = Batching("city/s1/g1/batch", min_events=20, max_events=500, max_bytes=256 * 1024)


def declaration(consumer: str = "ingest", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        encode_declaration(
            consumer, PREFIX, TS, sorted(BULK_TYPES), max_bytes=4 << 20, max_events=10_000
        )
    )
    encoding = changes.pop("encoding", {})
    body["encodings"][0].update(encoding)
    body.update(changes)
    return body


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def policy(mode: str = "negotiate", settle_s: float = 0.0) -> BatchPolicy:
    return BatchPolicy(
        mode,  # type: ignore[arg-type]
        OWN,
        PREFIX,
        clock=lambda: 1_800_000_000.0,
        monotonic=lambda: NOW[0],
        settle_s=settle_s,
    )


NOW = [0.0]


def test_more_batching_waits_to_settle_and_less_is_at_once() -> None:
    """After a connection the retained declarations come one by one: a consumer that
    reads less may follow one that reads more, so widening waits, narrowing does not."""
    p = policy(settle_s=1.0)
    NOW[0] = 100.0
    declare(p, raw(declaration()))
    assert p.current() is None  # not yet: another consumer may still be on its way
    NOW[0] = 100.5
    declare(p, raw(declaration("dashboard", encoding={"types": []})), "dashboard")
    NOW[0] = 102.0
    assert p.current() is None  # the dashboard reads no batches: never switched on
    declare(p, raw(declaration("dashboard", encoding={"types": ["aggregate"]})), "dashboard")
    assert p.current() is None
    NOW[0] = 103.0
    on = p.current()
    assert on is not None and on.types == {"aggregate"}
    declare(p, b"", "dashboard")  # more types again: waits
    assert p.current() == on
    declare(p, raw(declaration(encoding={"types": []})))  # less: at once
    assert p.current() is None


def declare(p: BatchPolicy, payload: bytes, consumer: str = "ingest") -> None:
    p.on_message(capabilities_topic(PREFIX, consumer), payload)


def test_no_declaration_means_one_event_per_message_until_one_arrives() -> None:
    p = policy()
    assert p.current() is None and p.health(0).state == "off"
    declare(p, raw(declaration()))
    on = p.current()
    assert on is not None and on.types == BULK_TYPES
    assert (on.max_events, on.max_bytes) == (500, 256 * 1024)  # the smaller: the unit's own
    health = p.health(3)
    assert (health.state, health.encoding, health.consumers) == (
        "on",
        "zlib-json-array/1",
        ("ingest",),
    )
    fields = batch_fields(health)
    assert fields["batch_types"] == ",".join(sorted(BULK_TYPES)) and fields["batches"] == 3


def test_every_consumer_must_read_a_type_and_limits_are_the_smallest() -> None:
    p = policy()
    declare(p, raw(declaration()))
    declare(
        p,
        raw(
            declaration(
                "dashboard", encoding={"types": ["aggregate", "line_crossing"], "max_events": 50}
            )
        ),
        "dashboard",
    )
    on = p.current()
    assert on is not None and on.types == {"aggregate", "line_crossing"} and on.max_events == 50
    assert on.accepts("city/s1/g1/events/cam-1/aggregate")
    assert not on.accepts("city/s1/g1/sensors/pm-1")
    # A consumer that reads no batches switches them off for everyone, either way.
    for no_batches in (
        declaration("dashboard", encoding={"types": []}),
        declaration("dashboard", encodings=[]),
    ):
        declare(p, raw(declaration("dashboard")), "dashboard")
        assert p.current() is not None
        declare(p, raw(no_batches), "dashboard")
        assert p.current() is None
        assert "no bulk type" in p.health(0).reason and p.refusals == 0


def test_withdrawal_and_a_new_connection_switch_batches_off() -> None:
    p = policy()
    declare(p, raw(declaration()))
    assert p.current() is not None
    declare(p, b"")  # the retained message deleted
    assert p.current() is None and "withdrew" in p.health(0).reason
    declare(p, raw(declaration()))
    p.on_connected()  # declarations may have changed while away: wait for them again
    assert p.current() is None
    declare(p, raw(declaration()))
    assert p.current() is not None


def test_types_the_unit_never_batches_are_ignored() -> None:
    p = policy()
    declare(
        p,
        raw(declaration(encoding={"types": ["alert", "health", "sensor_reading", "future_type"]})),
    )
    on = p.current()
    assert on is not None and on.types == {"sensor_reading"}


HOSTILE = [
    (b"x" * (MAX_DECLARATION_BYTES + 1), "bytes >"),
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"[" * 10_000, "not UTF-8 JSON|nested"),
    (raw(declaration(schema=2)), "schema 2"),
    (raw(declaration(schema=True)), "schema true"),
    (raw(declaration(consumer="other")), "names consumer 'other'"),
    (raw(declaration(prefix="city/west")), "for prefix"),
    (raw(declaration(ts=12)), "ts"),
    (raw(declaration(encodings="zlib-json-array")), "encodings: not a list"),
    (raw(declaration(encodings=[{}] * 17)), "entries > 16"),
    (raw(declaration(encoding={"types": "line_crossing"})), "types: not a list"),
    (raw(declaration(encoding={"types": [1]})), "not an event type"),
    (raw(declaration(encoding={"types": ["x"] * 65})), "65 entries"),
    (raw(declaration(encoding={"max_events": "10"})), "max_events: not an integer"),
    (raw(declaration(encoding={"max_events": 1})), "max_events: 1 not in"),
    (raw(declaration(encoding={"max_bytes": 10**12})), "max_bytes"),
    (raw(declaration(encoding={"version": 2})), "no encoding this unit writes"),
    (raw(declaration(encoding={"name": "cbor-array"})), "offered: cbor-array/1"),
]


@pytest.mark.parametrize(("payload", "why"), HOSTILE)
def test_a_hostile_declaration_is_refused_and_switches_batches_off(
    payload: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    p = policy()
    declare(p, raw(declaration()))
    assert p.current() is not None
    with caplog.at_level(logging.WARNING):
        declare(p, payload)
    assert p.current() is None
    health = p.health(0)
    assert health.refusals == 1 and health.state == "off"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused the declaration of consumer 'ingest'" in w for w in warnings), warnings
    assert re.search(why, health.reason), health.reason
    declare(p, raw(declaration()))  # a good one replaces it
    assert p.current() is not None


def test_parse_checks_the_topic_owner_and_forward_compatible_additions() -> None:
    body = declaration()
    body["future"] = {"anything": 1}
    body["encodings"].append(
        {
            "name": "cbor-array",
            "version": 3,
            "types": [],
            "max_bytes": 2048,
            "max_events": 2,
            "x": 1,
        }
    )
    parsed = parse_declaration(raw(body), "ingest", PREFIX)
    assert [e.label for e in parsed.encodings] == ["zlib-json-array/1", "cbor-array/3"]
    body["encodings"].append(body["encodings"][0])
    with pytest.raises(DeclarationError, match="listed twice"):
        parse_declaration(raw(body), "ingest", PREFIX)


@pytest.mark.parametrize("name", ["batch", "health", "a/b", "", "x" * 65])
def test_names_that_are_not_consumers_are_ignored_and_counted(name: str) -> None:
    """(A unit named central/capabilities would publish its batches on .../batch there.)"""
    p = policy()
    declare(p, raw(declaration()))
    p.on_message(f"city/central/capabilities/{name}", raw(declaration()))
    p.on_message(f"city/central/capabilities/{name}", b"")
    assert p.current() is not None and p.refusals == 2  # both ignored


def test_declarations_are_bounded() -> None:
    p = policy()
    for n in range(MAX_CONSUMERS):
        declare(p, raw(declaration(f"c{n}")), f"c{n}")
    assert p.current() is not None
    declare(p, raw(declaration("one-more")), "one-more")
    assert p.current() is None and "more than 32" in p.health(0).reason
    assert len(p._declared) + len(p._refused) <= MAX_CONSUMERS + 1
    declare(p, b"", "c0")  # who else declared is not known: off until the next connection
    assert p.current() is None
    assert len(p._declared) + len(p._refused) <= MAX_CONSUMERS + 1


def test_at_the_bound_a_known_consumer_is_still_refused_in_its_place() -> None:
    p = policy()
    for n in range(MAX_CONSUMERS):
        declare(p, raw(declaration(f"c{n}")), f"c{n}")
    declare(p, raw(declaration("c5", schema=2)), "c5")
    assert p.current() is None and "declaration of c5 refused" in p.health(0).reason
    declare(p, raw(declaration("c5")), "c5")  # fixed: batches again
    assert p.current() is not None


@pytest.mark.parametrize(("mode", "state"), [("off", "off"), ("backlog", "on")])
def test_fixed_modes_ignore_declarations(mode: str, state: str) -> None:
    p = policy(mode)
    assert not p.owns(capabilities_topic(PREFIX, "ingest"))
    declare(p, b"garbage")
    assert p.health(0).state == state and p.refusals == 0


def test_a_defect_in_handling_never_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    p = policy()
    monkeypatch.setattr("gateway.transport.negotiate.parse_declaration", _boom)
    declare(p, raw(declaration()))
    assert p.current() is None and p.refusals == 1


def _boom(*_a: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("city/s1/g1/events/cam-1/line_crossing", "line_crossing"),
        ("city/s1/g1/sensors/pm-1", "sensor_reading"),
        ("city/s1/g1/health", None),
        ("city/s1/g1/events/cam-1", None),
        ("city/s1/g10/sensors/pm-1", None),
        ("city/s1/g1/sensors/pm-1/x", None),
    ],
)
def test_event_type_of_a_topic(topic: str, expected: str | None) -> None:
    assert event_type_of("city/s1/g1", topic) == expected


def test_after_a_connection_the_bulk_lane_waits_for_the_declarations_a_bounded_time() -> None:
    p = policy(settle_s=1.0)
    NOW[0] = 200.0
    assert not p.holds_bulk()  # never connected: nothing to wait for
    p.on_connected()
    assert p.holds_bulk()
    NOW[0] = 200.3
    declare(p, raw(declaration()))  # the retained declaration, a round trip later
    NOW[0] = 201.1
    assert p.holds_bulk() and p.current() is None  # it has not stood 1 s yet
    NOW[0] = 201.3
    assert not p.holds_bulk() and p.current() is not None  # the replay starts in batches
    p.on_connected()
    NOW[0] = 202.4  # nobody declared within 1 s: one by one
    assert not p.holds_bulk() and p.current() is None
    p.on_connected()  # a consumer that keeps changing its mind holds it twice the time at most
    for step in range(1, 30):
        NOW[0] = 202.4 + step * 0.1
        types = ["aggregate"] if step % 2 else ["aggregate", "flow"]
        declare(p, raw(declaration(encoding={"types": types})))
    assert NOW[0] > 202.4 + 2.0 and not p.holds_bulk()


@pytest.mark.parametrize("mode", ["off", "backlog"])
def test_fixed_modes_never_hold(mode: str) -> None:
    p = policy(mode, settle_s=1.0)
    p.on_connected()
    assert not p.holds_bulk()


@pytest.mark.parametrize("mode", ["negotiate", "backlog"])
def test_the_health_of_a_batching_unit_is_valid_v1(tmp_path: Path, mode: str) -> None:
    app = App(settings_for(tmp_path, free_port(), outbox={"batch": mode}))
    try:
        if mode == "negotiate":
            declare(app.batch_policy, raw(declaration(consumer="ingest")))
            app.batch_policy.settle_s = 0.0
            app.batch_policy.current()
        draft = app.health_draft()
    finally:
        app.outbox.close()
    outbox = draft.data["outbox"]
    assert isinstance(outbox, dict)
    assert outbox["batch_mode"] == mode and outbox["batch_state"] == "on"
    assert outbox["batch_types"] == ",".join(sorted(BULK_TYPES))
    validate_event(envelope(draft, seq=1, event_id="e" * 32, gateway="rsu-0001", site="s"))
