"""The versioned event format: envelope, JSON Schema, topics and builders.

See ``docs/events.md`` for the format and the topic layout.
"""

from gateway.events.envelope import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    Draft,
    EventType,
    encode,
    envelope,
    format_ts,
    new_id,
    parse_ts,
)
from gateway.events.topics import Topics, data_filters, parse_topic
from gateway.events.validate import InvalidEventError, event_problems, load_schema, validate_event

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Draft",
    "EventType",
    "InvalidEventError",
    "Topics",
    "data_filters",
    "encode",
    "envelope",
    "event_problems",
    "format_ts",
    "load_schema",
    "new_id",
    "parse_topic",
    "parse_ts",
    "validate_event",
]
