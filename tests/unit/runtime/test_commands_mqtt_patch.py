"""The pieces behind ``set_config``: merge patches, TOML output, atomic writes, classification."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.atomicfile import write_atomically
from gateway.config.patch import (
    classify,
    merge_patch,
    patched_settings,
    to_toml,
)
from gateway.config.settings import load_settings, read_toml, validate_settings
from gateway.errors import ConfigError
from gateway.runtime.live_settings import LiveSettings, MergePatch, Replacement

ROOT = Path(__file__).resolve().parents[3]

# RFC 7386, appendix A.
RFC_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_CASES)
def test_merge_patch_rfc7386(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not modified


def test_example_config_round_trips_through_toml() -> None:
    data = read_toml(ROOT / "deploy" / "gateway.example.toml")
    again = tomllib.loads(to_toml(data))
    assert again == data
    validate_settings(again)


def test_toml_quotes_keys_that_are_not_bare() -> None:
    data = {"a b": {"x.y": 1, "ok": [1, 2]}, "s": 'quote " and \\ backslash'}
    assert tomllib.loads(to_toml(data)) == data


def test_toml_floats_round_trip() -> None:
    data = {"a": 0.1, "b": float("inf"), "c": float("-inf"), "d": 1e300, "e": [1.5, -2.0]}
    assert tomllib.loads(to_toml(data)) == data
    assert math.isnan(tomllib.loads(to_toml({"n": float("nan")}))["n"])


def test_write_atomically_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.toml"]


def test_patched_settings_rejects_without_touching_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[mqtt]\nport = 1883\n")
    with pytest.raises(ConfigError) as info:
        patched_settings(path, {"mqtt": {"port": 70000}})
    assert any(p.startswith("mqtt.port:") for p in info.value.problems)
    assert path.read_text() == "[mqtt]\nport = 1883\n"
    with pytest.raises(ConfigError, match="JSON object"):
        patched_settings(path, [1])  # type: ignore[arg-type]


CAMERA = {
    "id": "cam-a",
    "source": {"type": "file", "path": "/x.mp4"},
    "lines": [{"id": "l1", "points": [[0, 0.5], [1, 0.5]]}],
}


@pytest.mark.parametrize(
    ("patch", "live", "restart"),
    [
        ({"cameras": [CAMERA | {"lines": []}]}, ["cam-a"], []),
        ({"cameras": [CAMERA | {"motion": {"enabled": True}}]}, ["cam-a"], []),
        (
            {"cameras": [CAMERA | {"source": {"type": "file", "path": "/y.mp4"}}]},
            [],
            ["cameras.cam-a"],
        ),
        ({"cameras": []}, [], ["cameras"]),
        ({"mqtt": {"host": "broker"}}, [], ["mqtt"]),
        ({"events": {"snapshots": True}}, [], ["events"]),
        ({"mqtt": {"port": 1883}}, [], []),  # no change at all
    ],
)
def test_classify(patch: dict[str, Any], live: list[str], restart: list[str]) -> None:
    base = {"cameras": [CAMERA]}
    old = validate_settings(base)
    new = validate_settings(merge_patch(base, patch))
    assert classify(old, new) == (live, restart)


def test_loaded_settings_keep_secrets(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(to_toml({"mqtt": {"username": "u", "password": "p"}}))
    settings = load_settings(path)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "p"


def _live(tmp_path: Path, data: dict[str, Any]) -> tuple[Path, LiveSettings, list[str]]:
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    restarted: list[str] = []
    live = LiveSettings(load_settings(path), path, lambda cam: restarted.append(cam.id))
    return path, live, restarted


@pytest.mark.parametrize(
    ("change", "status", "applied", "restart"),
    [
        (MergePatch({"cameras": [CAMERA | {"lines": []}]}), "applied", ("cam-a",), ()),
        (MergePatch({"mqtt": {"host": "broker"}}), "restart_required", (), ("mqtt",)),
        (MergePatch({"mqtt": {"port": 1883}}), "unchanged", (), ()),
        (Replacement({"cameras": [CAMERA | {"lines": []}]}), "applied", ("cam-a",), ()),
        (Replacement({}), "restart_required", (), ("cameras",)),
    ],
)
def test_apply_settings_saves_restarts_and_reports(
    tmp_path: Path,
    change: MergePatch | Replacement,
    status: str,
    applied: tuple[str, ...],
    restart: tuple[str, ...],
) -> None:
    path, live, restarted = _live(tmp_path, {"cameras": [CAMERA]})
    result = live.apply_settings(change)
    assert (result.status, result.applied, result.restart_required) == (status, applied, restart)
    assert restarted == list(applied)
    saved = load_settings(path)
    expected = (
        merge_patch({"cameras": [CAMERA]}, change.patch)
        if isinstance(change, MergePatch)
        else change.document
    )
    assert saved.model_dump() == validate_settings(dict(expected)).model_dump()
    # What applied live runs now; everything else keeps its running value until a restart.
    old = validate_settings({"cameras": [CAMERA]})
    saved_cams = {c.id: c for c in saved.cameras}
    assert live.current.cameras == [saved_cams[c.id] if c.id in applied else c for c in old.cameras]
    assert live.current.mqtt == old.mqtt
    assert result.to_json()["applied"] == list(applied)
    assert ("message" in result.to_json()) == bool(restart)


@pytest.mark.parametrize(
    "change",
    [
        MergePatch({"cameras": [CAMERA | {"lines": [{"id": "l1", "points": [[0, 0]]}]}]}),
        Replacement({"mqtt": {"port": 0}}),
        Replacement({"no_such_section": {}}),
    ],
)
def test_apply_settings_refuses_invalid_and_changes_nothing(
    tmp_path: Path, change: MergePatch | Replacement
) -> None:
    path, live, restarted = _live(tmp_path, {"cameras": [CAMERA]})
    before, running = path.read_bytes(), live.current
    with pytest.raises(ConfigError) as info:
        live.apply_settings(change)
    assert info.value.problems and all(":" in p for p in info.value.problems)
    assert path.read_bytes() == before and live.current is running and restarted == []


def test_apply_settings_never_saves_what_does_not_read_back(tmp_path: Path) -> None:
    path, live, restarted = _live(tmp_path, {"cameras": [CAMERA]})
    before, running = path.read_bytes(), live.current
    register = {"name": "t", "address": 1, "scale": float("nan")}  # valid, but nan != nan
    sensor = {"id": "s1", "protocol": "modbus", "port": "/dev/null"}
    with pytest.raises(ConfigError, match="cannot be written as TOML"):
        live.apply_settings(
            Replacement({"sensors": [sensor | {"modbus": {"registers": [register]}}]})
        )
    assert path.read_bytes() == before and live.current is running and restarted == []


def test_apply_settings_without_a_config_file() -> None:
    live = LiveSettings(validate_settings({}), None, lambda cam: None)
    with pytest.raises(ConfigError, match="without a config file"):
        live.apply_settings(MergePatch({"mqtt": {"port": 1884}}))
