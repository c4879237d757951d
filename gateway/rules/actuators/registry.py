"""The explicit registry of actuators: action ``type`` -> builder.

:class:`ActuatorFactory` builds each configured action's actuator and owns what outputs
share: one Modbus client per serial port or TCP device, one MQTT link per local broker,
and the gateway's firmware-bridge ports (passed in by the gateway).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.rules import (
    Action,
    BridgeAction,
    GpioAction,
    ModbusCoilAction,
    ModbusRegisterAction,
    MqttAction,
    WebhookAction,
)
from gateway.rules.actuators.base import Actuator
from gateway.rules.actuators.bridge import BridgeActuator, ReaderBridgePorts
from gateway.rules.actuators.gpio import GpioActuator
from gateway.rules.actuators.modbus import ModbusActuator, ModbusPool
from gateway.rules.actuators.mqtt import MqttActuator
from gateway.rules.actuators.webhook import WebhookActuator


class ActuatorFactory:
    """Builds actuators; shared connections live here until :meth:`close`."""

    def __init__(
        self, *, gateway_id: str = "gateway", bridge: ReaderBridgePorts | None = None
    ) -> None:
        self.modbus = ModbusPool()
        self.gateway_id = gateway_id
        self.client_id = f"{gateway_id}-rules"
        self.bridge = bridge

    def make(self, action: Action) -> Actuator:
        """The actuator of one configured action."""
        return BUILDERS[action.type](action, self)

    def close(self) -> None:
        """Close every shared connection."""
        self.modbus.close()


def _modbus(action: Action, factory: ActuatorFactory) -> Actuator:
    assert isinstance(action, ModbusCoilAction | ModbusRegisterAction)
    return ModbusActuator(action, factory.modbus.get(action, action.timeout_s))


def _bridge(action: Action, factory: ActuatorFactory) -> Actuator:
    assert isinstance(action, BridgeAction)
    return BridgeActuator(action, factory.bridge)


def _mqtt(action: Action, factory: ActuatorFactory) -> Actuator:
    assert isinstance(action, MqttAction)
    return MqttActuator(action, f"{factory.client_id}-{action.topic.replace('/', '_')}"[:128])


def _webhook(action: Action, factory: ActuatorFactory) -> Actuator:
    assert isinstance(action, WebhookAction)
    return WebhookActuator(action, factory.gateway_id)


def _gpio(action: Action, factory: ActuatorFactory) -> Actuator:
    assert isinstance(action, GpioAction)
    return GpioActuator(action)


BUILDERS: dict[str, Callable[[Action, ActuatorFactory], Actuator]] = {
    "modbus_coil": _modbus,
    "modbus_register": _modbus,
    "bridge": _bridge,
    "mqtt": _mqtt,
    "webhook": _webhook,
    "gpio": _gpio,
}
