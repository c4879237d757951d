"""The byte budget's gate in tests: its steps taken, and a gate over a real outbox file."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from gateway.budget import held
from gateway.budget.gate import BudgetGate, Step
from gateway.budget.usage import WireUsage
from gateway.config.budget import BudgetConfig
from gateway.events.envelope import Draft
from gateway.events.topics import Topics
from gateway.transport.outbox import Outbox

TOPICS = Topics("city", "sejong-1", "rsu-0001")
DAY = 1_000_000


def taken(step: AbstractContextManager[Step]) -> list[Draft]:
    """The drafts of a gate step, the step done (as if they were stored)."""
    with step as done:
        return done.drafts


class Unit:
    """An outbox file and a gate on it, wired as :class:`gateway.app.App` wires them."""

    def __init__(self, path: Path, level: int = 2, **gate: object) -> None:
        self.outbox = Outbox(path, TOPICS)
        recovered = self.outbox.recovered  # a damaged file: what still reads is taken over
        damaged = recovered.quarantined if recovered is not None else None
        self.loaded = self.outbox.transact(lambda db: held.load(db, damaged))
        cfg = BudgetConfig(bytes_per_day=DAY, sensor_interval_s=600)
        usage = WireUsage(path.with_name("budget.json"))
        self.gate = BudgetGate(cfg, usage, held=self.loaded, durable=True, **gate)  # type: ignore[arg-type]
        self.gate.policy.index = level

    def store(self, step: object, inputs: int | None = None) -> list[Draft]:
        """Take a gate step and store it with its rows' changes; the drafts stored."""
        with step as taken:  # type: ignore[attr-defined]
            assert isinstance(taken, Step)
            self.outbox.add(taken.drafts, also=taken.write, unstored=inputs)
            return taken.drafts

    def admit(self, drafts: list[Draft]) -> list[Draft]:
        return self.store(self.gate.admit(drafts), len(drafts))

    def crash(self) -> None:
        """Abandon the gate and close the database as a killed process leaves it."""
        self.outbox._db.close()

    def events(self) -> list[dict[str, object]]:
        rows = self.outbox._db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
        return [json.loads(row[0]) for row in rows]


def rows(path: Path) -> tuple[int, int]:
    """Held rows and open-summary rows in the outbox file at ``path``."""
    with sqlite3.connect(path) as db:
        (crossings,) = db.execute("SELECT COUNT(*) FROM budget_held").fetchone()
        (summaries,) = db.execute("SELECT COUNT(*) FROM budget_summaries").fetchone()
    return int(crossings), int(summaries)
