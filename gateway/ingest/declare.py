"""The ingest's declaration: what its worker group reads, retained for the units.

Published on ``{prefix}/central/capabilities/{share_group}`` (QoS 1, retained) on every
connection (a broker without persistence forgets retained messages). Units with
``[outbox] batch = "negotiate"`` batch only the types every consumer declares
(:mod:`gateway.transport.negotiate`). The group reads compact batches only when one of
its topic filters covers the batch topic; otherwise it declares that it reads none.
A worker that stops (or dies) leaves the declaration in place: its session on the
broker keeps collecting the batches for it.
"""

from __future__ import annotations

import logging
import time

from paho.mqtt.client import topic_matches_sub

from gateway.config.ingest import IngestConfig
from gateway.events.capabilities import encode_declaration, valid_consumer
from gateway.events.envelope import EVENT_TYPES, format_ts
from gateway.events.topics import Topics, capabilities_topic

log = logging.getLogger(__name__)


def reads_batches(config: IngestConfig, prefix: str) -> bool:
    """Whether one of the worker's topic filters covers every unit's batch topic."""
    sample = Topics(prefix, "site", "gateway").batch
    return any(topic_matches_sub(f, sample) for f in config.topics)


def declaration(config: IngestConfig, prefix: str) -> tuple[str, bytes] | None:
    """The declaration's topic and payload, or None when the worker must not declare."""
    if not config.declare:
        return None
    if not valid_consumer(config.share_group):
        log.error(
            "share_group %r cannot name a declaration (a topic kind): none published, units "
            'with batch = "negotiate" send one event per message',
            config.share_group,
        )
        return None
    types = list(EVENT_TYPES) if config.batch_types is None else config.batch_types
    if types and not reads_batches(config, prefix):
        log.warning(
            "no [ingest] topics filter covers %s: declaring that this group reads no batches",
            Topics(prefix, "+", "+").batch,
        )
        types = []
    if config.max_batch_events < 2:  # a batch of one is no batch: declare none
        types = []
    payload = encode_declaration(
        config.share_group,
        prefix,
        format_ts(time.time()),
        types,
        max_bytes=config.max_batch_bytes,
        max_events=max(config.max_batch_events, 2),
    )
    return capabilities_topic(prefix, config.share_group), payload
