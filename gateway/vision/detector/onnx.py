"""The ONNX Runtime detector: preprocess, run, decode, filter, NMS."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from gateway.config.vision import DetectorConfig
from gateway.errors import InputError, ModelError, UsageError
from gateway.vision.detections import Detections
from gateway.vision.detector.base import Decoder
from gateway.vision.detector.layouts import resolve_layout
from gateway.vision.detector.preprocess import Transform
from gateway.vision.detector.session import input_hw, input_spec, open_session, warm_up
from gateway.vision.detector.signature import Signature
from gateway.vision.labels import check_labels, default_labels, load_labels
from gateway.vision.nms import nms

log = logging.getLogger(__name__)


def as_bgr(image: Any) -> NDArray[np.uint8]:
    """Return ``image`` as 3-channel uint8 BGR (gray and BGRA are converted)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise InputError("image must be a non-empty uint8 numpy array")
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise InputError(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")


def class_mask(
    wanted: Sequence[str], labels: Sequence[str], strict: bool
) -> NDArray[np.bool_] | None:
    """Return a keep-mask over class ids for the ``wanted`` names (``None``: keep all).

    Unknown names are an error when ``strict``; otherwise (the default vehicle and
    pedestrian set on a model with other labels) they are ignored.
    """
    if not wanted:
        return None
    index = {name: i for i, name in enumerate(labels)}
    unknown = [name for name in wanted if name not in index]
    if unknown and strict:
        raise UsageError(
            f"unknown class {', '.join(unknown)}; the model's labels are: {', '.join(labels)}"
        )
    mask = np.zeros(len(labels), dtype=np.bool_)
    mask[[index[name] for name in wanted if name in index]] = True
    return mask


class OnnxDetector:
    """A loaded model behind the :class:`~gateway.vision.detector.Detector` interface.

    The input tensor is allocated once and reused, so one instance serves one thread
    at a time (give each camera worker its own detector, or serialise the calls).
    """

    def __init__(
        self,
        *,
        session: ort.InferenceSession,
        decoder: Decoder,
        labels: list[str],
        cfg: DetectorConfig,
        path: Path,
        keep: NDArray[np.bool_] | None,
    ) -> None:
        self.session = session
        self.decoder = decoder
        self.labels = labels
        self.path = path
        self.conf = cfg.conf
        self.nms_iou = cfg.nms_iou
        self.model_type = decoder.name
        self.input_size: tuple[int, int] = decoder.signature.input_hw
        self.last_inference_ms = 0.0
        self._keep = keep
        self._input_name = decoder.signature.input.name
        self._output_names = decoder.output_names
        self._preprocess = decoder.make_preprocessor()

    def prepare(self, image_bgr: NDArray[np.uint8]) -> tuple[dict[str, Any], Transform]:
        """Fill the preallocated input tensor; return the feed and the box transform."""
        transform = self._preprocess(image_bgr)
        return {self._input_name: self._preprocess.tensor}, transform

    def run(self, feed: dict[str, Any]) -> list[NDArray[np.float32]]:
        """``session.run`` on a prepared feed, timing it into :attr:`last_inference_ms`."""
        start = time.perf_counter()
        outputs: list[NDArray[np.float32]] = self.session.run(self._output_names, feed)
        self.last_inference_ms = (time.perf_counter() - start) * 1000.0
        return outputs

    def postprocess(
        self, outputs: Sequence[NDArray[np.float32]], transform: Transform, width: int, height: int
    ) -> Detections:
        """Decode, filter classes, map to source pixels, NMS."""
        decoded = self.decoder.decode(outputs, self.conf)
        if len(decoded.score) == 0:
            return Detections.empty()
        xyxy, score, class_id = decoded.xyxy, decoded.score, decoded.class_id
        if self._keep is not None:
            wanted = self._keep[class_id]
            xyxy, score, class_id = xyxy[wanted], score[wanted], class_id[wanted]
        boxes = transform.to_source(xyxy, width, height)
        dets = Detections.from_arrays(boxes, score, class_id)
        return nms(dets, self.nms_iou, class_aware=True)

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        """Return detections in source pixels: thresholded, class-filtered, NMS'd."""
        image = as_bgr(image_bgr)
        feed, transform = self.prepare(image)
        outputs = self.run(feed)
        return self.postprocess(outputs, transform, image.shape[1], image.shape[0])


def _resolve_model(
    cfg: DetectorConfig, model_dir: Path | None
) -> tuple[Path, str | None, list[str] | None]:
    """Find the model file, and the store's layout and labels when it came from the store."""
    path = Path(cfg.model).expanduser()
    if path.is_file():
        return path, None, None
    if path.exists():
        raise ModelError(f"model is not a file: {path}")
    if path.suffix == ".onnx" or "/" in cfg.model or "\\" in cfg.model:
        raise ModelError(f"model file not found: {path}")
    if model_dir is None:
        raise ModelError(f"model not found: {cfg.model} (not a file, and no model store given)")
    from gateway.modelstore.store import ModelStore

    stored = ModelStore(model_dir).get(cfg.model)
    return stored.path, stored.model_type, stored.labels


def load_detector(cfg: DetectorConfig, model_dir: Path | None = None) -> OnnxDetector:
    """Load ``cfg.model`` (a file, or a name in the model store under ``model_dir``).

    Picks the output layout from the model's signature unless ``cfg.model_type`` names
    one, checks the labels against the class count and runs a warm-up inference.
    """
    path, stored_type, stored_labels = _resolve_model(cfg, model_dir)
    session = open_session(path, cfg.providers, cfg.threads)
    spec = input_spec(session, str(path))
    hw = input_hw(spec, cfg.input_size)
    outputs = warm_up(session, spec, hw, str(path))
    model_type = cfg.model_type if cfg.model_type != "auto" else (stored_type or "auto")
    decoder = resolve_layout(Signature(spec, hw, outputs), model_type, str(path))
    if cfg.labels is not None:
        labels = check_labels(load_labels(cfg.labels), decoder.num_classes, str(cfg.labels))
    elif stored_labels:
        labels = check_labels(stored_labels, decoder.num_classes, f"the model store ({cfg.model})")
    else:
        labels = default_labels(decoder.num_classes)
    keep = class_mask(cfg.classes, labels, strict="classes" in cfg.model_fields_set)
    detector = OnnxDetector(
        session=session, decoder=decoder, labels=labels, cfg=cfg, path=path, keep=keep
    )
    detector.detect(np.full((hw[0], hw[1], 3), 114, dtype=np.uint8))  # warm the whole path
    log.debug(
        "loaded %s: %s layout, input %dx%d, %d classes, providers %s",
        path,
        decoder.name,
        hw[1],
        hw[0],
        decoder.num_classes,
        ",".join(session.get_providers()),
    )
    return detector
