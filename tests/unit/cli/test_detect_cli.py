"""``gateway detect`` and ``gateway bench detect`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import click
import numpy as np
import pytest

from gateway.cli import main
from gateway.cli_options import classes_option, conf_option, model_type_option, threads_option
from gateway.config.vision import DetectorConfig, ModelType
from tests.unit.vision.test_detector_synthetic import const_model


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_one_object_per_image(
    capsys: pytest.CaptureFixture[str], yolox_nano: Path, bus_jpg: Path, street_jpg: Path
) -> None:
    code, out, err = run(capsys, "detect", bus_jpg, street_jpg, "--model", yolox_nano, "--json")
    assert code == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["image"] for d in docs] == [str(bus_jpg), str(street_jpg)]
    bus = docs[0]
    assert (bus["width"], bus["height"]) == (640, 640)
    assert bus["inference_ms"] > 0
    labels = [d["label"] for d in bus["detections"]]
    assert labels.count("bus") == 1
    assert labels.count("person") >= 3
    first = bus["detections"][0]
    assert set(first) == {"label", "class_id", "score", "box"}
    assert first["label"] == "bus"
    assert first["class_id"] == 5
    # The bus box is in source pixels (reference [85, 137, 552, 435] read off the photo).
    assert first["box"] == pytest.approx([85, 137, 552, 435], abs=15)
    assert {d["label"] for d in docs[1]["detections"]} >= {"car", "person"}


def test_table_output(capsys: pytest.CaptureFixture[str], yolox_nano: Path, bus_jpg: Path) -> None:
    code, out, _ = run(capsys, "detect", bus_jpg, "--model", yolox_nano)
    assert code == 0
    assert "640x640" in out
    assert "bus" in out
    assert "person" in out


def test_classes_and_conf_options(
    capsys: pytest.CaptureFixture[str], yolox_nano: Path, bus_jpg: Path
) -> None:
    code, out, _ = run(
        capsys, "detect", bus_jpg, "--model", yolox_nano, "--classes", "bus", "--json"
    )
    assert code == 0
    assert [d["label"] for d in json.loads(out)["detections"]] == ["bus"]
    code, out, _ = run(
        capsys, "detect", bus_jpg, "-m", yolox_nano, "--classes", "all", "--conf", "0.99", "--json"
    )
    assert code == 0
    assert json.loads(out)["detections"] == []


def test_ssd_model_type_and_labels(
    capsys: pytest.CaptureFixture[str], ssd_person: Path, bus_jpg: Path
) -> None:
    code, out, _ = run(
        capsys, "detect", bus_jpg, "--model", ssd_person, "--model-type", "ssd", "--json"
    )
    assert code == 0
    labels = [d["label"] for d in json.loads(out)["detections"]]
    assert len(labels) >= 2
    assert set(labels) == {"person"}


def test_missing_image_among_others_still_processes_them(
    capsys: pytest.CaptureFixture[str], yolox_nano: Path, bus_jpg: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.jpg"
    code, out, err = run(capsys, "detect", missing, bus_jpg, "--model", yolox_nano, "--json")
    assert code == 2  # an input error, after the other images were processed
    assert f"error: image not found: {missing}" in err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["image"] for d in docs] == [str(bus_jpg)]
    assert docs[0]["detections"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xd8\xff\xe0 truncated jpeg", b"plain text, not an image\n"],
    ids=["empty", "truncated-jpeg", "text"],
)
def test_corrupt_image(
    capsys: pytest.CaptureFixture[str], yolox_nano: Path, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    code, out, err = run(capsys, "detect", bad, "--model", yolox_nano, "--json")
    assert code == 2
    assert f"error: cannot decode image {bad}" in err
    assert out == ""


def model_errors(tmp_path: Path, yolox_nano: Path) -> dict[str, tuple[list[str], str]]:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 50)
    weird = const_model(tmp_path / "weird.onnx", {"weird": np.zeros((1, 10), np.float32)})
    short_labels = tmp_path / "short.txt"
    short_labels.write_text("person\ncar\n")
    return {
        "missing": (["--model", str(tmp_path / "nope.onnx")], "model file not found"),
        "corrupt": (["--model", str(corrupt)], "not a valid ONNX model"),
        "unsupported": (["--model", str(weird)], "unsupported model signature"),
        "labels": (
            ["--model", str(yolox_nano), "--labels", str(short_labels)],
            "have 2 names but the model has 80 classes",
        ),
        "provider": (["--model", str(yolox_nano), "--provider", "cuda"], "is not available"),
        "override": (["--model", str(yolox_nano), "--model-type", "ssd"], "does not fit"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "corrupt", "unsupported", "labels", "provider", "override"]
)
def test_bad_models_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    yolox_nano: Path,
    bus_jpg: Path,
    tmp_path: Path,
    case: str,
) -> None:
    args, message = model_errors(tmp_path, yolox_nano)[case]
    code, out, err = run(capsys, "detect", bus_jpg, *args, "--json")
    assert code == 2  # a model the user named: input, not a runtime failure
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_model_name_without_store_is_an_error(
    capsys: pytest.CaptureFixture[str], bus_jpg: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "detect", bus_jpg, "--model", "nosuch", "--model-dir", tmp_path)
    assert code == 2
    assert "nosuch" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing argument"),
        (["--conf", "1.5"], "--conf"),
        (["--model-type", "detr"], "--model-type"),
        (["--classes", "persn"], "unknown class persn"),
        (["--classes", ","], "--classes needs at least one class name"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
    yolox_nano: Path,
    bus_jpg: Path,
    args: list[str],
    message: str,
) -> None:
    images = [str(bus_jpg)] if args else []
    code, _, err = run(capsys, "detect", *images, "--model", yolox_nano, *args)
    assert code == 2
    assert message in err


def test_bench_detect_json(
    capsys: pytest.CaptureFixture[str], yolox_nano: Path, bus_jpg: Path
) -> None:
    code, out, err = run(
        capsys, "bench", "detect", "--model", yolox_nano, "--image", bus_jpg, "-n", "3",
        "--warmup", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["model_type"] == "yolox"
    assert result["iterations"] == 3
    assert result["detections"] == 4
    for key in ("model_only_ms", "detect_ms"):
        fig = result[key]
        assert 0 < fig["p50"] <= fig["p90"]
        assert fig["mean"] > 0
    assert result["ratio_mean"] == pytest.approx(
        result["detect_ms"]["mean"] / result["model_only_ms"]["mean"], rel=1e-2
    )


def test_bench_detect_text_and_missing_image(
    capsys: pytest.CaptureFixture[str], ssd_person: Path, bus_jpg: Path, tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "bench", "detect", "-m", ssd_person, "--image", bus_jpg, "-n", "2", "--warmup", "0"
    )
    assert code == 0
    assert "model only (session.run)" in out
    assert "full / model-only" in out
    code, _, err = run(
        capsys, "bench", "detect", "-m", ssd_person, "--image", tmp_path / "x.jpg", "-n", "2"
    )
    assert code == 2
    assert "image not found" in err


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (threads_option, "threads"),
        (conf_option, "conf"),
        (model_type_option, "model_type"),
        (classes_option("keep"), "classes"),
    ],
    ids=["threads", "conf", "model_type", "classes"],
)
def test_detector_options_take_what_the_config_takes(option: Any, field: str) -> None:
    """The shared CLI options have DetectorConfig's default and bounds (or choices)."""

    @click.command()
    @option
    def probe(**kwargs: Any) -> None: ...

    param = probe.params[0]
    spec = DetectorConfig.model_fields[field]
    if field == "classes":
        assert param.default == ",".join(DetectorConfig().classes)
        return
    assert param.default == spec.default
    if field == "model_type":
        assert isinstance(param.type, click.Choice)
        assert tuple(param.type.choices) == get_args(ModelType)
        return
    assert isinstance(param.type, click.IntRange | click.FloatRange)
    ge = next(m.ge for m in spec.metadata if hasattr(m, "ge"))
    le = next(m.le for m in spec.metadata if hasattr(m, "le"))
    assert (param.type.min, param.type.max) == (ge, le)
