"""The simulator as an in-process camera source (the ``simulator`` source type)."""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from gateway.config.sources import SimulatorSource
from gateway.errors import SourceError
from simulators.camera.lines import Line
from simulators.camera.mount import Mount, warp
from simulators.camera.render import GroundTruth, Renderer
from simulators.camera.world import Spawn, World, WorldConfig


def make_world(
    cfg: SimulatorSource, lines: tuple[Line, ...] = (), script: tuple[Spawn, ...] | None = None
) -> World:
    """Build the world a :class:`SimulatorReader` with ``cfg`` shows (for ground truth).

    With ``script`` the world plays those actors instead of random traffic.
    """
    return World(
        WorldConfig(
            seed=cfg.seed,
            fps=cfg.fps,
            aspect=cfg.width / cfg.height,
            density=cfg.density,
            lines=lines,
            script=script,
        )
    )


class SimulatorReader:
    """Frames from the procedural road scene; implements the ``FrameReader`` protocol.

    ``pts_s`` is the exact simulated time of the frame. With ``realtime`` the
    reader paces frames at ``fps`` like a camera: simulated time follows the wall
    clock, and when the reader falls behind (a busy machine, a consumer that stalled)
    it skips to the frame that is due instead of rendering the missed ones in a burst
    (``skipped`` counts them; the world still moves through every frame, so the
    ground truth is unchanged). Otherwise it renders as fast as it can. With
    ``duration_s`` the stream ends after that much simulated time. With ``lines``
    the world logs their crossings (``world.crossings``: the ground truth); with
    ``script`` it plays those actors (a scenario) instead of random traffic; without
    ``script``, the config's ``scenario`` names one of
    :data:`simulators.camera.scenarios.SCENARIOS` (its actors and lines).
    """

    def __init__(
        self,
        cfg: SimulatorSource,
        lines: tuple[Line, ...] = (),
        script: tuple[Spawn, ...] | None = None,
    ) -> None:
        self.cfg = cfg
        self.lines = lines
        self.script = script
        self.world: World | None = None
        self.renderer: Renderer | None = None
        self.truth: GroundTruth | None = None
        self.image: NDArray[np.uint8] | None = None  # the latest frame, as returned
        self._start = 0.0
        self.skipped = 0

    @property
    def nominal_fps(self) -> float | None:
        """The configured frame rate."""
        return self.cfg.fps

    def open(self) -> None:
        """Build the world and the renderer (restarting from the seed)."""
        try:
            self.renderer = Renderer(
                self.cfg.width, self.cfg.height, self.cfg.condition, self.cfg.seed
            )
        except ValueError as exc:
            raise SourceError(f"simulator: {exc}") from exc
        if self.script is None and self.cfg.scenario is not None:
            from simulators.camera.scenarios import SCENARIOS

            scenario = SCENARIOS.get(self.cfg.scenario)
            if scenario is None:
                known = ", ".join(sorted(SCENARIOS))
                raise SourceError(f"simulator: no scenario {self.cfg.scenario!r} ({known})")
            self.script = scenario.spawns
            self.lines = self.lines or scenario.lines
        self.world = make_world(self.cfg, self.lines, self.script)
        self._start = time.monotonic()
        self.skipped = 0

    def read(self) -> tuple[NDArray[np.uint8], float] | None:
        """Advance one frame and render it; ``None`` once ``duration_s`` has passed."""
        if self.world is None or self.renderer is None:
            raise SourceError("simulator: read() before open()")
        if self._ended():
            return None
        self.world.step()
        if self.cfg.realtime:
            self._pace()
        image, self.truth = self.renderer.render(self.world)
        knock = self.cfg.knock
        if knock is not None and self.world.t >= knock.at_s:
            mount = Mount(knock.shift_px, knock.rotate_deg, knock.at_s, knock.ramp_s)
            image = warp(image, mount.matrix(self.world.t, (self.cfg.width, self.cfg.height)))
        self.image = image
        return image, self.world.t

    def _ended(self) -> bool:
        assert self.world is not None
        duration = self.cfg.duration_s
        return duration is not None and self.world.t + 0.5 / self.cfg.fps >= duration

    def _pace(self) -> None:
        """Sleep until the current frame is due, or skip ahead to the frame due now."""
        assert self.world is not None
        period = 1.0 / self.cfg.fps
        delay = self._start + self.world.t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
            return
        # Behind: the next frame is due too. A camera does not send its missed frames
        # in a burst; it sends the current one.
        while self._start + self.world.t + period <= time.monotonic() and not self._ended():
            self.world.step()
            self.skipped += 1

    def close(self) -> None:
        """Drop the world (safe to call twice)."""
        self.world = None
        self.renderer = None
