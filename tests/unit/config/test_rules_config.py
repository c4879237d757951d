"""``[[rules]]`` config: good rules load, bad ones are refused with their field paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import load_settings, validate_settings
from gateway.errors import ConfigError

CAMERA = {
    "id": "cam",
    "source": {"type": "simulator"},
    "zones": [{"id": "road", "points": [[0, 0], [1, 0], [1, 1]], "roadway": True}],
    "lines": [{"id": "l1", "points": [[0, 0.5], [1, 0.5]]}],
}
SENSORS = [
    {"id": "pm", "protocol": "pms5003", "port": "/dev/ttyPM"},
    {"id": "board", "protocol": "rsb", "port": "/dev/ttyRSB"},
]
COIL = {"type": "modbus_coil", "port": "/dev/ttyRELAY", "address": 0, "fail_safe": False}


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "beacon",
        "trigger": {"type": "alert", "kind": "pedestrian_in_roadway", "camera": "cam"},
        "actions": [dict(COIL)],
    }
    base.update(overrides)
    return base


def settings(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"cameras": [copy.deepcopy(CAMERA)], "sensors": SENSORS, "rules": list(rules)}


GOOD = [
    rule(),
    rule(trigger={"type": "zone_occupancy", "camera": "cam", "zone": "road", "min_count": 2,
                  "labels": ["person"]}),
    rule(trigger={"type": "zone_dwell", "camera": "cam", "zone": "road", "dwell_s": 3}),
    rule(trigger={"type": "line_rate", "camera": "cam", "line": "l1", "min_count": 10,
                  "window_s": 60, "direction": "left_to_right"}),
    rule(trigger={"type": "sensor", "sensor": "pm", "value": "pm2_5", "above": 35,
                  "clear_margin": 5}),
    rule(trigger={"type": "sensor", "sensor": "pm", "value": "visibility_m", "below": 200}),
    rule(conditions={"time_of_day": {"start": "22:00", "end": "06:00", "days": ["sat", "sun"]},
                     "camera_ok": False},
         trigger={"type": "zone_occupancy", "camera": "cam", "zone": "road"}),
    rule(actions=[{"type": "modbus_register", "transport": "tcp", "host": "127.0.0.1",
                   "address": 4, "active": 1, "idle": 0, "fail_safe": 2}]),
    rule(actions=[{"type": "bridge", "sensor": "board", "output": 1, "fail_safe": 0}]),
    rule(actions=[{"type": "mqtt", "topic": "sign/1/set", "fail_safe": "blank"}]),
    rule(actions=[{"type": "webhook", "url": "http://127.0.0.1:9/hook", "fail_safe": "off"}]),
    rule(actions=[{"type": "gpio", "chip": "/dev/gpiochip1", "line": 17, "fail_safe": 0}]),
]  # fmt: skip


def _name(r: dict[str, Any]) -> str:
    return f"{r['trigger']['type']}-{r['actions'][0]['type']}"


@pytest.mark.parametrize("good", GOOD, ids=_name)
def test_good_rules_load(good: dict[str, Any]) -> None:
    loaded = validate_settings(settings(good))
    assert loaded.rules[0].id == "beacon"


BAD = [
    # (rule, expected problem lines (substrings))
    (rule(trigger={"type": "alert", "kind": "on_fire", "camera": "cam"}),
     ["rules[0].trigger.kind: Input should be"]),
    (rule(trigger={"type": "teleport", "camera": "cam"}),
     ["rules[0].trigger: Input tag 'teleport' found using 'type' does not match"]),
    (rule(trigger={"type": "zone_dwell", "camera": "cam", "zone": "road"}),
     ["rules[0].trigger.dwell_s: required key is missing"]),
    (rule(trigger={"type": "sensor", "sensor": "pm", "value": "pm2_5"}),
     ["rules[0].trigger: give exactly one of above or below"]),
    (rule(trigger={"type": "zone_occupancy", "camera": "cam", "zone": "road", "min_count": 0}),
     ["rules[0].trigger.min_count: Input should be greater than or equal to 1"]),
    (rule(actions=[{"type": "modbus_coil", "port": "/dev/x", "address": 0}]),
     ["rules[0].actions[0].fail_safe: required key is missing"]),
    (rule(actions=[{**COIL, "hold_s": -1, "speed": 3}]),
     ["rules[0].actions[0].hold_s: Input should be greater than or equal to 0",
      "rules[0].actions[0].speed: unknown key"]),
    (rule(actions=[{"type": "modbus_coil", "transport": "tcp", "address": 1, "fail_safe": False}]),
     ["rules[0].actions[0]: transport 'tcp' needs a host"]),
    (rule(actions=[{"type": "modbus_register", "port": "/dev/x", "address": 1, "active": 70000,
                    "idle": 0, "fail_safe": 0}]),
     ["rules[0].actions[0].active: Input should be less than or equal to 65535"]),
    (rule(actions=[{"type": "gpio", "line": 3, "fail_safe": 2}]),
     ["rules[0].actions[0].fail_safe: Input should be 0 or 1"]),
    (rule(actions=[{"type": "webhook", "url": "ftp://x", "fail_safe": "off"}]),
     ["rules[0].actions[0].url: URL scheme should be 'http' or 'https'"]),
    (rule(actions=[]), ["rules[0].actions: List should have at least 1 item"]),
    (rule(actions=[dict(COIL), dict(COIL)]),
     ["rules[0]: actions: the same output twice: rtu:///dev/ttyRELAY/unit1/coil0"]),
    (rule(conditions={"time_of_day": {"start": "25:00", "end": "06:00"}}),
     ["rules[0].conditions.time_of_day.start: expected HH:MM"]),
    (rule(conditions={"min_duration_s": 2}),
     ["rules[0]: conditions.min_duration_s: an alert is an instant"]),
    (rule(trigger={"type": "sensor", "sensor": "pm", "value": "pm2_5", "above": 1},
          conditions={"camera_ok": True}),
     ["rules[0]: conditions.camera_ok: needs a camera trigger"]),
    (rule(actions=[{**COIL, "hold_s": 0}]),
     ["rules[0]: actions[0].hold_s: an alert is an instant"]),
    # references
    (rule(trigger={"type": "alert", "kind": "wrong_way", "camera": "nocam"}),
     ["rules[0].trigger.camera: no camera 'nocam'"]),
    (rule(trigger={"type": "zone_dwell", "camera": "cam", "zone": "park", "dwell_s": 1}),
     ["rules[0].trigger.zone: camera 'cam' has no zone 'park'"]),
    (rule(trigger={"type": "line_rate", "camera": "cam", "line": "l9", "min_count": 1,
                   "window_s": 1}),
     ["rules[0].trigger.line: camera 'cam' has no line 'l9'"]),
    (rule(trigger={"type": "sensor", "sensor": "radar", "value": "speed_kmh", "above": 80}),
     ["rules[0].trigger.sensor: no sensor 'radar'"]),
    (rule(actions=[{"type": "bridge", "sensor": "pm", "output": 1, "fail_safe": 0}]),
     ["rules[0].actions[0].sensor: sensor 'pm' speaks 'pms5003', not rsb"]),
    (rule(actions=[{**COIL, "port": "/dev/ttyPM"}]),
     ["rules[0].actions[0].port: /dev/ttyPM is the port of sensor 'pm'"]),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "expected"), BAD)
def test_bad_rules_are_refused_with_field_paths(bad: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings(settings(bad))
    problems = info.value.problems
    for text in expected:
        assert any(text in p for p in problems), (text, problems)


def test_two_rules_on_one_output_and_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings(settings(rule(), rule()))
    problems = info.value.problems
    assert "rules: duplicate id beacon" in problems
    assert any("rules[1].actions[0]: rtu:///dev/ttyRELAY/unit1/coil0 is already driven" in p
               for p in problems)  # fmt: skip


def test_toml_example_in_deploy_loads() -> None:
    """The documented example config (with its [[rules]]) is valid as shipped."""
    example = Path(__file__).resolve().parents[3] / "deploy" / "gateway.example.toml"
    loaded = load_settings(example)
    assert loaded.rules, "deploy/gateway.example.toml documents [[rules]]"


def test_webhook_headers_and_local_broker_password_stay_secret() -> None:
    loaded = validate_settings(
        settings(
            rule(
                actions=[
                    {
                        "type": "webhook",
                        "url": "http://127.0.0.1:9/hook",
                        "fail_safe": "off",
                        "headers": {"Authorization": "Bearer s3cret"},
                    },
                    {
                        "type": "mqtt",
                        "topic": "sign/1",
                        "fail_safe": "",
                        "broker": {"username": "pole", "password": "hunter2"},
                    },
                ]
            )
        )
    )
    dumped = str(loaded.model_dump(mode="json"))
    assert "s3cret" not in dumped and "hunter2" not in dumped
    action = loaded.rules[0].actions[0]
    assert action.headers["Authorization"].get_secret_value() == "Bearer s3cret"  # type: ignore[union-attr]
