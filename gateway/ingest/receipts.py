"""The delivery ledger in the database: a receipt per stored event, manifests as points.

What the reconciliation needs lives in the time-series database itself, written in the
same batch as the event's own points: so every worker of a shared subscription adds its
part, and what is audited is what the database holds (not what one worker remembers).

Receipt of an event (every event with ``seq`` > 0), measurement ``ledger_event``, tags
``gateway``, ``site``, ``type``, at the event's point time; integer fields:

* ``seq``;
* ``id0``, ``id1``, ``id2``: the 128-bit id in three parts (11, 11 and 10 hex digits),
  each plus ``(seq mod 512) * 2^44``, so every value fits the 53 bits a float holds
  exactly (VictoriaMetrics stores floats) and the parts of two events stamped in the
  same millisecond are still told apart (:func:`pack_hex`).

A manifest (``docs/ledger.md``) becomes ``ledger_manifest`` (its ``seq``, ``seq_first``,
``seq_last``, ``events``, ``waiting``, ``waiting_from``, ``number``, the two chains as
``chain0..5`` and ``from0..5`` (64 hex digits in six parts) and ``lost_<counter>``),
``ledger_manifest_type`` (tag ``type``: ``count``) and ``ledger_manifest_loss`` (tag
``cause``: ``seq_first``, ``seq_last``, ``count``; the i-th range i ms after the
manifest). Only ``ledger_event`` and ``ledger_manifest`` carry ``seq``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from gateway.ingest.mapping_errors import MappingError
from gateway.ingest.points import FieldValue, Point

RECEIPT: Final = "ledger_event"
MANIFEST: Final = "ledger_manifest"
MANIFEST_TYPE: Final = "ledger_manifest_type"
MANIFEST_LOSS: Final = "ledger_manifest_loss"
_TAG_SHIFT: Final = 1 << 44
_TAG_MOD: Final = 512
_DIGITS: Final = 11  # hex digits per part: 44 bits
_HEX32: Final = re.compile("^[0-9a-f]{32}$")
_HEX64: Final = re.compile("^[0-9a-f]{64}$")
_CAUSE: Final = re.compile("^[a-z_]{1,32}$")
_MAX_SEQ: Final = 2**53 - 1
_MAX_LOSSES: Final = 200
# No manifest covers more seqs than this (a busy unit's interval plus a written-off
# reserve is far less): a larger range is refused, so it cannot make an audit walk it.
MAX_MANIFEST_SPAN: Final = 10_000_000


def pack_hex(text: str, seq: int = 0) -> tuple[int, ...]:
    """Hex digits as integers of at most 53 bits: 11 digits each plus the seq tag."""
    tag = (seq % _TAG_MOD) * _TAG_SHIFT
    return tuple(tag + int(text[i : i + _DIGITS], 16) for i in range(0, len(text), _DIGITS))


def unpack_hex(parts: Sequence[int], digits: int) -> tuple[str, int]:
    """The ``digits`` hex digits and the ``seq mod 512`` tag packed by :func:`pack_hex`."""
    tags = {part // _TAG_SHIFT for part in parts}
    if len(tags) != 1:
        raise ValueError(f"parts of different events: {list(parts)}")
    widths = [min(_DIGITS, digits - i) for i in range(0, digits, _DIGITS)]
    if len(widths) != len(parts):
        raise ValueError(f"{len(parts)} parts for {digits} digits")
    text = "".join(f"{p % _TAG_SHIFT:0{w}x}" for p, w in zip(parts, widths, strict=True))
    return text, tags.pop()


def unpack_id(part0: int, part1: int, part2: int) -> tuple[str, int]:
    """:func:`unpack_hex` of an event id's three parts (32 digits), the audit's hot path."""
    tag = part0 // _TAG_SHIFT
    if part1 // _TAG_SHIFT != tag or part2 // _TAG_SHIFT != tag:
        raise ValueError(f"parts of different events: {[part0, part1, part2]}")
    mask = _TAG_SHIFT - 1
    return f"{part0 & mask:011x}{part1 & mask:011x}{part2 & mask:010x}", tag


def receipt(event: dict[str, Any], time_ns: int) -> Point:
    """The ``ledger_event`` point of a checked event."""
    seq: int = event["seq"]
    parts = pack_hex(event["id"], seq)
    tags = {"gateway": event["gateway"], "site": event["site"], "type": event["type"]}
    fields: dict[str, FieldValue] = {"seq": seq, "id0": parts[0], "id1": parts[1], "id2": parts[2]}
    return Point(RECEIPT, tags, fields, time_ns)


def _int(data: dict[str, Any], key: str, where: str = "data") -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEQ:
        raise MappingError(f"{where}.{key}: expected an integer 0..2^53-1, got {value!r}")
    return value


def _hex64(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not _HEX64.match(value):
        raise MappingError(f"data.{key}: expected 64 hex digits, got {value!r}")
    return value


def _counts(value: object, where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected an object, got {value!r}")
    return {str(k): _int(value, k, where) for k in value}


def map_manifest(data: dict[str, Any], tags: dict[str, str], seq: int, t: int) -> list[Point]:
    """``manifest``: ``ledger_manifest``, one ``ledger_manifest_type`` per type, losses."""
    gw = {"gateway": tags["gateway"], "site": tags["site"]}
    first, last = _int(data, "first_seq"), _int(data, "last_seq")
    if last - first + 1 > MAX_MANIFEST_SPAN or last < first - 1:
        raise MappingError(
            f"data: range {first}..{last} is not a manifest's (at most {MAX_MANIFEST_SPAN} seqs)"
        )
    chain, chain_from = _hex64(data, "chain"), _hex64(data, "chain_from")
    fields: dict[str, FieldValue] = {
        "seq": seq,
        "seq_first": first,
        "seq_last": last,
        "events": _int(data, "events"),
        "waiting": _int(data, "waiting"),
        "number": _int(data, "number"),
    }
    if "waiting_from" in data:
        fields["waiting_from"] = _int(data, "waiting_from")
    for name, text in (("chain", chain), ("from", chain_from)):
        for i, part in enumerate(pack_hex(text)):
            fields[f"{name}{i}"] = part
    for counter, value in _counts(data.get("lost"), "data.lost").items():
        if not _CAUSE.match(counter):
            raise MappingError(f"data.lost: counter name {counter!r}")
        fields[f"lost_{counter}"] = value
    points = [Point(MANIFEST, gw, fields, t)]
    for event_type, count in _counts(data.get("types"), "data.types").items():
        points.append(Point(MANIFEST_TYPE, {**gw, "type": event_type}, {"count": count}, t))
    losses = data.get("losses")
    if not isinstance(losses, list) or len(losses) > _MAX_LOSSES:
        raise MappingError(f"data.losses: expected a list of at most {_MAX_LOSSES} ranges")
    for i, loss in enumerate(losses):
        where = f"data.losses.{i}"
        if not isinstance(loss, dict):
            raise MappingError(f"{where}: expected an object, got {loss!r}")
        cause = loss.get("cause")
        if not isinstance(cause, str) or not _CAUSE.match(cause):
            raise MappingError(f"{where}.cause: expected a cause name, got {cause!r}")
        values: dict[str, FieldValue] = {
            "seq_first": _int(loss, "first_seq", where),
            "seq_last": _int(loss, "last_seq", where),
            "count": _int(loss, "count", where),
        }
        points.append(Point(MANIFEST_LOSS, {**gw, "cause": cause}, values, t + i * 1_000_000))
    return points
