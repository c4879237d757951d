"""JPEG encoding of frames (snapshots, ``gateway camera snapshot``)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.errors import InputError


def encode_jpeg(image: NDArray[np.uint8], quality: int = 85) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError("could not encode the frame as JPEG")
    return bytes(buf.tobytes())
