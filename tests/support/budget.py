"""Steps of the byte budget's gate, taken as a caller that stores nothing would."""

from __future__ import annotations

from contextlib import AbstractContextManager

from gateway.budget.gate import Step
from gateway.events.envelope import Draft


def taken(step: AbstractContextManager[Step]) -> list[Draft]:
    """The drafts of a gate step, the step done (as if they were stored)."""
    with step as done:
        return done.drafts
