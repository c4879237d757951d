"""The committed demo detector: loads through the project's detector, finds simulator objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from gateway.config.vision import DetectorConfig
from gateway.errors import ModelError
from gateway.vision.detector import load_detector
from modelzoo.train.data import clip_frames
from modelzoo.train.evaluate import ClassStats, score_frame
from simulators.camera.world import CLASSES

DEMO = Path(__file__).resolve().parents[3] / "modelzoo" / "demo"
MODEL, LABELS = DEMO / "roadsim.onnx", DEMO / "roadsim.labels.txt"


def test_model_file_is_small_opset_17_v8_layout() -> None:
    assert MODEL.stat().st_size < 3 * 1024 * 1024
    proto = onnx.load(str(MODEL))
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import}.get("", 0) == 17
    out = proto.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out][:2] == [1, 4 + len(CLASSES)]
    assert LABELS.read_text().split() == list(CLASSES)


def test_loads_with_auto_layout_and_labels() -> None:
    det = load_detector(DetectorConfig(model=str(MODEL), labels=LABELS))
    assert det.model_type == "yolo"
    assert det.labels == list(CLASSES)
    assert det.input_size == (192, 320)


def test_wrong_label_file_is_rejected(tmp_path: Path) -> None:
    labels = tmp_path / "coco3.txt"
    labels.write_text("person\nbicycle\ncar\n")
    with pytest.raises(ModelError):
        load_detector(DetectorConfig(model=str(MODEL), labels=labels))


@pytest.mark.parametrize(
    ("condition", "min_recall", "min_precision"),
    [("day", 0.9, 0.85), ("dusk", 0.8, 0.8), ("rain", 0.8, 0.8)],
)
def test_finds_objects_on_held_out_frames(
    condition: str, min_recall: float, min_precision: float
) -> None:
    det = load_detector(
        DetectorConfig(model=str(MODEL), model_type="yolo", labels=LABELS, conf=0.35)
    )
    stats: dict[int, ClassStats] = {}
    frames = 0
    for clip in range(3):  # seeds far from the training clips
        for img, gt in clip_frames(5_000_000 + clip, condition, 10, 12, 1.0, 20.0):
            score_frame(stats, det.detect(img), gt)
            frames += 1
    tp = sum(int(np.sum(s.hits)) for s in stats.values())
    objects = sum(s.objects for s in stats.values())
    scored = sum(len(s.hits) for s in stats.values())
    assert frames == 30
    assert objects > 200
    recall, precision = tp / objects, tp / max(scored, 1)
    assert recall >= min_recall, f"{condition}: recall {recall:.3f}"
    assert precision >= min_precision, f"{condition}: precision {precision:.3f}"
