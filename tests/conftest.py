"""Shared fixtures (the real models and footage in ../shared, real servers) and markers.

The tree shows the layers: ``unit/<package>`` (in-process), ``integration`` (real servers,
ptys, child processes), ``e2e`` (the whole chain), ``checks`` (the project's own rules).
Markers are put on every test from what it uses, so a subset is one ``-m`` away:

* ``needs_broker`` / ``needs_db``: the test or its module starts Mosquitto / a database
  (VictoriaMetrics or InfluxDB: the ``mosquitto`` / ``victoria`` / ``influxdb`` fixtures,
  or the server classes of gateway.localservers);
* ``needs_shared``: a model or clip from ../shared (its fixtures, or ``shared_file``);
* ``slow``: marked in the module (long end-to-end runs); ``pytest -m "not slow"`` is the
  quick loop; the README's test command (two workers, pytest-xdist) runs everything.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from gateway.localservers import InfluxDB, Mosquitto, VictoriaMetrics

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_FIXTURES = frozenset(
    {
        "yolox_nano",
        "ssd_person",
        "coco_labels",
        "bus_jpg",
        "street_jpg",
        "traffic_mp4",
        "crossing_mp4",
    }
)


@functools.cache
def _source(module: ModuleType) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the servers and files it needs (see the module docstring)."""
    for item in items:
        module = getattr(item, "module", None)
        source = _source(module) if module is not None else ""
        names = set(getattr(item, "fixturenames", ()))
        if "mosquitto" in names or "Mosquitto(" in source:
            item.add_marker(pytest.mark.needs_broker)
        databases = {"victoria", "influxdb"}
        if names & databases or "VictoriaMetrics(" in source or "InfluxDB(" in source:
            item.add_marker(pytest.mark.needs_db)
        if names & SHARED_FIXTURES or "shared_file(" in source:
            item.add_marker(pytest.mark.needs_shared)


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


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Put the root logger back as it was after each test.

    A command run in-process calls ``setup_logging``, which replaces the root handlers
    with one on the ``sys.stderr`` of that moment (pytest's capture of that test). Left
    in place, a thread of a later test logs into the closed capture ("Logging error").
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB volume (tmpfs) for full-disk tests; skips unless root (CI is)."""
    from tests.support.volumes import mounted_tmpfs

    with mounted_tmpfs(tmp_path / "vol") as volume:
        yield volume


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free loopback port, stopped after the test."""
    server = Mosquitto(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    """A fresh InfluxDB 1.x on a free loopback port (database ``roadside``), stopped after."""
    server = InfluxDB(tmp_path / "influxdb")
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
