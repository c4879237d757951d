"""The simulator as an RTSP camera: render a clip to MP4 and serve it in a loop with VLC.

VLC refuses to run as root, so when this process is root VLC is started as
``nobody`` through ``setpriv``; the clip is written to a world-readable folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2

from gateway.config.sources import SimulatorSource
from gateway.errors import SourceError
from simulators.camera.source import SimulatorReader


def render_clip(cfg: SimulatorSource, seconds: float, path: Path) -> int:
    """Write ``seconds`` of simulated video to ``path`` (MP4); returns the frame count."""
    reader = SimulatorReader(cfg.model_copy(update={"realtime": False, "duration_s": seconds}))
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height)
    )
    if not writer.isOpened():
        raise SourceError(f"cannot write video {path}")
    frames = 0
    reader.open()
    try:
        while (item := reader.read()) is not None:
            writer.write(item[0])
            frames += 1
    finally:
        reader.close()
        writer.release()
    return frames


class RtspServer:
    """``rtsp://127.0.0.1:PORT/cam`` serving a looped simulator clip through VLC."""

    def __init__(
        self,
        cfg: SimulatorSource,
        port: int,
        seconds: float = 60.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        """Serve ``seconds`` of looped video; with ``auth`` (user, password) VLC asks for it."""
        self.cfg, self.port, self.seconds, self.auth = cfg, port, seconds, auth
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The stream URL."""
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        """Render the clip and start VLC."""
        cvlc = shutil.which("cvlc")
        if cvlc is None:
            raise SourceError("RTSP needs VLC (Debian packages vlc-bin and vlc-plugin-base)")
        self._dir = Path(tempfile.mkdtemp(prefix="simcam-"))
        self._dir.chmod(0o755)
        clip = self._dir / "cam.mp4"
        render_clip(self.cfg, self.seconds, clip)
        clip.chmod(0o644)
        cmd = [
            cvlc,
            "-I",
            "dummy",
            "--no-audio",
            "--loop",
            str(clip),
            "--sout",
            f"#rtp{{sdp=rtsp://127.0.0.1:{self.port}/cam}}",
            "--sout-keep",
        ]
        if self.auth is not None:
            cmd += ["--sout-rtsp-user", self.auth[0], "--sout-rtsp-pwd", self.auth[1]]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise SourceError("VLC refuses root and setpriv is missing")
            cmd = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
        env = {**os.environ, "HOME": str(self._dir)}
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def stop(self) -> None:
        """Stop VLC and remove the clip."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
