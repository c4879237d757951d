"""JPEG encoding of frames: snapshots (command, CLI, runner) and the simulated MJPEG camera."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.errors import InputError


def encode_jpeg(image: NDArray[np.uint8], quality: int = 85, max_width: int | None = None) -> bytes:
    """JPEG bytes of a BGR image, scaled down (aspect kept) when wider than ``max_width``."""
    if max_width is not None and image.shape[1] > max_width:
        height = round(image.shape[0] * max_width / image.shape[1])
        image = np.asarray(
            cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError("could not encode the frame as JPEG")
    return bytes(buf.tobytes())
