"""What C libraries write to stderr (FFmpeg, OpenCV) goes through the project's logging.

FFmpeg and OpenCV print straight to file descriptor 2 from C, past Python's
``sys.stderr``: raw lines in the middle of JSON logs, repeated hundreds of times by a
camera that sends damaged frames. :class:`NativeStderr` replaces fd 2 with a pipe and
reads it on a thread; each line becomes a log record (logger ``ffmpeg``, ``opencv``
or ``native``) at the level the line carries, through whatever handler and format
(text or JSON) logging has. Repeats of a line (numbers and addresses aside) are held
back and counted by :class:`~gateway.ratelog.RateLimitedLog`.

Python's own ``sys.stderr`` is moved to a copy of the original fd 2 first, so log
output, tracebacks and the CLI's error lines do not loop through the pipe. One
thread only drains the pipe into a bounded queue, another turns the lines into
records: a stuck log handler never fills the pipe and blocks a camera thread inside
FFmpeg; lines beyond the queue are dropped and counted in a log record.
:meth:`NativeStderr.stop` puts fd 2 back and logs what is left. A process killed by
a signal loses what was still in the pipe, so :mod:`faulthandler` writes Python's
crash report to the real stderr.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import fcntl
import io
import logging
import os
import re
import sys
import threading
from typing import TextIO

from gateway.ratelog import RateLimitedLog

PIPE_BYTES = 1 << 20  # asked for the pipe (Linux may grant less)
MAX_LINE = 4096  # longer lines are cut
MAX_QUEUED = 10_000  # lines waiting for the log handler; more are dropped and counted
REPEAT_INTERVAL_S = 60.0

# OpenCV's logger: "[ WARN:0@0.015] global cap.cpp:212 open VIDEOIO(FFMPEG): ..."
_OPENCV = re.compile(r"^\[\s*(FATAL|ERROR|WARN|INFO|DEBUG|VERBOSE)[^\]]*\]\s*(.*)$")
# FFmpeg's av_log: "[tcp @ 0x557e2c532640] Connection to tcp://... failed: ..."
_FFMPEG = re.compile(r"^\[([^\]@]+?) @ (?:0x)?[0-9a-fA-F]+\]\s*(.*)$")
_OPENCV_FFMPEG = re.compile(r"^\[OPENCV:FFMPEG:(\d+)\]\s*(.*)$")
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")
_OPENCV_LEVELS = {
    "FATAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "VERBOSE": logging.DEBUG,
}
# FFmpeg's AV_LOG_* levels (printed as numbers when OPENCV_FFMPEG_DEBUG is set).
_AV_LEVELS = ((16, logging.ERROR), (24, logging.WARNING), (32, logging.INFO))
_FAILURE = re.compile(r"error|fail|invalid|corrupt|refused|unauthori[sz]ed|not found", re.I)


def classify(line: str) -> tuple[str, int, str]:
    """``(logger name, level, message)`` for one line a C library wrote."""
    match = _OPENCV.match(line)
    if match:
        return "opencv", _OPENCV_LEVELS[match.group(1)], match.group(2)
    match = _OPENCV_FFMPEG.match(line)
    if match:
        av_level = int(match.group(1))
        level = next((lv for limit, lv in _AV_LEVELS if av_level <= limit), logging.DEBUG)
        return "ffmpeg", level, match.group(2)
    match = _FFMPEG.match(line)
    if match:
        # Without a level in the text: OpenCV keeps FFmpeg at warnings and errors.
        level = logging.ERROR if _FAILURE.search(match.group(2)) else logging.WARNING
        return "ffmpeg", level, f"{match.group(1)}: {match.group(2)}"
    return "native", logging.WARNING, line


class NativeStderr:
    """Route fd 2 into logging until :meth:`stop` (one instance per process)."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S) -> None:
        self._interval = interval_s
        self._saved: int | None = None
        self._threads: list[threading.Thread] = []
        self._python_stderr: TextIO | None = None
        self._limits: dict[str, RateLimitedLog] = {}
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._drained = False
        self._faulthandler_was_on = False
        self.lines = 0  # lines read from the pipe
        self.dropped = 0  # lines dropped because the log handler fell behind

    @property
    def active(self) -> bool:
        """Whether fd 2 is currently the pipe."""
        return self._saved is not None

    def start(self) -> None:
        """Swap fd 2 for the pipe (no-op when fd 2 is closed or already captured)."""
        if self._saved is not None:
            return
        try:
            saved = os.dup(2)
        except OSError:
            return  # no stderr at all: nothing to capture
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_inheritable(saved, False)
        old = sys.stderr
        with contextlib.suppress(Exception):
            old.flush()
        encoding = getattr(old, "encoding", None) or "utf-8"
        errors = getattr(old, "errors", None) or "backslashreplace"
        stream = io.TextIOWrapper(
            io.FileIO(saved, "w", closefd=False),
            encoding=encoding,
            errors=errors,
            line_buffering=True,
            write_through=True,
        )
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._saved = saved
        self._python_stderr = old
        self._drained = False
        self._faulthandler_was_on = faulthandler.is_enabled()
        sys.stderr = stream
        _retarget_handlers(old, stream)
        faulthandler.enable(file=stream)
        self._threads = [
            threading.Thread(target=self._pump, args=(read_fd,), name="native-stderr", daemon=True),
            threading.Thread(target=self._emitter, name="native-stderr-log", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Put the original fd 2 back and log what is still in the pipe."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's write end: the pump sees the end of it
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        stream = sys.stderr
        if self._python_stderr is not None:
            sys.stderr = self._python_stderr
            _retarget_handlers(stream, self._python_stderr)
            if self._faulthandler_was_on:
                faulthandler.enable(file=self._python_stderr)
            else:
                faulthandler.disable()
        os.close(saved)

    def _pump(self, read_fd: int) -> None:
        """Drain the pipe as fast as it fills (no logging here)."""
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as pipe:
                pending = b""
                while chunk := pipe.read(65536):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    if len(pending) > MAX_LINE:
                        lines.append(pending)
                        pending = b""
                    self._enqueue(lines)
                if pending:
                    self._enqueue([pending])
        finally:
            with self._cond:
                self._drained = True
                self._cond.notify_all()

    def _enqueue(self, lines: list[bytes]) -> None:
        if not lines:
            return
        with self._cond:
            for line in lines:
                if len(self._queue) < MAX_QUEUED:
                    self._queue.append(line)
                else:
                    self.dropped += 1
            self._cond.notify_all()

    def _emitter(self) -> None:
        reported = 0
        while True:
            with self._cond:
                while not self._queue and not self._drained:
                    self._cond.wait()
                if not self._queue:
                    break
                batch = list(self._queue)
                self._queue.clear()
                dropped = self.dropped
            for raw in batch:
                self._emit(raw)
            if dropped > reported:
                with contextlib.suppress(Exception):
                    logging.getLogger("native").warning(
                        "%d stderr line(s) of C libraries dropped: logging fell behind",
                        dropped - reported,
                    )
                reported = dropped

    def _emit(self, raw: bytes) -> None:
        line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r").strip()
        if not line:
            return
        self.lines += 1
        name, level, message = classify(line)
        limit = self._limits.get(name)
        if limit is None:
            limit = self._limits[name] = RateLimitedLog(
                logging.getLogger(name), self._interval, max_keys=256
            )
        with contextlib.suppress(Exception):  # logging must never kill the emitter
            limit.log(_NUMBERS.sub("#", message), level, "%s", message)


def _retarget_handlers(old: object, new: TextIO) -> None:
    """Point logging handlers that wrote to ``old`` at ``new``."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is old:
            handler.setStream(new)
