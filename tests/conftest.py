"""Shared fixtures: the real models and footage in ../shared, and real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.localservers import Mosquitto, VictoriaMetrics

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def shared_file(*parts: str) -> Path:
    """A file under ../shared; fails the test with a clear message when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"missing {path}: the tests need the shared models and footage in ../shared "
            "(beside the repository checkout)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def yolox_nano() -> Path:
    return shared_file("models", "yolox_nano.onnx")


@pytest.fixture(scope="session")
def ssd_person() -> Path:
    return shared_file("models", "ssdlite_mobilenet_v2_person.onnx")


@pytest.fixture(scope="session")
def coco_labels() -> Path:
    return shared_file("models", "coco80.txt")


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    return shared_file("data", "bus.jpg")


@pytest.fixture(scope="session")
def street_jpg() -> Path:
    return shared_file("data", "street.jpg")


@pytest.fixture(scope="session")
def traffic_mp4() -> Path:
    return shared_file("data", "traffic_480p.mp4")


@pytest.fixture(scope="session")
def crossing_mp4() -> Path:
    return shared_file("data", "crossing_480p.mp4")


VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture(scope="session")
def vtest_avi() -> Path:
    """OpenCV's sample plaza clip, from Debian's opencv-doc (deploy/install-dev.sh)."""
    if not VTEST_AVI.is_file():
        pytest.fail(f"missing {VTEST_AVI}: install Debian's opencv-doc (deploy/install-dev.sh)")
    return VTEST_AVI


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free loopback port, stopped after the test."""
    server = Mosquitto(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A fresh VictoriaMetrics on a free loopback port, stopped after the test."""
    server = VictoriaMetrics(tmp_path / "victoria")
    server.start()
    yield server
    server.stop()
