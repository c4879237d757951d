"""``gateway rules list|test``: see the local rules and try their outputs on site.

``test`` drives one rule's outputs through the same actuators ``gateway run`` uses (one
bounded attempt per output), so a crew can see the beacon flash or the sign change while
provisioning, offline; afterwards every output is put back into its fail-safe state.
It needs the devices to itself: stop ``gateway run`` first (a serial port is exclusive).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from gateway.commands.common import config_option, json_option, print_json
from gateway.errors import GatewayError, UsageError


@click.group("rules")
def rules_group() -> None:
    """List the local rules of a config, or try one rule's outputs."""


def register(app: click.Group) -> None:
    """Add the ``rules`` group to the root app."""
    app.add_command(rules_group)


def _trigger(trigger: Any) -> str:
    fields = trigger.model_dump(exclude={"type"}, exclude_defaults=True)
    return f"{trigger.type}(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"


@rules_group.command("list")
@config_option(required=True)
@json_option
def list_rules(config_path: Path, as_json: bool) -> None:
    """Each rule: its trigger, conditions and outputs with their three states."""
    from gateway.config.settings import load_settings

    settings = load_settings(config_path)
    for rule in settings.rules:
        outputs = [
            {
                "action": i,
                "type": a.type,
                "target": a.target(),
                "active": a.active,
                "idle": a.idle,
                "fail_safe": a.fail_safe,
                "hold_s": a.hold_s,
            }
            for i, a in enumerate(rule.actions)
        ]
        if as_json:
            print_json(
                {
                    "rule": rule.id,
                    "enabled": rule.enabled,
                    "trigger": rule.trigger.model_dump(),
                    "conditions": rule.conditions.model_dump(exclude_defaults=True),
                    "outputs": outputs,
                }
            )
            continue
        state = "" if rule.enabled else " (disabled)"
        click.echo(f"{rule.id}{state}: {_trigger(rule.trigger)}")
        for out in outputs:
            click.echo(
                f"  [{out['action']}] {out['target']}: active={out['active']!r} "
                f"idle={out['idle']!r} fail_safe={out['fail_safe']!r} hold {out['hold_s']} s"
            )
    if not settings.rules and not as_json:
        click.echo("no [[rules]] in this config")


@rules_group.command("test")
@config_option(required=True)
@click.argument("rule_id")
@click.option(
    "--state",
    type=click.Choice(["active", "idle", "fail_safe"]),
    default="active",
    show_default=True,
    help="The state to write to every output of the rule.",
)
@click.option(
    "--hold",
    "hold_s",
    type=click.FloatRange(0, 600),
    default=3.0,
    show_default=True,
    help="Seconds to keep it before the fail-safe state is written back.",
)
@json_option
def test_rule(config_path: Path, rule_id: str, state: str, hold_s: float, as_json: bool) -> None:
    """Write STATE to RULE_ID's outputs, wait HOLD seconds, then write the fail-safe state.

    Exit code 1 when a write failed (each output is reported on its own line).
    """
    from gateway.config.settings import load_settings

    settings = load_settings(config_path)
    rule = next((r for r in settings.rules if r.id == rule_id), None)
    if rule is None:
        known = ", ".join(r.id for r in settings.rules) or "none"
        raise UsageError(f"no rule {rule_id!r} in {config_path} (rules: {known})")
    failures = _drive(settings, rule, [state] if state == "fail_safe" else [state, "fail_safe"],
                      hold_s, as_json)  # fmt: skip
    if failures:
        raise GatewayError(f"{failures} write(s) failed")


def _drive(settings: Any, rule: Any, states: list[str], hold_s: float, as_json: bool) -> int:
    """Write each state in turn to every output; the number of failed writes."""
    from gateway.actuation import Cause
    from gateway.rules.actuators.base import ActuatorError, WriteContext
    from gateway.rules.actuators.bridge import ReaderBridgePorts
    from gateway.rules.actuators.registry import ActuatorFactory

    readers = _bridge_readers(settings, rule)
    factory = ActuatorFactory(gateway_id=settings.gateway.id, bridge=ReaderBridgePorts(readers.get))
    actuators = [factory.make(action) for action in rule.actions]
    failures = 0
    try:
        for n, state in enumerate(states):
            if n:
                time.sleep(hold_s)
            for i, (action, actuator) in enumerate(zip(rule.actions, actuators, strict=True)):
                value = getattr(action, state)
                cause = Cause("manual_test", time.time(), "manual", "gateway")
                context = WriteContext(rule.id, state, cause, action.timeout_s,  # type: ignore[arg-type]
                                       getattr(action, "lease_s", 0.0))  # fmt: skip
                started = time.monotonic()
                error = None
                try:
                    actuator.open()
                    actuator.write(value, context)
                except ActuatorError as exc:
                    error = str(exc)
                    failures += 1
                ms = round((time.monotonic() - started) * 1000, 1)
                row = {"rule": rule.id, "action": i, "target": action.target(), "state": state,
                       "value": value, "ok": error is None, "ms": ms, "error": error}  # fmt: skip
                if as_json:
                    print_json(row)
                else:
                    outcome = "ok" if error is None else f"FAILED: {error}"
                    click.echo(f"[{i}] {row['target']} <- {state} {value!r}: {outcome} ({ms} ms)")
    finally:
        for actuator in actuators:
            actuator.close()
        factory.close()
        for reader in readers.values():
            reader.stop()
    return failures


def _bridge_readers(settings: Any, rule: Any) -> dict[str, Any]:
    """Start the rsb sensor readers the rule's bridge outputs need."""
    from gateway.config.rules import BridgeAction
    from gateway.serialports.reader import SensorReader

    wanted = {a.sensor for a in rule.actions if isinstance(a, BridgeAction)}
    readers = {}
    for sensor in settings.sensors:
        if sensor.id in wanted:
            reader = SensorReader(sensor, lambda _reading: None)
            reader.start()
            readers[sensor.id] = reader
    return readers
