"""What a central consumer reads: the retained declaration units negotiate batches with.

Every central consumer of bulk events (the ingest, and any other subscriber) publishes,
retained, on ``{prefix}/central/capabilities/{consumer}`` (QoS 1) the UTF-8 JSON object::

    {"schema": 1, "consumer": "ingest", "prefix": "city", "ts": "2026-12-01T16:00:00.000Z",
     "encodings": [{"name": "zlib-json-array", "version": 1, "max_bytes": 4194304,
                    "max_events": 10000, "types": ["aggregate", "line_crossing", ...]}]}

``encodings`` lists the compact containers it reads and, per container, the event types
it reads in it (``[]``: the consumer reads no batches). An empty retained message
withdraws the declaration. A unit forms batches of a type only when at least one
declaration is in force and every one lists that type for an encoding the unit writes
(:mod:`gateway.transport.negotiate`). docs/events.md has the rules.

:func:`parse_declaration` is the one way in: bounded size, strict JSON and types, the
consumer named in the payload must be the topic's, the prefix the reader's own.
Unknown keys are ignored (additions within schema 1); unknown encodings are kept and
simply not chosen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from gateway.events.batch import BATCH_SCHEMA
from gateway.events.topics import KINDS

DECLARATION_SCHEMA: Final = 1
BATCH_ENCODING: Final = "zlib-json-array"
BATCH_ENCODING_VERSION: Final = BATCH_SCHEMA
MAX_DECLARATION_BYTES: Final = 16 * 1024
MAX_ENCODINGS: Final = 16
MAX_TYPES: Final = 64
_CONSUMER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
_ENCODING_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")


class DeclarationError(ValueError):
    """A declaration that cannot be used; the message says why (one line)."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """One container a consumer reads, and what it reads in it."""

    name: str
    version: int
    types: frozenset[str]
    max_bytes: int
    max_events: int

    @property
    def label(self) -> str:
        """``name/version``, e.g. ``zlib-json-array/1``."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class Declaration:
    """A central consumer's declaration."""

    consumer: str
    prefix: str
    ts: str
    encodings: tuple[Encoding, ...]

    def encoding(self, name: str, version: int) -> Encoding | None:
        """The entry for container ``name`` version ``version``, if declared."""
        return next((e for e in self.encodings if (e.name, e.version) == (name, version)), None)


def valid_consumer(name: str) -> bool:
    """Whether ``name`` may name a consumer (one topic level, never a topic kind)."""
    return _CONSUMER.fullmatch(name) is not None and name not in KINDS


def encode_declaration(
    consumer: str,
    prefix: str,
    ts: str,
    types: Iterable[str],
    *,
    max_bytes: int,
    max_events: int,
) -> bytes:
    """The declaration of a consumer that reads compact batches of ``types``."""
    if not valid_consumer(consumer):
        raise ValueError(f"consumer {consumer!r}: [A-Za-z0-9_-]{{1,64}}, not a topic kind")
    body = {
        "schema": DECLARATION_SCHEMA,
        "consumer": consumer,
        "prefix": prefix,
        "ts": ts,
        "encodings": [
            {
                "name": BATCH_ENCODING,
                "version": BATCH_ENCODING_VERSION,
                "max_bytes": max_bytes,
                "max_events": max_events,
                "types": sorted(set(types)),
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _int(obj: dict[str, Any], key: str, low: int, high: int, where: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DeclarationError(f"{where}{key}: not an integer ({_show(value)})")
    if not low <= value <= high:
        raise DeclarationError(f"{where}{key}: {value} not in {low}..{high}")
    return value


def _str(obj: dict[str, Any], key: str, pattern: re.Pattern[str], where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise DeclarationError(f"{where}{key}: {_show(value)} is not a valid {key}")
    return value


def _show(value: object) -> str:
    text = json.dumps(value) if value is not None else "missing"
    return text if len(text) <= 40 else text[:37] + "..."


def _encoding(entry: object, index: int) -> Encoding:
    where = f"encodings[{index}]."
    if not isinstance(entry, dict):
        raise DeclarationError(f"encodings[{index}]: not an object")
    name = _str(entry, "name", _ENCODING_NAME, where)
    version = _int(entry, "version", 1, 1_000_000, where)
    types = entry.get("types")
    if not isinstance(types, list):
        raise DeclarationError(f"{where}types: not a list ({_show(types)})")
    if len(types) > MAX_TYPES:
        raise DeclarationError(f"{where}types: {len(types)} entries > {MAX_TYPES}")
    for t in types:
        if not isinstance(t, str) or _TYPE.fullmatch(t) is None:
            raise DeclarationError(f"{where}types: {_show(t)} is not an event type name")
    return Encoding(
        name=name,
        version=version,
        types=frozenset(types),
        max_bytes=_int(entry, "max_bytes", 1024, 256 * 1024 * 1024, where),
        max_events=_int(entry, "max_events", 2, 1_000_000, where),
    )


def parse_declaration(payload: bytes, consumer: str, prefix: str) -> Declaration:
    """Check a non-empty declaration received on ``consumer``'s topic under ``prefix``.

    Raises:
        DeclarationError: too large, not UTF-8 JSON, another schema, another consumer
        or prefix than the topic's, a field of the wrong type or range, too many
        entries, the same encoding twice.
    """
    if len(payload) > MAX_DECLARATION_BYTES:
        raise DeclarationError(f"{len(payload)} bytes > {MAX_DECLARATION_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except RecursionError as exc:
        raise DeclarationError("JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeclarationError(f"not UTF-8 JSON: {str(exc)[:120]}") from exc
    if not isinstance(obj, dict):
        raise DeclarationError("not a JSON object")
    schema = obj.get("schema")
    if schema != DECLARATION_SCHEMA or isinstance(schema, bool):
        raise DeclarationError(f"schema {_show(schema)} (this unit reads {DECLARATION_SCHEMA})")
    named = _str(obj, "consumer", _CONSUMER, "")
    if named != consumer:
        raise DeclarationError(f"names consumer {named!r} on the topic of {consumer!r}")
    declared_prefix = obj.get("prefix")
    if declared_prefix != prefix:
        raise DeclarationError(f"for prefix {_show(declared_prefix)}, not {prefix!r}")
    ts = _str(obj, "ts", _TS, "")
    entries = obj.get("encodings")
    if not isinstance(entries, list):
        raise DeclarationError(f"encodings: not a list ({_show(entries)})")
    if len(entries) > MAX_ENCODINGS:
        raise DeclarationError(f"encodings: {len(entries)} entries > {MAX_ENCODINGS}")
    encodings = tuple(_encoding(entry, i) for i, entry in enumerate(entries))
    labels = [e.label for e in encodings]
    if len(set(labels)) != len(labels):
        raise DeclarationError(f"encodings: an encoding is listed twice ({', '.join(labels)})")
    return Declaration(consumer=named, prefix=prefix, ts=ts, encodings=encodings)
