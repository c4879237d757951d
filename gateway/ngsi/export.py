"""Batch export: event lines in, NGSI-LD entities out (stdout, a file, or a context broker).

Input lines are events as published (one JSON object per line) or ``topic payload``
lines as ``mosquitto_sub -v`` prints them. Each event is checked against the event
schema; a bad line is reported with its number and skipped, and everything else goes
on. Entities are checked against the project's data-model schemas before they leave.
A context broker gets them in batches through NGSI-LD's batch upsert
(``POST /ngsi-ld/v1/entityOperations/upsert``, ``application/ld+json``), retried with the
project's back-off on connection errors, 429 and 5xx; a batch the broker refuses with
another status stops the export with that status.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.backoff import Backoff
from gateway.errors import GatewayError
from gateway.events import event_problems
from gateway.ngsi.convert import Converter, NotExportedError
from gateway.ngsi.validate import entity_problems

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
MAX_REPORTED = 20  # bad lines reported one by one; the rest only counted


class ExportError(GatewayError):
    """The context broker refused (``retryable`` False) or stayed away within the retries."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(slots=True)
class ExportStats:
    """What one export did."""

    lines: int = 0
    events: int = 0
    entities: int = 0
    invalid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary printed at the end."""
        return {
            "lines": self.lines,
            "events": self.events,
            "entities": self.entities,
            "invalid": self.invalid,
            "skipped": dict(self.skipped),
        }

    def problem(self, text: str) -> None:
        """Keep a bad line's description (the first few)."""
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(text)


def parse_line(line: str) -> Any:
    """The JSON object of an input line (``topic payload`` lines accepted)."""
    text = line.strip()
    if not text.startswith("{") and " " in text:
        text = text.split(" ", 1)[1].strip()
    return json.loads(text)


class ContextBroker:
    """Posts entity batches to one NGSI-LD context broker."""

    def __init__(
        self,
        url: str,
        *,
        tenant: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 5,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``url`` is the broker's base URL (the upsert path is added)."""
        self.url = url.rstrip("/") + UPSERT_PATH
        self.tenant = tenant
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff = backoff or Backoff(0.5, 10.0)
        self.sleep = sleep
        self.posted = 0
        self.batches = 0
        self.retried = 0

    def upsert(self, entities: list[dict[str, Any]]) -> None:
        """Upsert one batch, retrying what may pass later; :class:`ExportError` otherwise."""
        body = json.dumps(entities, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/ld+json", "Accept": "application/json"}
        if self.tenant:
            headers["NGSILD-Tenant"] = self.tenant
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    status = response.status
                    reply = response.read()
            except urllib.error.HTTPError as exc:
                status, reply = exc.code, exc.read()
            except (urllib.error.URLError, OSError) as exc:
                status, reply = 0, str(exc).encode()
            if status in (200, 201, 204):
                self.backoff.reset()
                self.posted += len(entities)
                self.batches += 1
                return
            retryable = status in {0, 429} or status >= 500
            if status == 207 or not retryable or attempt == self.retries:
                detail = reply[:300].decode("utf-8", "replace")
                raise ExportError(
                    f"context broker {self.url}: HTTP {status or 'unreachable'}: {detail}",
                    retryable=retryable and status != 207,
                )
            self.retried += 1
            self.sleep(self.backoff.next_delay())


def entities_of(event: Any, converter: Converter) -> list[dict[str, Any]]:
    """The checked entities of one decoded payload.

    Raises:
        ValueError: not a valid event (the first problem).
        NotExportedError: a valid event that makes no entity (``reason``).
    """
    problems = event_problems(event)
    if problems:
        raise ValueError(f"not a valid event: {problems[0]}")
    out = converter.convert(event)
    for entity in out:
        bad = entity_problems(entity)
        if bad:  # a bug of the converter: never sent
            raise NotExportedError("invalid_entity", f"{entity.get('id')}: {bad[0]}")
    return out


def export(
    lines: Iterable[str],
    converter: Converter,
    sink: Callable[[list[dict[str, Any]]], None],
    *,
    batch_size: int = 100,
) -> ExportStats:
    """Convert every line; hand entities to ``sink`` in batches of ``batch_size``."""
    stats = ExportStats()
    batch: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        stats.lines += 1
        try:
            event = parse_line(line)
        except json.JSONDecodeError as exc:
            stats.invalid += 1
            stats.problem(f"line {number}: not JSON: {exc}")
            continue
        problems = event_problems(event)
        if problems:
            stats.invalid += 1
            stats.problem(f"line {number}: not a valid event: {problems[0]}")
            continue
        stats.events += 1
        try:
            entities = converter.convert(event)
        except NotExportedError as exc:
            stats.skipped[exc.reason] += 1
            continue
        for entity in entities:
            bad = entity_problems(entity)
            if bad:  # a bug of the converter, never sent
                stats.skipped["invalid_entity"] += 1
                stats.problem(f"line {number}: entity {entity.get('id')}: {bad[0]}")
                continue
            batch.append(entity)
            stats.entities += 1
            if len(batch) >= batch_size:
                sink(batch)
                batch = []
    if batch:
        sink(batch)
    return stats
