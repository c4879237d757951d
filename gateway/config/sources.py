"""Camera source types: the one list of them, with what each needs to be opened.

:data:`SourceConfig` (a union discriminated by ``type``) is the registry: every source
type is one config class here, listed once in the union. Each class names its reader
(``"module:Class"``, imported only when a camera of that type opens, so OpenCV and
the simulator load lazily), whether its stream is live (its end means "reconnect"),
how it is shown in logs and which command-line spelling selects it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field

from gateway.config.common import StrictModel

_URL = re.compile(r"^(rtsp|rtsps|http|https)://", re.IGNORECASE)


class SourceBase(StrictModel):
    """What every source type declares besides its fields."""

    reader: ClassVar[str]
    """The :class:`~gateway.sources.base.FrameReader` class, as ``"module:Class"``."""
    takes_timeout: ClassVar[bool] = True
    """The reader accepts ``timeout_s=`` (network or device I/O timeout)."""
    live_stream: ClassVar[bool] = True
    """The end of the stream means "reconnect", not "done"."""

    @property
    def live(self) -> bool:
        """Whether the end of this source's stream means "reconnect"."""
        return self.live_stream

    def describe(self) -> str:
        """Name the source for logs and errors (never with credentials)."""
        raise NotImplementedError

    @classmethod
    def from_spec(cls, text: str) -> SourceConfig | None:
        """The source a command-line SOURCE names, when it is of this type."""
        return None


class FileSource(SourceBase):
    """A video file, optionally looped."""

    reader: ClassVar[str] = "gateway.sources.opencv:FileReader"
    live_stream: ClassVar[bool] = False

    type: Literal["file"] = "file"
    path: Path
    loop: bool = False
    realtime: bool = Field(default=True, description="Pace frames at the file's frame rate.")

    @property
    def live(self) -> bool:
        """A looped file restarts at its end, like a live stream reconnects."""
        return self.loop

    def describe(self) -> str:
        """``file <path>``."""
        return f"file {self.path}"


class UrlSource(SourceBase):
    """An RTSP or HTTP (MJPEG) network camera."""

    reader: ClassVar[str] = "gateway.sources.opencv:UrlReader"

    type: Literal["url"] = "url"
    url: str = Field(pattern=r"^(rtsp|rtsps|http|https)://")

    def describe(self) -> str:
        """``url <url>`` with any user and password masked."""
        return "url " + re.sub(r"//[^/@]*@", "//***@", self.url)

    @classmethod
    def from_spec(cls, text: str) -> UrlSource | None:
        """``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` URLs."""
        return cls(url=text) if _URL.match(text) else None


class UsbSource(SourceBase):
    """A USB / V4L2 camera by index."""

    reader: ClassVar[str] = "gateway.sources.opencv:UsbReader"

    type: Literal["usb"] = "usb"
    index: int = Field(default=0, ge=0)
    width: int | None = None
    height: int | None = None

    def describe(self) -> str:
        """``usb camera <index>``."""
        return f"usb camera {self.index}"

    @classmethod
    def from_spec(cls, text: str) -> UsbSource | None:
        """A bare integer: the camera index."""
        return cls(index=int(text)) if text.isdigit() else None


class GStreamerSource(SourceBase):
    """A GStreamer pipeline string ending in appsink (CSI cameras on Jetson)."""

    reader: ClassVar[str] = "gateway.sources.opencv:GStreamerReader"

    type: Literal["gstreamer"] = "gstreamer"
    pipeline: str

    def describe(self) -> str:
        """``gstreamer pipeline`` (the pipeline string may be long)."""
        return "gstreamer pipeline"

    @classmethod
    def from_spec(cls, text: str) -> GStreamerSource | None:
        """``gst:<pipeline>``."""
        return cls(pipeline=text[4:]) if text.startswith("gst:") else None


class SimulatorKnock(StrictModel):
    """Move the simulated camera during the stream (tests of camera-shift detection)."""

    at_s: float = Field(ge=0, description="Simulated time of the move.")
    shift_px: tuple[float, float] = Field(
        default=(0.0, 0.0), description="Right and down, in pixels of the frame."
    )
    rotate_deg: float = Field(default=0.0, ge=-45, le=45, description="Clockwise on screen.")
    ramp_s: float = Field(default=0.0, ge=0, description="Over this long (0: at once).")


class SimulatorSource(SourceBase):
    """The built-in procedural road-scene simulator."""

    reader: ClassVar[str] = "simulators.camera.source:SimulatorReader"
    takes_timeout: ClassVar[bool] = False

    type: Literal["simulator"] = "simulator"
    seed: int = 0
    width: int = Field(default=640, ge=64, le=3840)
    height: int = Field(default=360, ge=64, le=2160)
    fps: float = Field(default=10.0, gt=0.0, le=120.0)
    condition: Literal["day", "dusk", "rain"] = "day"
    density: float = Field(default=1.0, gt=0.0, le=5.0, description="Traffic density factor.")
    realtime: bool = Field(
        default=True, description="Pace frames at fps (False: render as fast as possible)."
    )
    duration_s: float | None = Field(
        default=None, gt=0, description="End the stream after this much simulated time."
    )
    scenario: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,64}$",
        description="A scripted scene (simulators/camera/scenarios.py) instead of traffic.",
    )
    knock: SimulatorKnock | None = Field(
        default=None,
        description="Move the view at a set time (the ground truth does not follow it).",
    )

    def describe(self) -> str:
        """``simulator seed <seed>``."""
        return f"simulator seed {self.seed}"

    @classmethod
    def from_spec(cls, text: str) -> SimulatorSource | None:
        """The word ``simulator``."""
        return cls() if text == "simulator" else None


SourceConfig = Annotated[
    FileSource | UrlSource | UsbSource | GStreamerSource | SimulatorSource,
    Field(discriminator="type"),
]

SOURCE_TYPES: dict[str, type[SourceBase]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(SourceConfig)[0])
}
"""Source ``type`` -> its config class, in the order of :data:`SourceConfig`."""
