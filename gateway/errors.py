"""The exception tree of the gateway, one branch per boundary.

The CLI maps :class:`UsageError` and its subclasses (bad usage, configuration and input:
what was typed is wrong) to exit code 2 and every other :class:`GatewayError` (the
world failed: a camera, a broker, the network, the disk) to exit code 1, printing
the message as one line.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    ``fix``, when set, says what to do about it (the CLI prints it under the error).
    """

    fix: str | None = None


class UsageError(GatewayError):
    """Bad command-line usage or bad configuration (exit code 2)."""


class ConfigError(UsageError):
    """A configuration file that cannot be read or does not validate.

    ``problems`` holds one readable line per bad field, ``path: message``.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems or []


class ConfigWriteError(GatewayError):
    """The config file cannot be written (read-only filesystem, permissions, full disk)."""


class InputError(UsageError):
    """Input the user named that is missing or wrong (exit code 2).

    A file that does not exist or is not what the command reads (an image, a video,
    a capture, a model), a name that is not valid: the fix is in what was typed.
    """


class ModelError(InputError):
    """A model that is missing, corrupt, or of an unsupported layout (exit code 2)."""


class ModelStoreError(GatewayError):
    """The on-disk model store cannot be read or written, or a download failed."""


class SourceError(GatewayError):
    """A camera source that cannot be opened or has stopped delivering frames."""


class CameraOpenError(SourceError):
    """A camera that does not open, with the cause found and the fix.

    ``cause`` is short and stable (``connection refused``, ``DNS failure``,
    ``HTTP 401``, ``RTSP 454``, ``timeout``, ``not a video``, ...); ``detail`` says
    what was seen; ``fix`` what to do about it.
    """

    def __init__(self, source: str, cause: str, detail: str, fix: str) -> None:
        super().__init__(f"cannot open {source}: {cause}: {detail}")
        self.source = source
        self.cause = cause
        self.detail = detail
        self.fix: str | None = fix


class VideoFileError(CameraOpenError, InputError):
    """A video file that is missing or not a video: what was typed is wrong (exit code 2)."""


class SensorError(GatewayError):
    """A serial port or sensor protocol failure."""


class TransportError(GatewayError):
    """MQTT connection, outbox or publishing failure."""


class IngestError(GatewayError):
    """Failure on the central ingest side (broker or database)."""


class SecurityError(UsageError):
    """A certificate, key, bundle or signature that is missing, wrong or refused (exit code 2)."""
