"""The ingest's declaration follows its configuration."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway.config.ingest import IngestConfig
from gateway.events.capabilities import parse_declaration
from gateway.events.envelope import EVENT_TYPES
from gateway.ingest.declare import declaration


@pytest.mark.parametrize(
    ("config", "types"),
    [
        ({}, sorted(EVENT_TYPES)),
        ({"batch_types": ["aggregate"]}, ["aggregate"]),
        ({"batch_types": []}, []),
        ({"topics": ["+/+/+/events/#", "+/+/+/sensors/#"]}, []),  # it reads no batch topic
        ({"topics": ["city/#"]}, sorted(EVENT_TYPES)),
        ({"max_batch_events": 77}, sorted(EVENT_TYPES)),
        ({"max_batch_events": 1}, []),  # (declared as 2, the least a unit reads)
    ],
)
def test_the_declaration_says_what_the_group_reads(
    config: dict[str, Any], types: list[str]
) -> None:
    cfg = IngestConfig.model_validate(config)
    found = declaration(cfg, "city")
    assert found is not None
    topic, payload = found
    assert topic == "city/central/capabilities/ingest"
    parsed = parse_declaration(payload, "ingest", "city")  # what a unit reads back
    (entry,) = parsed.encodings
    assert sorted(entry.types) == types
    assert (entry.max_bytes, entry.max_events) == (
        cfg.max_batch_bytes,
        max(cfg.max_batch_events, 2),
    )
    assert json.loads(payload)["schema"] == 1


def test_no_declaration_when_off_or_unnamable(caplog: pytest.LogCaptureFixture) -> None:
    assert declaration(IngestConfig(declare=False), "city") is None
    with caplog.at_level(logging.ERROR):
        assert declaration(IngestConfig(share_group="batch"), "city") is None
    assert "cannot name a declaration" in caplog.text


@pytest.mark.parametrize(
    ("topics", "reads"),
    [
        (None, False),  # the default "+/+/+/batch" is one prefix level: not city/east/s/g/batch
        (["city/east/+/+/batch"], True),
        (["city/east/#"], True),
    ],
)
def test_a_prefix_of_several_levels(topics: list[str] | None, reads: bool) -> None:
    cfg = IngestConfig.model_validate({} if topics is None else {"topics": topics})
    found = declaration(cfg, "city/east")
    assert found is not None
    topic, payload = found
    assert topic == "city/east/central/capabilities/ingest"
    (entry,) = parse_declaration(payload, "ingest", "city/east").encodings
    assert bool(entry.types) is reads
