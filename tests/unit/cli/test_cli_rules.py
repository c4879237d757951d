"""One set of CLI rules for every command, each tried as a crew member types it.

Exit 2 for usage and input errors (what was typed is wrong), 1 when the world fails;
junk input is not success; a config error from an environment variable names the
variable; --config and --model-dir after the subcommand everywhere; pixel coordinates
get one error with the converted values; snapshots are JPEG or PNG by name, and their
lines carry an arrow and L/R sides.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.cli import main
from gateway.config.patch import to_toml

ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = ROOT / "modelzoo" / "demo" / "roadsim.onnx"
SIM_LINE = [[0.5, 0.9], [0.5, 0.4]]  # bottom to top: its left-hand side is the image's left


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


M = str(DEMO_MODEL)
LINE = ["--line", "0,0.5,1,0.5"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["models", "import", "{tmp}", "--name", "../evil", "--model-dir", "{tmp}/s"],
            "invalid model",
        ),
        (["sensors", "decode", "-p", "pms5003", "{tmp}/nofile.bin"], "cannot read capture"),
        (
            ["sensors", "decode", "-p", "pms5003", "{tmp}/random.bin"],
            "no valid pms5003 frame in 4096",
        ),
        (["count", "{tmp}/still.jpg", "--model", M, *LINE], "is a still image, not a video"),
        (["count", "{tmp}/random.bin", "--model", "{tmp}/none.onnx", *LINE], "not a video"),
        (["detect", "{tmp}/nofile.jpg", "--model", M, "--classes", "all"], "image not found"),
        (
            ["camera", "snapshot", "simulator", "{tmp}/out.bmp"],
            "written as JPEG (.jpg, .jpeg) or PNG",
        ),
        (["config", "check"], "give FILE or -c FILE"),
    ],
)
def test_usage_and_input_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "random.bin").write_bytes(random.Random(4).randbytes(4096))
    cv2.imwrite(str(tmp_path / "still.jpg"), np.full((360, 640, 3), 90, np.uint8))
    code, _out, err = run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.bmp").exists()


@pytest.mark.parametrize(
    ("args", "code", "message", "fix"),
    [
        (["camera", "check", "{tmp}/none.mp4"], 2, "no such file", "check the path"),
        (
            ["sensors", "read", "--port", "/dev/null", "-p", "pms5003"],
            2,
            "not a serial port",
            "/dev/ttyUSB*",
        ),
        (
            ["sensors", "read", "--port", "/dev/ttyUSB97", "-p", "pms5003"],
            1,
            "no such device",
            "/dev/serial/by-id",
        ),
        (
            ["detect", "{tmp}/x.jpg", "-m", "yolox_s", "--model-dir", "{tmp}/s"],
            2,
            "model not found in store",
            "gateway models pull yolox_s --model-dir {tmp}/s",
        ),
        (
            ["detect", "{tmp}/x.jpg", "-m", "my_net", "--model-dir", "{tmp}/s"],
            2,
            "model not found in store",
            "gateway models import /path/to/model.onnx --name my_net --model-dir {tmp}/s",
        ),
    ],
)
def test_errors_name_the_cause_and_the_fix(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
    fix: str,
) -> None:
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((32, 32, 3), np.uint8))
    got, _out, err = run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    lines = err.strip().splitlines()
    assert got == code, err
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[1].startswith("  fix: ") and fix.replace("{tmp}", str(tmp_path)) in lines[1]


@pytest.mark.parametrize(
    "command",
    [
        ["config", "check"],
        ["doctor"],
        ["run"],
        ["ingest"],
        ["sensors", "read", "--port", "/dev/null", "-p", "nmea"],
        ["models", "list"],
        ["models", "verify"],
        ["count", "{video}", "--model", "name_in_store", "--line", "0,0.5,1,0.5"],
        ["detect", "{image}", "--model", "name_in_store"],
    ],
)
def test_config_is_accepted_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    """Every command that reads a config takes -c FILE in the same place: after its name."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10, (64, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    args = [a.replace("{video}", str(video)).replace("{image}", str(image)) for a in command]
    code, out, err = run(capsys, *args, "-c", tmp_path / "missing.toml")
    assert code == 2, err
    # (doctor reports it as its config check, on stdout)
    assert f"config file not found: {tmp_path / 'missing.toml'}" in err + out


def test_model_dir_is_accepted_after_the_models_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    after, before = tmp_path / "after", tmp_path / "before"
    code, _, err = run(
        capsys, "models", "import", DEMO_MODEL, "--name", "road", "--model-dir", after
    )
    assert code == 0, err
    code, _, err = run(
        capsys, "models", "--model-dir", before, "import", DEMO_MODEL, "--name", "road"
    )
    assert code == 0, err
    assert (after / "road" / "model.onnx").is_file() and (before / "road" / "model.onnx").is_file()
    code, out, _ = run(capsys, "models", "verify", "--model-dir", after)
    assert code == 0 and "ok   road" in out
    code, out, _ = run(capsys, "models", "remove", "road", "--model-dir", after)
    assert code == 0 and not (after / "road").exists() and (before / "road").exists()


@pytest.mark.parametrize(
    ("variable", "value", "where"),
    [
        ("GATEWAY_MQTT__PORT", "not-a-port", "mqtt.port"),
        ("GATEWAY_OUTBOX__MAX_BYTES", "12", "outbox.max_bytes"),
        ("GATEWAY_MQTT", '{"port": 99999}', "mqtt.port"),
    ],
)
def test_a_bad_environment_variable_is_named(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    where: str,
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        to_toml({"gateway": {"data_dir": str(tmp_path / "data")}, "mqtt": {"port": 1883}})
    )
    monkeypatch.setenv(variable, value)
    for command in (["config", "check", config], ["run", "-c", config]):
        code, _out, err = run(capsys, *command)
        assert code == 2
        assert err.startswith("error: the environment: 1 invalid setting(s)"), err
        assert f"  {variable} (environment variable, {where}): " in err
        assert str(config) not in err  # the file is not where the fix goes


def test_pixel_coordinates_get_one_error_with_the_fractions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    camera = {
        "id": "north",
        "source": {"type": "url", "url": "rtsp://127.0.0.1:1/x"},
        "lines": [{"id": "stop", "points": [[320, 540], [1600, 540]]}],
        "zones": [{"id": "ok", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}],
    }
    config.write_text(to_toml({"cameras": [camera]}))
    code, _out, err = run(capsys, "config", "check", config)
    lines = err.strip().splitlines()
    assert code == 2
    assert len(lines) == 2, err  # the summary and ONE problem for the line (not one per value)
    assert lines[1].startswith("  cameras[0].lines[0].points: coordinates are fractions")
    assert (
        "not pixels: (320, 540), (1600, 540) on a 1920x1080 frame are (0.167, 0.5), (0.833, 0.5)"
        in lines[1]
    )
    code, _out, err = run(
        capsys, "count", tmp_path / "x.mp4", "--model", "m", "--line", "320,540,1600,540"
    )
    assert code == 2
    assert "on a 1920x1080 frame are (0.167, 0.5), (0.833, 0.5)" in err


def _snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, *extra: object
) -> Path:
    config = tmp_path / "gateway.toml"
    camera = {
        "id": "sim",
        "source": {"type": "simulator", "seed": 3},
        "lines": [{"id": "mid", "points": SIM_LINE}],
    }
    config.write_text(to_toml({"gateway": {"data_dir": str(tmp_path / "d")}, "cameras": [camera]}))
    out = tmp_path / name
    code, _, err = run(
        capsys, "camera", "snapshot", "simulator", out, *extra, "-c", config, "--camera", "sim"
    )
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    ("name", "magic"),
    [("s.png", b"\x89PNG\r\n\x1a\n"), ("s.jpg", b"\xff\xd8\xff"), ("s.JPEG", b"\xff\xd8\xff")],
)
def test_snapshot_format_follows_the_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, magic: bytes
) -> None:
    assert _snapshot(capsys, tmp_path, name).read_bytes().startswith(magic)


def test_snapshot_lines_show_their_direction_and_sides(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The drawn line has an arrowhead at point 2 and an L mark on its left-hand side."""
    plain = cv2.imread(str(_snapshot(capsys, tmp_path, "plain.png")))
    drawn = cv2.imread(str(_snapshot(capsys, tmp_path, "drawn.png", "--draw")))
    changed = np.abs(drawn.astype(int) - plain.astype(int)).sum(axis=2) > 60
    h, w = changed.shape
    (x1, y1), (x2, y2) = ((round(x * (w - 1)), round(y * (h - 1))) for x, y in SIM_LINE)

    def drawn_near(x: int, y: int, r: int = 8) -> int:
        return int(changed[max(0, y - r) : y + r, max(0, x - r) : x + r].sum())

    # arrowhead: marks beside the line close to point 2 (the top), none beside point 1
    assert drawn_near(x2 - 10, y2 + 12, 5) > 0 and drawn_near(x2 + 10, y2 + 12, 5) > 0
    assert drawn_near(x1 - 10, y1 - 12, 5) == 0 and drawn_near(x1 + 10, y1 - 12, 5) == 0
    # L and R marks 18 px either side, 30 % of the way from point 1
    ym = round(y1 + 0.3 * (y2 - y1))
    assert drawn_near(x1 - 18, ym) > 0 and drawn_near(x1 + 18, ym) > 0
    left = drawn[ym - 8 : ym + 8, x1 - 26 : x1 - 10]
    right = drawn[ym - 8 : ym + 8, x1 + 10 : x1 + 26]
    assert not np.array_equal(left, right)  # different letters: L is on the left here
