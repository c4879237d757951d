"""Publish an output's state to a topic on a local MQTT broker (a sign controller, a PLC).

Each output has its own connection (the project's :class:`~gateway.transport.mqtt.MqttLink`,
built on the one client factory ``transport/paho_client.py``) whose retained last will is
the output's fail-safe payload: if the gateway dies without a clean stop, the broker
publishes the fail-safe state itself. A QoS 1 write counts as done at the broker's
PUBACK, within ``timeout_s``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from gateway.actuation import OutputValue
from gateway.config.rules import MqttAction
from gateway.errors import TransportError
from gateway.rules.actuators.base import ActuatorError, WriteContext
from gateway.transport.mqtt import Message, MqttLink
from gateway.transport.reasons import NO_MATCHING_SUBSCRIBERS

MAX_ACKS = 256  # acknowledged ids kept for a write that has not started waiting yet


class _Acks:
    """PUBACKs seen by the link's network thread, waited for by the output's thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._acked: OrderedDict[tuple[int, int], int] = OrderedDict()

    def on_published(self, generation: int, mid: int, reason_code: int = 0) -> None:
        with self._cond:
            self._acked[(generation, mid)] = reason_code
            while len(self._acked) > MAX_ACKS:
                self._acked.popitem(last=False)
            self._cond.notify_all()

    def wait(self, key: tuple[int, int], timeout_s: float) -> int | None:
        """The PUBACK reason code of ``key``, or None when none came in ``timeout_s``."""
        with self._cond:
            ok = self._cond.wait_for(lambda: key in self._acked, timeout_s)
            code = self._acked.pop(key, None)
            return code if ok else None


class MqttActuator:
    """Publishes ``active`` / ``idle`` / ``fail_safe`` payloads to one topic."""

    def __init__(self, cfg: MqttAction, client_id: str) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self._acks = _Acks()
        self.link: MqttLink | None = None

    def open(self) -> None:
        """Start a link (it reconnects on its own) and wait for it up to ``timeout_s``."""
        cfg = self.cfg
        if self.link is None:
            will = Message(cfg.topic, cfg.fail_safe.encode(), retain=cfg.retain)
            self.link = MqttLink(
                cfg.broker, self.client_id, will=lambda: will, on_published=self._acks.on_published
            )
            self.link.start()
        try:
            self.link.wait_connected(cfg.timeout_s)
        except TransportError as exc:
            raise ActuatorError(f"mqtt {cfg.target()}: {exc}") from exc

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Publish and, with QoS 1, wait for the PUBACK."""
        cfg = self.cfg
        link = self.link
        sent = (
            None
            if link is None
            else link.publish(cfg.topic, str(value).encode(), qos=cfg.qos, retain=cfg.retain)
        )
        if sent is None:
            raise ActuatorError(f"mqtt {cfg.target()}: not connected")
        if cfg.qos != 1:
            return
        code = self._acks.wait(sent, context.timeout_s)
        if code is None:
            raise ActuatorError(f"mqtt {cfg.target()}: no PUBACK in {context.timeout_s} s")
        if code >= 128 or (code == NO_MATCHING_SUBSCRIBERS and not cfg.retain):
            # A retained state waits at the broker for the controller; anything else
            # that reached no subscriber, or was refused, did not actuate anything.
            raise ActuatorError(f"mqtt {cfg.target()}: broker answered PUBACK {code}")

    def close(self) -> None:
        """Disconnect cleanly (after a clean disconnect the broker drops the will)."""
        link, self.link = self.link, None
        if link is not None:
            link.stop(timeout=self.cfg.timeout_s)
