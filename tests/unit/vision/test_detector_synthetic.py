"""Decoders pinned down exactly with tiny ONNX graphs that emit fixed tensors.

Each graph takes an image input of the layout's type and returns Constant outputs,
so the expected source-pixel boxes follow by hand from the letterbox geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gateway.config.vision import DetectorConfig
from gateway.errors import ModelError
from gateway.vision.detector import OnnxDetector, load_detector
from gateway.vision.detector.preprocess import PAD_VALUE

SIZE = 64  # model input 64x64: anchor points for strides 8/16/32 = 64 + 16 + 4 = 84
GRID_POINTS = 84


def const_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_name: str = "images",
    input_type: int = TensorProto.FLOAT,
    input_shape: tuple[int | str, ...] = (1, 3, SIZE, SIZE),
) -> Path:
    """Write an ONNX model whose outputs are the given constants, whatever the image."""
    nodes = [
        helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))
        for name, value in outputs.items()
    ]
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)
            )
            for name, value in outputs.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def image(width: int, height: int, bgr: tuple[int, int, int] = (10, 20, 30)) -> np.ndarray:
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = bgr
    return out


def labels_file(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(names) + "\n")
    return path


# Three classes: 0 person, 1 car, 2 dog.
NAMES = ["person", "car", "dog"]


def v8_output() -> np.ndarray:
    """[1, 4 + 3, 20]: columns are candidates (cx, cy, w, h, 3 class scores), 14 all zero.

    Real v8 heads have far more candidates than rows; that is how the layout is told
    apart from v5's [1, N, 5 + C].
    """
    cols = [
        # cx, cy, w, h, person, car, dog
        (32, 32, 16, 8, 0.05, 0.90, 0.00),  # A: car
        (33, 32, 16, 8, 0.00, 0.80, 0.10),  # B: car, duplicate of A -> suppressed by NMS
        (32, 32, 16, 8, 0.70, 0.00, 0.00),  # C: person on the same spot -> kept (class-aware)
        (10, 40, 4, 4, 0.20, 0.00, 0.00),  # D: below the 0.35 threshold
        (50, 30, 8, 12, 0.00, 0.00, 0.95),  # E: dog -> removed by the class filter
        (20, 40, 8, 8, 0.00, 0.60, 0.00),  # F: car
    ]
    out = np.zeros((1, 7, 20), dtype=np.float32)
    out[0, :, : len(cols)] = np.array(cols, dtype=np.float32).T
    return out


def v5_output(rows: int) -> np.ndarray:
    """[1, rows, 5 + 3]: cx, cy, w, h, objectness, 3 class scores; unused rows are zero."""
    out = np.zeros((1, rows, 8), dtype=np.float32)
    out[0, 0] = (32, 32, 16, 8, 0.9, 0.1, 1.0, 0.0)  # A: car 0.9
    out[0, 1] = (33, 32, 16, 8, 0.8, 0.0, 1.0, 0.0)  # B: duplicate car 0.8 -> NMS
    out[0, 2] = (32, 32, 16, 8, 1.0, 0.7, 0.0, 0.0)  # C: person 0.7, same spot -> kept
    out[0, 3] = (10, 40, 4, 4, 0.9, 0.3, 0.0, 0.0)  # D: 0.9 * 0.3 = 0.27 < 0.35
    out[0, 4] = (50, 30, 8, 12, 1.0, 0.0, 0.0, 0.95)  # E: dog -> class filter
    out[0, 5] = (20, 40, 8, 8, 0.6, 0.0, 1.0, 0.0)  # F: car 0.6
    return out


# A 128x64 (w x h) source image letterboxes into 64x64 at scale 0.5, centred: 16 px
# padding above and below. Input-pixel (x, y) is source ((x) / 0.5, (y - 16) / 0.5).
# A: cx 32 cy 32 w 16 h 8 -> input [24, 28, 40, 36] -> source [48, 24, 80, 40].
# C: the same box. F: cx 20 cy 40 w 8 h 8 -> input [16, 36, 24, 44] -> source [32, 40, 48, 56].
EXPECTED = [
    ("car", 0.9, [48.0, 24.0, 80.0, 40.0]),
    ("person", 0.7, [48.0, 24.0, 80.0, 40.0]),
    ("car", 0.6, [32.0, 40.0, 48.0, 56.0]),
]


def check(det: OnnxDetector, expected: list[tuple[str, float, list[float]]]) -> None:
    dets = det.detect(image(128, 64))
    got = [
        (det.labels[c], float(s), b.tolist())
        for c, s, b in zip(dets.class_id, dets.score, dets.xyxy, strict=True)
    ]
    assert [(label, round(score, 5)) for label, score, _ in got] == [
        (label, score) for label, score, _ in expected
    ]
    for (_, _, box), (_, _, want) in zip(got, expected, strict=True):
        np.testing.assert_allclose(box, want, atol=1e-4)


@pytest.fixture
def v8_model(tmp_path: Path) -> Path:
    return const_model(tmp_path / "v8.onnx", {"output0": v8_output()})


@pytest.fixture
def v5_model(tmp_path: Path) -> Path:
    return const_model(tmp_path / "v5.onnx", {"output0": v5_output(12)})


def test_v8_decoder_exact(v8_model: Path, tmp_path: Path) -> None:
    det = load_detector(DetectorConfig(model=str(v8_model), labels=labels_file(tmp_path, NAMES)))
    assert det.model_type == "yolo"
    assert det.decoder.num_classes == 3
    check(det, EXPECTED)


def test_v5_decoder_exact(v5_model: Path, tmp_path: Path) -> None:
    det = load_detector(DetectorConfig(model=str(v5_model), labels=labels_file(tmp_path, NAMES)))
    assert det.model_type == "yolo"
    check(det, EXPECTED)


def test_class_filter_all_keeps_the_dog(v8_model: Path, tmp_path: Path) -> None:
    det = load_detector(
        DetectorConfig(model=str(v8_model), labels=labels_file(tmp_path, NAMES), classes=[])
    )
    # E: dog at cx 50 cy 30 w 8 h 12 -> input [46, 24, 54, 36] -> source [92, 16, 108, 40].
    dog = ("dog", 0.95, [92.0, 16.0, 108.0, 40.0])
    check(det, [dog, *EXPECTED])


def test_score_threshold(v8_model: Path, tmp_path: Path) -> None:
    det = load_detector(
        DetectorConfig(model=str(v8_model), labels=labels_file(tmp_path, NAMES), conf=0.65)
    )
    check(det, EXPECTED[:2])
    low = load_detector(
        DetectorConfig(model=str(v8_model), labels=labels_file(tmp_path, NAMES), conf=0.15)
    )
    # D: person 0.2 at cx 10 cy 40 w 4 h 4 -> input [8, 38, 12, 42] -> source [16, 44, 24, 52].
    check(low, [*EXPECTED, ("person", 0.2, [16.0, 44.0, 24.0, 52.0])])


def test_nms_threshold_from_config(v8_model: Path, tmp_path: Path) -> None:
    # A and B overlap with IoU (15 * 8) / (2 * 128 - 120) = 0.882: a 0.9 threshold keeps both.
    det = load_detector(
        DetectorConfig(model=str(v8_model), labels=labels_file(tmp_path, NAMES), nms_iou=0.9)
    )
    b = ("car", 0.8, [50.0, 24.0, 82.0, 40.0])
    check(det, [EXPECTED[0], b, *EXPECTED[1:]])


def test_default_filter_ignores_names_the_model_lacks(v8_model: Path) -> None:
    """Without a labels file a 3-class model is class0..class2; the default filter keeps none."""
    det = load_detector(DetectorConfig(model=str(v8_model)))
    assert det.labels == ["class0", "class1", "class2"]
    assert len(det.detect(image(128, 64))) == 0
    everything = load_detector(DetectorConfig(model=str(v8_model), classes=[]))
    assert len(everything.detect(image(128, 64))) == 4


def test_ultralytics_preprocessing_is_rgb_0_1_centred(v8_model: Path) -> None:
    det = load_detector(DetectorConfig(model=str(v8_model)))
    det.prepare(image(128, 64, bgr=(10, 20, 30)))
    tensor = det._preprocess.tensor
    assert tensor.shape == (1, 3, 64, 64)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(
        tensor[0, :, 16:48, :].reshape(3, -1).mean(axis=1), np.array([30, 20, 10]) / 255, rtol=1e-6
    )
    np.testing.assert_allclose(tensor[0, :, :16], PAD_VALUE / 255, rtol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 48:], PAD_VALUE / 255, rtol=1e-6)


def test_padding_is_restored_when_the_source_size_changes(v8_model: Path) -> None:
    det = load_detector(DetectorConfig(model=str(v8_model)))
    det.prepare(image(64, 64, bgr=(0, 0, 0)))  # fills the whole canvas
    det.prepare(image(128, 64, bgr=(0, 0, 0)))  # now padded rows must be 114 again
    np.testing.assert_allclose(det._preprocess.tensor[0, :, :16], PAD_VALUE / 255, rtol=1e-6)


def yolox_output() -> np.ndarray:
    """[1, 84, 85]: one confident row at stride 16, cell (x=1, y=2): row 64 + 2 * 4 + 1."""
    out = np.zeros((1, GRID_POINTS, 85), dtype=np.float32)
    row = 64 + 2 * 4 + 1
    out[0, row, :4] = (0.5, 0.25, np.log(2.0), 0.0)
    out[0, row, 4] = 0.9  # objectness
    out[0, row, 5 + 2] = 0.8  # car
    return out


def test_yolox_grid_decode_exact(tmp_path: Path) -> None:
    model = const_model(tmp_path / "x.onnx", {"output": yolox_output()})
    det = load_detector(DetectorConfig(model=str(model)))
    assert det.model_type == "yolox"
    # cx = (0.5 + 1) * 16 = 24, cy = (0.25 + 2) * 16 = 36, w = 2 * 16 = 32, h = 16:
    # input [8, 28, 40, 44]; a 128x128 source is scaled by 0.5, top-left, no padding.
    dets = det.detect(image(128, 128))
    assert det.labels[int(dets.class_id[0])] == "car"
    assert float(dets.score[0]) == pytest.approx(0.72)
    np.testing.assert_allclose(dets.xyxy, [[16.0, 56.0, 80.0, 88.0]], atol=1e-4)
    # BGR, 0..255, top-left: a 64x32 source fills the top half, 114 below.
    det.prepare(image(64, 32, bgr=(10, 20, 30)))
    np.testing.assert_allclose(det._preprocess.tensor[0, :, 0, 0], [10, 20, 30])
    np.testing.assert_allclose(det._preprocess.tensor[0, :, 40, 0], [PAD_VALUE] * 3)


def test_v5_with_grid_row_count_needs_the_yolo_override(tmp_path: Path) -> None:
    """A v5 head with one row per grid point looks like YOLOX: auto picks yolox, override fixes."""
    model = const_model(tmp_path / "v5grid.onnx", {"output0": v5_output(GRID_POINTS)})
    labels = labels_file(tmp_path, NAMES)
    auto = load_detector(DetectorConfig(model=str(model), labels=labels))
    assert auto.model_type == "yolox"
    forced = load_detector(DetectorConfig(model=str(model), labels=labels, model_type="yolo"))
    assert forced.model_type == "yolo"
    check(forced, EXPECTED)


def ssd_outputs() -> dict[str, np.ndarray]:
    boxes = np.zeros((1, 5, 4), dtype=np.float32)
    boxes[0, 0] = (0.25, 0.5, 0.75, 1.0)  # ymin, xmin, ymax, xmax
    boxes[0, 1] = (0.0, 0.0, 0.5, 0.25)
    boxes[0, 2] = (0.1, 0.1, 0.2, 0.2)
    boxes[0, 3] = (0.5, 0.5, 0.6, 0.6)
    boxes[0, 4] = (0.3, 0.3, 0.4, 0.4)
    return {
        "detection_boxes:0": boxes,
        "detection_scores:0": np.array([[0.9, 0.8, 0.7, 0.6, 0.99]], dtype=np.float32),
        # 3 = car, 1 = person, 12 = unused id (dropped), 6 = bus; the 5th is beyond num_detections
        "detection_classes:0": np.array([[3, 1, 12, 6, 1]], dtype=np.float32),
        "num_detections:0": np.array([4], dtype=np.float32),
    }


def test_ssd_decoder_exact(tmp_path: Path) -> None:
    model = const_model(
        tmp_path / "ssd.onnx",
        ssd_outputs(),
        input_name="image_tensor:0",
        input_type=TensorProto.UINT8,
        input_shape=("n", "h", "w", 3),
    )
    det = load_detector(DetectorConfig(model=str(model)))
    assert det.model_type == "ssd"
    assert det.input_size == (300, 300)
    dets = det.detect(image(200, 100))
    got = [
        (det.labels[c], round(float(s), 5)) for c, s in zip(dets.class_id, dets.score, strict=True)
    ]
    assert got == [("car", 0.9), ("person", 0.8), ("bus", 0.6)]
    np.testing.assert_allclose(
        dets.xyxy, [[100, 25, 200, 75], [0, 0, 50, 50], [100, 50, 120, 60]], atol=1e-3
    )
    # The input is RGB uint8, plain-resized to 300x300.
    det.prepare(image(200, 100, bgr=(10, 20, 30)))
    assert det._preprocess.tensor.dtype == np.uint8
    assert det._preprocess.tensor[0, 150, 150].tolist() == [30, 20, 10]


def test_input_size_override_for_dynamic_models(tmp_path: Path) -> None:
    model = const_model(
        tmp_path / "ssd.onnx",
        ssd_outputs(),
        input_name="image_tensor:0",
        input_type=TensorProto.UINT8,
        input_shape=(1, "h", "w", 3),
    )
    det = load_detector(DetectorConfig(model=str(model), input_size=320))
    assert det.input_size == (320, 320)


@pytest.mark.parametrize(
    ("outputs", "input_type", "input_shape", "message"),
    [
        (
            {"weird": np.zeros((1, 10), np.float32)},
            TensorProto.FLOAT,
            (1, 3, SIZE, SIZE),
            "unsupported model signature",
        ),
        (
            {"weird": np.zeros((1, 4, 3), np.float32)},
            TensorProto.FLOAT,
            (1, 3, SIZE, SIZE),
            "unsupported model signature",
        ),
        (
            {"out": np.zeros((1, 10, 85), np.float32)},
            TensorProto.FLOAT,
            (1, 1, SIZE, SIZE),
            "is not an image",
        ),
        (
            {"out": np.zeros((1, 10, 85), np.float32)},
            TensorProto.FLOAT,
            (1, 3, SIZE),
            "is not an image",
        ),
        (
            {"out": np.zeros((1, 10, 85), np.float32)},
            TensorProto.INT32,
            (1, 3, SIZE, SIZE),
            "is not an image",
        ),
    ],
)
def test_unsupported_signatures(
    tmp_path: Path,
    outputs: dict[str, np.ndarray],
    input_type: int,
    input_shape: tuple[int, ...],
    message: str,
) -> None:
    model = const_model(
        tmp_path / "odd.onnx", outputs, input_type=input_type, input_shape=input_shape
    )
    with pytest.raises(ModelError, match=message) as info:
        load_detector(DetectorConfig(model=str(model)))
    assert str(model) in str(info.value)
    assert "\n" not in str(info.value)
