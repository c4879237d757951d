"""``wrong_way``: a track crosses a ``one_way`` line against its direction.

Fires at most once per track and line (a track's crossing of a line is counted once).
"""

from __future__ import annotations

from gateway.config.vision import LineConfig
from gateway.vision.analytics.alerts.base import AlertFrame, RuleContext
from gateway.vision.analytics.types import Alert, LineCrossing


def wrong_way(crossing: LineCrossing, line: LineConfig) -> Alert | None:
    """Return an alert when ``crossing`` goes against the line's ``one_way`` direction."""
    if line.one_way is None or crossing.direction == line.one_way:
        return None
    return Alert(
        camera_id=crossing.camera_id,
        kind="wrong_way",
        timestamp=crossing.timestamp,
        line_id=line.id,
        track_id=crossing.track_id,
        label=crossing.label,
        details={"direction": crossing.direction, "allowed": line.one_way},
    )


class WrongWay:
    """The rule over every ``one_way`` line of a camera."""

    def __init__(self, lines: dict[str, LineConfig]) -> None:
        self.lines = lines

    @classmethod
    def build(cls, ctx: RuleContext) -> WrongWay | None:
        """A rule when the camera has a ``one_way`` line."""
        lines = {line.id: line for line in ctx.camera.lines if line.one_way is not None}
        return cls(lines) if lines else None

    def check(self, frame: AlertFrame) -> list[Alert]:
        """One alert per crossing against its line's direction."""
        return [
            alert
            for crossing in frame.crossings
            if (line := self.lines.get(crossing.line_id)) is not None
            and (alert := wrong_way(crossing, line)) is not None
        ]
