"""Config loading: TOML + environment overrides, strict keys, readable per-field errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "gateway.example.toml"

CAMERA = """
[[cameras]]
id = "c1"
source = { type = "file", path = "x.mp4" }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.cameras and settings.cameras[0].lines
    assert settings.sensors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[gateway]\nbogus = 1\n", "gateway.bogus: unknown key"),
        ("[nonsense]\na = 1\n", "nonsense: unknown key"),
        (
            CAMERA + '[[cameras.lines]]\nid = "a"\npoints = [[0.1, 0.5], [0.9, 0.5]]\n'
            '[[cameras.lines]]\nid = "b"\npoints = [[0.1, 0.5], [0.9, 0.5], [0.2, 0.2]]\n',
            "cameras[0].lines[1].points: expected 2 points, got 3",
        ),
        (
            CAMERA + '[[cameras.lines]]\nid = "a"\npoints = [[0.1, 1.5], [0.9, 0.5]]\n',
            "cameras[0].lines[0].points[0][1]: Input should be less than or equal to 1",
        ),
        (
            CAMERA + '[[cameras.zones]]\nid = "z"\npoints = [[0.1, 0.5], [0.9, 0.5]]\n',
            "cameras[0].zones[0].points: expected at least 3 points, got 2",
        ),
        (
            '[[cameras]]\nid = "c1"\nsource = { type = "url", url = "ftp://x" }\n',
            "cameras[0].source.url:",
        ),
        ('[[cameras]]\nid = "c1"\nsource = { type = "warp" }\n', "cameras[0].source:"),
        ("[mqtt]\nport = 99999\n", "mqtt.port: Input should be less than or equal to 65535"),
        ('[detector]\nconf = "high"\n', "detector.conf: Input should be a valid number"),
        ('[gateway]\nid = "has space"\n', "gateway.id: String should match pattern"),
        ('[[sensors]]\nid = "s"\nprotocol = "nmea"\n', "sensors[0].port: required key is missing"),
        (CAMERA + CAMERA, "cameras: duplicate id c1"),
    ],
)
def test_readable_error_per_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text))
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_every_bad_field_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "[gateway]\nbogus = 1\n[mqtt]\nport = 0\nkeepalive_s = 1\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "3 invalid setting(s)" in err[0]
    assert sorted(line.strip().split(":")[0] for line in err[1:]) == [
        "gateway.bogus",
        "mqtt.keepalive_s",
        "mqtt.port",
    ]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file not found"),
        ("[gateway\nid=1", "not valid TOML"),
        (b"\xff\xfe\x00garbage", "cannot read config file"),
    ],
)
def test_unreadable_files(
    tmp_path: Path, content: str | bytes | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["config", "check", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[mqtt]\nhost = "from-file"\nport = 1884\n[gateway]\nid = "g1"\n')
    monkeypatch.setenv("GATEWAY_MQTT__HOST", "from-env")
    monkeypatch.setenv("GATEWAY_GATEWAY__SITE", "site-env")
    settings = load_settings(path)
    assert settings.mqtt.host == "from-env"
    assert settings.mqtt.port == 1884, "keys not overridden keep the file's value"
    assert settings.gateway.id == "g1"
    assert settings.gateway.site == "site-env"


def test_bad_environment_value_names_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, ""))
    # the variable is where the fix goes, not the file (the field is named too)
    assert any(
        p.startswith("GATEWAY_MQTT__PORT (environment variable, mqtt.port): ")
        for p in info.value.problems
    ), info.value.problems
    assert str(info.value).startswith("the environment: ")


def test_check_prints_effective_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_MQTT__HOST", "broker.test")
    assert main(["config", "check", str(EXAMPLE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mqtt"]["host"] == "broker.test"
    assert data["cameras"][0]["id"] == "cam-north"
    assert main(["config", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out.splitlines()[0] and 'host = "broker.test"' in out


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"gateway", "cameras", "sensors", "mqtt", "detector"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False
