"""Open a camera once and wait for its first frame, within one deadline.

Used by the field tools (``gateway camera check``/``snapshot``, ``gateway doctor``):
they must name the cause of a failure quickly, not retry like the runtime's capture
thread does. A reader that blocks past the deadline (a backend ignoring its own
timeouts) is abandoned on its daemon thread and reported as a ``timeout``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.config.sources import SourceConfig
from gateway.errors import CameraOpenError, GatewayError, SourceError
from gateway.sources.base import describe, is_live, make_reader

# Time given on top of the timeout to a reader that is about to give up by itself.
GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class FirstFrame:
    """The first frame of a source and how long it took."""

    image: NDArray[np.uint8]
    nominal_fps: float | None
    open_s: float  # connecting and opening
    frame_s: float  # from open to the (last settle) frame


def first_frame(source: SourceConfig, timeout_s: float, settle_frames: int = 1) -> FirstFrame:
    """Open ``source`` and read ``settle_frames`` frames (a live camera's first may be stale).

    Raises:
        CameraOpenError: the cause (from the reader, or ``timeout`` past ``timeout_s``).
        SourceError: opened, but no frame came.
    """
    outcome: list[FirstFrame | BaseException] = []

    def attempt() -> None:
        try:
            outcome.append(_read(source, timeout_s, settle_frames))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name="first-frame", daemon=True)
    worker.start()
    worker.join(timeout_s + GRACE_S)
    if not outcome:
        raise CameraOpenError(
            describe(source),
            "timeout",
            f"no frame within {timeout_s:.1f} s",
            "check that the camera streams (its web page), the network, or raise --timeout",
        )
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _read(source: SourceConfig, timeout_s: float, settle_frames: int) -> FirstFrame:
    reader = make_reader(source, timeout_s=timeout_s)
    start = time.monotonic()
    try:
        reader.open()
    except GatewayError:
        raise
    except Exception as exc:  # a backend's own exception type: still one clear error
        raise SourceError(f"cannot open {describe(source)}: {exc}") from exc
    opened = time.monotonic()
    try:
        image = None
        for _ in range(max(1, settle_frames) if is_live(source) else 1):
            item = reader.read()
            if item is None:
                break
            image = item[0]
    finally:
        reader.close()
    if image is None:
        raise SourceError(f"{describe(source)}: opened, but no frame arrived")
    return FirstFrame(image, reader.nominal_fps, opened - start, time.monotonic() - opened)
