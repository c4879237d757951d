"""The detector on the real models and photos in ../shared.

Reference boxes were made by hand: each photo was drawn with a labelled pixel grid
(50 px for bus.jpg, 100 px for street.jpg shown at 0.752 scale) and viewed; each
box's edges were read off the grid at the visible extent of the object (hair/helmet
to shoe soles, roof to wheels), to within about 5-10 source pixels. A detection
matches a reference when its label agrees and IoU >= 0.6, which a box on the wrong
object or from a wrong coordinate transform cannot reach.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.config.vision import DetectorConfig
from gateway.errors import InputError, ModelError
from gateway.modelstore.store import ModelStore
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections
from gateway.vision.detector import LAYOUTS, Detector, OnnxDetector, load_detector
from gateway.vision.labels import COCO80, COCO90_TO_80

# bus.jpg (640x640; black bars left of x=80 and right of x=560).
BUS_REFERENCE = [
    ("bus", [85, 137, 552, 435]),
    ("person", [110, 237, 205, 535]),  # beige coat, left
    ("person", [212, 240, 283, 510]),  # black jacket, middle
    ("person", [478, 262, 560, 520]),  # walking out at the right bar
]
# street.jpg (1330x1330).
STREET_REFERENCE = [
    ("car", [661, 588, 971, 769]),  # white hatchback
    ("person", [915, 508, 1133, 997]),  # cyclist in the orange jacket
    ("bicycle", [782, 718, 1243, 1027]),
    ("person", [76, 549, 275, 940]),  # man in the camouflage jacket, left
]
MATCH_IOU = 0.6


def matches(dets: Detections, labels: list[str], label: str, box: list[int]) -> float:
    """Best IoU of ``box`` with any detection labelled ``label``."""
    idx = [i for i, cid in enumerate(dets.class_id) if labels[cid] == label]
    if not idx:
        return 0.0
    return float(box_iou(dets.xyxy[idx], np.array([box], dtype=np.float32)).max())


@pytest.fixture(scope="module")
def yolox(yolox_nano: Path) -> OnnxDetector:
    return load_detector(DetectorConfig(model=str(yolox_nano)))


@pytest.fixture(scope="module")
def ssd(ssd_person: Path) -> OnnxDetector:
    return load_detector(DetectorConfig(model=str(ssd_person)))


def test_yolox_finds_bus_and_people_on_bus_jpg(yolox: OnnxDetector, bus_jpg: Path) -> None:
    dets = yolox.detect(cv2.imread(str(bus_jpg)))
    names = [yolox.labels[c] for c in dets.class_id]
    assert names.count("bus") == 1
    assert names.count("person") >= 3
    for label, box in BUS_REFERENCE:
        assert matches(dets, yolox.labels, label, box) >= MATCH_IOU, (label, box)
    assert yolox.last_inference_ms > 0
    assert yolox.model_type == "yolox"
    assert yolox.input_size == (416, 416)
    assert yolox.labels == list(COCO80)


def test_yolox_finds_cars_and_people_on_street_jpg(yolox: OnnxDetector, street_jpg: Path) -> None:
    dets = yolox.detect(cv2.imread(str(street_jpg)))
    names = [yolox.labels[c] for c in dets.class_id]
    assert names.count("car") >= 2
    assert names.count("person") >= 4
    for label, box in STREET_REFERENCE:
        assert matches(dets, yolox.labels, label, box) >= MATCH_IOU, (label, box)
    # Only the default vehicle and pedestrian classes, each box inside the image.
    assert set(names) <= {"person", "bicycle", "car", "motorcycle", "bus", "truck"}
    assert (dets.xyxy >= 0).all()
    assert (dets.xyxy <= 1330).all()


def test_ssd_finds_people_on_bus_jpg(ssd: OnnxDetector, bus_jpg: Path) -> None:
    dets = ssd.detect(cv2.imread(str(bus_jpg)))
    assert ssd.model_type == "ssd"
    assert ssd.input_size == (300, 300)
    assert len(dets) >= 2
    assert {ssd.labels[c] for c in dets.class_id} == {"person"}
    for _label, box in BUS_REFERENCE[1:3]:
        assert matches(dets, ssd.labels, "person", box) >= MATCH_IOU, box


def test_detections_are_sorted_and_above_threshold(yolox: OnnxDetector, street_jpg: Path) -> None:
    dets = yolox.detect(cv2.imread(str(street_jpg)))
    assert (dets.score >= 0.35).all()
    assert (np.diff(dets.score) <= 0).all()
    assert (dets.tracker_id == -1).all()


def test_resized_copy_gives_same_boxes_in_its_own_pixels(
    yolox: OnnxDetector, bus_jpg: Path
) -> None:
    """The letterbox inverse maps boxes to the source size, whatever it is."""
    image = cv2.imread(str(bus_jpg))
    wide = cv2.resize(image, (1280, 640))  # twice as wide: letterboxed with padding below
    small = yolox.detect(image)
    big = yolox.detect(wide)
    bus = lambda d: d.xyxy[[yolox.labels[c] == "bus" for c in d.class_id]][0]  # noqa: E731
    expected = bus(small) * np.array([2, 1, 2, 1], dtype=np.float32)
    assert box_iou(bus(big)[None], expected[None])[0, 0] > 0.9


def test_class_filter_all_and_subset(yolox_nano: Path, bus_jpg: Path) -> None:
    image = cv2.imread(str(bus_jpg))
    only_bus = load_detector(DetectorConfig(model=str(yolox_nano), classes=["bus"]))
    assert [only_bus.labels[c] for c in only_bus.detect(image).class_id] == ["bus"]
    everything = load_detector(DetectorConfig(model=str(yolox_nano), classes=[], conf=0.2))
    assert len(everything.detect(image)) >= len(only_bus.detect(image)) + 3


def test_unknown_class_name_is_an_error(yolox_nano: Path) -> None:
    with pytest.raises(Exception, match="unknown class persn"):
        load_detector(DetectorConfig(model=str(yolox_nano), classes=["persn"]))


def test_gray_and_bgra_images_are_accepted(yolox: OnnxDetector, bus_jpg: Path) -> None:
    image = cv2.imread(str(bus_jpg))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    assert len(yolox.detect(bgra)) == len(yolox.detect(image))
    assert "person" in [yolox.labels[c] for c in yolox.detect(gray).class_id]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 0, 3), dtype=np.uint8), "non-empty uint8"),
        (np.zeros((10, 10, 3), dtype=np.float32), "non-empty uint8"),
        (np.zeros((10, 10, 2), dtype=np.uint8), "HxW, HxWx3 or HxWx4"),
        (None, "non-empty uint8"),
    ],
)
def test_bad_image_arrays_are_input_errors(
    yolox: OnnxDetector, image: np.ndarray | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        yolox.detect(image)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "resolved"),
    [("auto", "yolox"), ("yolox", "yolox")],
)
def test_yolox_layout_auto_and_explicit(yolox_nano: Path, override: str, resolved: str) -> None:
    det = load_detector(DetectorConfig(model=str(yolox_nano), model_type=override))  # type: ignore[arg-type]
    assert det.model_type == resolved


def test_override_that_does_not_fit_is_a_model_error(yolox_nano: Path, ssd_person: Path) -> None:
    with pytest.raises(ModelError, match="does not fit model type ssd: the input is not uint8"):
        load_detector(DetectorConfig(model=str(yolox_nano), model_type="ssd"))
    with pytest.raises(ModelError, match="does not fit model type yolox"):
        load_detector(DetectorConfig(model=str(ssd_person), model_type="yolox"))


def test_layout_registry_is_explicit() -> None:
    assert list(LAYOUTS) == ["ssd", "yolox", "yolo"]
    assert all(LAYOUTS[name].name == name for name in LAYOUTS)


def test_detector_satisfies_protocol(yolox: OnnxDetector) -> None:
    det: Detector = yolox
    assert det.labels[5] == "bus"


def test_coco90_map() -> None:
    assert COCO90_TO_80[1] == COCO80.index("person")
    assert COCO90_TO_80[3] == COCO80.index("car")
    assert COCO90_TO_80[6] == COCO80.index("bus")
    assert COCO90_TO_80[8] == COCO80.index("truck")
    assert COCO90_TO_80[90] == COCO80.index("toothbrush")
    assert COCO90_TO_80[12] == -1
    assert COCO90_TO_80[0] == -1
    assert (COCO90_TO_80 >= 0).sum() == 80


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no/such/model.onnx", "model file not found: no/such/model.onnx"),
        ("nosuchmodel", "model not found: nosuchmodel (not a file, and no model store given)"),
    ],
)
def test_missing_model(model: str, message: str) -> None:
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_detector(DetectorConfig(model=model))


def test_directory_as_model_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a file"):
        load_detector(DetectorConfig(model=str(tmp_path)))


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx protobuf\x00\x01\x02" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_detector(DetectorConfig(model=str(bad)))


@pytest.mark.parametrize("lines", [3, 81])
def test_labels_file_of_wrong_length(yolox_nano: Path, tmp_path: Path, lines: int) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing{i}" for i in range(lines)) + "\n")
    with pytest.raises(ModelError, match=f"have {lines} names but the model has 80 classes"):
        load_detector(DetectorConfig(model=str(yolox_nano), labels=labels))


def test_missing_labels_file(yolox_nano: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="labels file not found"):
        load_detector(DetectorConfig(model=str(yolox_nano), labels=tmp_path / "nope.txt"))


def test_labels_file_renames_classes(yolox_nano: Path, coco_labels: Path, bus_jpg: Path) -> None:
    det = load_detector(DetectorConfig(model=str(yolox_nano), labels=coco_labels))
    assert det.labels == list(COCO80)


def test_unavailable_provider_lists_available_ones(yolox_nano: Path) -> None:
    with pytest.raises(ModelError, match=r"cuda \(CUDAExecutionProvider\) is not available.*cpu"):
        load_detector(DetectorConfig(model=str(yolox_nano), providers=["cuda"]))


def test_threads_setting_is_applied(yolox_nano: Path) -> None:
    det = load_detector(DetectorConfig(model=str(yolox_nano), threads=2))
    assert det.session.get_session_options().intra_op_num_threads == 2


def test_model_by_name_from_the_store(
    yolox_nano: Path, coco_labels: Path, bus_jpg: Path, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "models")
    store.import_file(yolox_nano, "nano", model_type="yolox", labels_file=coco_labels)
    det = load_detector(DetectorConfig(model="nano"), tmp_path / "models")
    assert det.model_type == "yolox"
    assert det.path == tmp_path / "models" / "nano" / "model.onnx"
    assert "bus" in [det.labels[c] for c in det.detect(cv2.imread(str(bus_jpg))).class_id]


def test_store_labels_of_wrong_length(yolox_nano: Path, tmp_path: Path) -> None:
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    ModelStore(tmp_path / "models").import_file(yolox_nano, "nano", labels_file=labels)
    with pytest.raises(ModelError, match="have 3 names but the model has 80 classes"):
        load_detector(DetectorConfig(model="nano"), tmp_path / "models")
