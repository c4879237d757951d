"""Flow measures of one camera: its lanes and its turning movements, once per interval.

:class:`FlowMeter` is fed by the engine after the lines and zones have run on a frame:
the tracked detections, their labels and speeds, and that frame's crossings and zone
transitions. When ``interval_s`` (default: the camera's ``aggregate_interval_s``) has
passed since the interval began it returns a :class:`FlowReport`. The first interval
starts with the first frame; when the clock goes back (more than ``CLOCK_STEP_S`` behind
the previous frame) the interval restarts at the new time (its counts are kept) and the
time integrals start anew.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import CameraConfig
from gateway.vision.analytics.lanes import LaneMeter, TrackedFrame
from gateway.vision.analytics.movements import MovementCounter
from gateway.vision.analytics.queues import ToWorld
from gateway.vision.analytics.types import AnalyticsEvent, FlowReport, LineCrossing
from gateway.vision.detections import Detections

# The clock going back more than this (a time sync on a unit without a real-time clock)
# restarts the interval, like the tracker does.
CLOCK_STEP_S = 1.0


class FlowMeter:
    """Per-lane measures and the movement matrix of one camera."""

    def __init__(
        self,
        camera: CameraConfig,
        labels: Sequence[str],
        frame_size: tuple[int, int],
        *,
        to_world: ToWorld | None,
        forget_s: float,
        speed_window_s: float = 0.0,
    ) -> None:
        """Build from ``camera.flow`` (which must be set); ``to_world`` is the calibration."""
        flow = camera.flow
        assert flow is not None
        self.camera_id = camera.id
        self.interval_s = flow.interval_s or camera.aggregate_interval_s
        lines = {line.id: line.points for line in camera.lines}
        self.lanes = [
            LaneMeter(
                camera.id,
                lane,
                lines[lane.line],
                frame_size,
                labels,
                congestion=flow.congestion,
                to_world=to_world,
                forget_s=forget_s,
                speed_delay_s=speed_window_s / 2,
            )
            for lane in flow.lanes
        ]
        self.movements = (
            MovementCounter(
                flow.gates,
                flow.movement_classes,
                forget_s=forget_s,
                max_transit_s=flow.max_transit_s,
            )
            if flow.gates
            else None
        )
        self.start: float | None = None
        self._last_ts: float | None = None

    def update(
        self,
        tracked: Detections,
        names: list[str],
        events: Sequence[AnalyticsEvent],
        speeds: NDArray[np.floating] | None,
        timestamp: float,
    ) -> FlowReport | None:
        """Feed one frame; a report when the interval is over."""
        stepped_back = self._last_ts is not None and timestamp < self._last_ts - CLOCK_STEP_S
        if self.start is None or timestamp < self.start or stepped_back:
            if self.start is not None:
                for lane in self.lanes:
                    lane.restart()
            self.start = timestamp
        self._last_ts = timestamp
        frame = TrackedFrame.of(tracked, names, speeds, timestamp)
        crossings = [e for e in events if isinstance(e, LineCrossing)]
        for lane in self.lanes:
            lane.update(frame, crossings)
        if self.movements is not None:
            self.movements.update(events, frame.rows, timestamp)
        if timestamp - self.start < self.interval_s:
            return None
        start, self.start = self.start, timestamp
        return FlowReport(
            camera_id=self.camera_id,
            start=start,
            end=timestamp,
            lanes={lane.lane.id: lane.close(start, timestamp) for lane in self.lanes},
            movements={} if self.movements is None else self.movements.take(),
        )
