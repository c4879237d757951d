"""The operator's side of a command: sign it, send it, wait for the correlated reply.

The reply is asked for in the operator's own reply space
``{prefix}/{site}/{unit}/reply/operator:<name>/<nonce>`` (MQTT v5 response topic and
the signed ``reply_to``), which the broker's ACL lets only that operator read.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config.transport import MqttConfig
from gateway.errors import SecurityError, TransportError
from gateway.events.topics import Topics
from gateway.security.identity import check_name
from gateway.security.pki import identity_of, load_certificate
from gateway.security.signing import sign_command
from gateway.transport.paho_client import make_client


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """An operator's certificate and private key (the key signs the commands)."""

    name: str
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> OperatorKey:
        """Read the pair; :class:`SecurityError` when it is not an operator's matching pair."""
        try:
            cert = load_certificate(cert_file.read_bytes(), str(cert_file))
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        except OSError as exc:
            raise SecurityError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        except (TypeError, ValueError) as exc:
            raise SecurityError(f"{key_file}: not an unencrypted PEM private key") from exc
        who = identity_of(cert)
        if who.kind != "operator":
            raise SecurityError(f"{cert_file} is {who.common_name!r}, not an operator")
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise SecurityError(f"{key_file} is not the key of {cert_file}")
        return cls(who.common_name, key)


def send_command(
    cfg: MqttConfig,
    operator: OperatorKey,
    *,
    site: str,
    unit: str,
    name: str,
    args: dict[str, Any],
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Sign ``name`` for ``site``/``unit``, publish it and return the unit's reply."""
    topics = Topics(cfg.topic_prefix, check_name(site, "site"), check_name(unit, "unit"))
    check_name(name, "command")
    nonce = secrets.token_hex(16)
    reply_topic = topics.caller_reply(operator.name, nonce)
    payload = sign_command(
        name,
        f"{site}/{unit}",
        {**args, "reply_to": reply_topic, "correlation": nonce},
        key=operator.key,
        signer=operator.name,
        nonce=nonce,
    )
    replies: list[dict[str, Any]] = []
    done = threading.Event()
    subscribed = threading.Event()
    failure: list[str] = []

    client = make_client(cfg, operator.name, v311=False, will=None)

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            failure.append(f"broker refused the connection: {reason}")
            done.set()
            return
        c.subscribe(topics.caller_reply(operator.name, "#"), qos=1)

    def on_subscribe(_c: Any, _u: Any, _m: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            failure.append(f"subscription to the reply space refused: {reasons[0]}")
            done.set()
        subscribed.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        corr = getattr(msg.properties, "CorrelationData", None)
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if corr == nonce.encode() or (isinstance(body, dict) and body.get("correlation") == nonce):
            replies.append(body)
            done.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not done.is_set():
            failure.append(f"disconnected by the broker: {reason}")
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    where = f"{cfg.host}:{cfg.port}"
    try:
        client.connect(cfg.host, cfg.port, cfg.keepalive_s)
    except OSError as exc:
        raise TransportError(f"cannot connect to MQTT broker {where}: {exc}") from exc
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        if not subscribed.wait(min(timeout_s, 15.0)) and not failure:
            raise TransportError(f"no answer from MQTT broker {where}")
        if failure:
            raise TransportError(failure[0])
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = reply_topic
        props.CorrelationData = nonce.encode()
        body = json.dumps(payload, separators=(",", ":")).encode()
        client.publish(topics.command(name), body, qos=1, properties=props)
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise TransportError(
                f"no reply from {site}/{unit} within {timeout_s:.0f} s (is it online?)"
            )
        if failure:
            raise TransportError(failure[0])
        return replies[0]
    finally:
        client.disconnect()
        client.loop_stop()
