"""The registry of output layouts and the automatic choice between them."""

from __future__ import annotations

from gateway.errors import ModelError
from gateway.vision.detector.base import Decoder
from gateway.vision.detector.signature import Signature
from gateway.vision.detector.ssd import SsdDecoder
from gateway.vision.detector.yolo import YoloDecoder
from gateway.vision.detector.yolox import YoloxDecoder

# Layout name -> decoder class. Auto-detection tries them in this order: YOLOX is
# checked before the generic YOLO layout because a YOLOX output also has the v5 shape
# (it is recognised by having exactly one row per grid point).
LAYOUTS: dict[str, type[Decoder]] = {
    "ssd": SsdDecoder,
    "yolox": YoloxDecoder,
    "yolo": YoloDecoder,
}


def resolve_layout(signature: Signature, model_type: str, model: str) -> Decoder:
    """Return the decoder for ``model_type`` (``auto``: the first layout that fits)."""
    if model_type != "auto":
        cls = LAYOUTS.get(model_type)
        if cls is None:
            raise ModelError(
                f"unknown model type {model_type!r}; choose auto or one of {', '.join(LAYOUTS)}"
            )
        reason = cls.reject(signature)
        if reason is not None:
            raise ModelError(
                f"model {model} does not fit model type {model_type}: {reason} "
                f"({signature.describe()})"
            )
        return cls(signature)
    for cls in LAYOUTS.values():
        if cls.reject(signature) is None:
            return cls(signature)
    expected = "; ".join(cls.expects for cls in LAYOUTS.values())
    raise ModelError(
        f"unsupported model signature in {model}: {signature.describe()}; expected {expected}"
    )
