"""The frame-reader protocol, and building a camera's reader from its source config.

A :class:`FrameReader` is a blocking reader for one camera, driven by the capture
thread (:mod:`gateway.sources.capture`). The source types are listed once, in
:data:`gateway.config.sources.SourceConfig`: each config class names its reader,
imported only when a source of that type is built (OpenCV and the simulator load
lazily).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from gateway.config.sources import SOURCE_TYPES, FileSource, SourceConfig
from gateway.errors import SourceError, UsageError


@runtime_checkable
class FrameReader(Protocol):
    """A blocking reader for one camera; used by the capture thread."""

    def open(self) -> None:
        """Connect to the camera; raise :class:`~gateway.errors.SourceError` on failure."""

    def read(self) -> tuple[NDArray[np.uint8], float] | None:
        """Return the next ``(BGR image, pts_s)``; ``None`` at the end of the stream."""

    def close(self) -> None:
        """Release the camera (safe to call twice, or before :meth:`open`)."""

    @property
    def nominal_fps(self) -> float | None:
        """The frame rate the source advertises, if any."""


def make_reader(source: SourceConfig, timeout_s: float = 10.0) -> FrameReader:
    """Build (not open) the reader that ``source``'s type names."""
    target = type(source).reader
    module_name, attr = target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SourceError(f"source type {source.type!r} is not available: {exc}") from exc
    reader = cls(source, timeout_s=timeout_s) if type(source).takes_timeout else cls(source)
    if not isinstance(reader, FrameReader):
        raise SourceError(f"{target} does not implement FrameReader")
    return reader


def is_live(source: SourceConfig) -> bool:
    """Whether the end of this source's stream means "reconnect" (and looped files)."""
    return source.live


def source_from_spec(spec: str, *, realtime: bool = False, loop: bool = False) -> SourceConfig:
    """Turn a command-line SOURCE into a source config.

    ``rtsp://`` / ``http(s)://`` URLs are network cameras, a bare integer is a USB
    camera index, ``simulator`` is the built-in simulator, ``gst:...`` a GStreamer
    pipeline, anything else a video file.
    """
    text = spec.strip()
    if not text:
        raise UsageError("empty camera source")
    for cls in SOURCE_TYPES.values():
        source = cls.from_spec(text)
        if source is not None:
            return source
    return FileSource(path=Path(text), loop=loop, realtime=realtime)


def describe(source: SourceConfig) -> str:
    """Name the source for logs and errors (without credentials from URLs)."""
    return source.describe()
