"""The frame-reader protocol and the explicit registry of camera source types.

A :class:`FrameReader` is a blocking reader for one camera, driven by the capture
thread (:mod:`gateway.sources.capture`). Source types are looked up by the config's
``type`` literal in :data:`READERS`; modules are imported only when a source of
that type is built, so OpenCV and the simulator load lazily.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import (
    FileSource,
    GStreamerSource,
    SimulatorSource,
    SourceConfig,
    UrlSource,
    UsbSource,
)
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


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """Where a reader class lives and how it is built.

    Attributes:
        target: ``"module:ClassName"``, imported on first use.
        takes_timeout: the class accepts ``timeout_s=`` (network/device I/O timeout).
        live: a live stream: its end means "reconnect", not "done".
    """

    target: str
    takes_timeout: bool
    live: bool


# The explicit registry: source ``type`` -> reader.
READERS: dict[str, ReaderSpec] = {
    "file": ReaderSpec("gateway.sources.opencv:FileReader", takes_timeout=True, live=False),
    "url": ReaderSpec("gateway.sources.opencv:UrlReader", takes_timeout=True, live=True),
    "usb": ReaderSpec("gateway.sources.opencv:UsbReader", takes_timeout=True, live=True),
    "gstreamer": ReaderSpec(
        "gateway.sources.opencv:GStreamerReader", takes_timeout=True, live=True
    ),
    "simulator": ReaderSpec(
        "simulators.camera.source:SimulatorReader", takes_timeout=False, live=True
    ),
}


def make_reader(source: SourceConfig, timeout_s: float = 10.0) -> FrameReader:
    """Build (not open) the reader for ``source`` from :data:`READERS`."""
    spec = READERS.get(source.type)
    if spec is None:
        raise SourceError(f"unknown camera source type {source.type!r}")
    module_name, attr = spec.target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SourceError(f"source type {source.type!r} is not available: {exc}") from exc
    reader = cls(source, timeout_s=timeout_s) if spec.takes_timeout else cls(source)
    if not isinstance(reader, FrameReader):
        raise SourceError(f"{spec.target} does not implement FrameReader")
    return reader


def is_live(source: SourceConfig) -> bool:
    """Whether the end of this source's stream means "reconnect" (and looped files)."""
    if isinstance(source, FileSource):
        return source.loop
    return READERS[source.type].live


_URL = re.compile(r"^(rtsp|rtsps|http|https)://", re.IGNORECASE)


def source_from_spec(spec: str, *, realtime: bool = False, loop: bool = False) -> SourceConfig:
    """Turn a command-line SOURCE into a source config.

    ``rtsp://`` / ``http(s)://`` URLs are network cameras, a bare integer is a USB
    camera index, ``simulator`` is the built-in simulator, anything else a video file.
    """
    text = spec.strip()
    if not text:
        raise UsageError("empty camera source")
    if _URL.match(text):
        return UrlSource(url=text)
    if text.isdigit():
        return UsbSource(index=int(text))
    if text == "simulator":
        return SimulatorSource()
    if text.startswith("gst:"):
        return GStreamerSource(pipeline=text[4:])
    return FileSource(path=Path(text), loop=loop, realtime=realtime)


def describe(source: SourceConfig) -> str:
    """Name the source for logs and errors (without credentials from URLs)."""
    if isinstance(source, FileSource):
        return f"file {source.path}"
    if isinstance(source, UrlSource):
        return "url " + re.sub(r"//[^/@]*@", "//***@", source.url)
    if isinstance(source, UsbSource):
        return f"usb camera {source.index}"
    if isinstance(source, GStreamerSource):
        return "gstreamer pipeline"
    return f"simulator seed {source.seed}"
