"""Signed commands: what the unit obeys, what it refuses (each attack), audit, redaction.

The first part drives :class:`CommandHandler` with the real verifier and a replay
cache on disk (exact reply topic and text per attack); the second runs a real unit
(``App``) on the generated Mosquitto with test-made certificates and commands it
with ``gateway cmd`` and with hand-made hostile payloads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import App
from gateway.cli import main
from gateway.config.settings import load_settings
from gateway.events.topics import Topics
from gateway.runtime.commands import AuditRecord, CommandHandler
from gateway.runtime.live_settings import ApplyResult, SettingsChange
from gateway.security import identity
from gateway.security.authorize import RefuseAll, SignedCommands, authorizer_for
from gateway.security.signing import (
    CommandRefusedError,
    ReplayCache,
    Verifier,
    load_trusted_operators,
    sign_command,
)
from gateway.transport.mqtt import Incoming
from tests.support.security import PASSPHRASE, Fleet, SecureBroker, TlsClient, secure_broker
from tests.support.transport import write_config

BASE = "city/east/rsu-a"
ALICE = f"{BASE}/reply/operator:alice"


def key_of(stem: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(f"{stem}.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    f.unit("east", "rsu-a")
    f.operator("alice", "admin")
    f.operator("bob", "read-only")
    f.operator("mallory", "admin")  # a fleet operator, but not trusted by this unit
    f.operator("carol", "admin")  # joins later (set_trust)
    f.ingest("w1")
    now = dt.datetime.now(dt.UTC)
    expired = f.ca.issue_with_key(
        identity.operator("old", "admin"),
        PASSPHRASE,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    (f.ids / "operator.old.key").write_bytes(expired.key_pem)
    (f.ids / "operator.old.crt").write_bytes(expired.cert_pem)
    trusted = b"".join(
        Path(f.ids / f"operator.{n}.crt").read_bytes() for n in ("alice", "bob", "old")
    )
    (f.root / "operators.pem").write_bytes(trusted)
    return f


class _Link:
    protocol = "5"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, **_kw: Any) -> tuple[int, int]:
        self.sent.append((topic, payload))
        return 0, len(self.sent)


class Unit:
    """A command handler with the real signed-command policy and recorders."""

    def __init__(self, fleet: Fleet, tmp_path: Path) -> None:
        trusted = load_trusted_operators((fleet.root / "operators.pem").read_bytes())
        self.replay = ReplayCache(64, 300, tmp_path / "nonces.json")
        self.verifier = Verifier(trusted, "east/rsu-a", 300.0, self.replay)
        self.changes: list[SettingsChange] = []
        self.audits: list[AuditRecord] = []
        settings = load_settings(write_config(tmp_path, 1883))
        self.handler = CommandHandler(
            link=_Link(),
            topics=Topics("city", "east", "rsu-a"),
            cameras={},
            settings=lambda: settings,
            apply_settings=self._apply,
            authorizer=SignedCommands(
                self.verifier, ca=fleet.ca.certificate, trust_path=tmp_path / "trusted.pem"
            ),
            audit=self.audits.append,
        )

    def _apply(self, change: SettingsChange) -> ApplyResult:
        self.changes.append(change)
        return ApplyResult((), ("mqtt",))

    def send(
        self, name: str, payload: dict[str, Any] | bytes, response_topic: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        topic, reply, _ = self.handler.handle(
            Incoming(f"{BASE}/cmd/{name}", body, response_topic, b"c1")
        )
        return topic, json.loads(reply)


def signed(
    fleet: Fleet,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    who: str = "alice",
    key: str | None = None,
    target: str = "east/rsu-a",
    now: float | None = None,
) -> dict[str, Any]:
    return sign_command(
        name,
        target,
        dict(args or {}),
        key=key_of(fleet.ids / f"operator.{key or who}"),
        signer=f"operator:{who}",
        now=now,
    )


PATCH = {"patch": {"events": {"health_interval_s": 30}}}


def test_signed_command_is_obeyed_replied_in_the_callers_space_and_audited(
    fleet: Fleet, tmp_path: Path
) -> None:
    unit = Unit(fleet, tmp_path)
    topic, reply = unit.send("set_config", signed(fleet, "set_config", PATCH))
    assert reply["ok"] is True, reply
    assert topic == f"{ALICE}/set_config"
    assert len(unit.changes) == 1
    [audit] = unit.audits
    assert audit.caller is not None and audit.caller.name == "operator:alice"
    assert audit.caller.role == "admin"
    assert audit.details == {"patch_paths": ["events.health_interval_s"]}
    # The nonce is on disk, 0600: a restart does not reopen the replay window.
    state = json.loads((tmp_path / "nonces.json").read_text())
    assert list(state["nonces"]) == [audit.caller.nonce]
    assert (tmp_path / "nonces.json").stat().st_mode & 0o777 == 0o600


def forged_signature(fleet: Fleet) -> dict[str, Any]:
    return signed(fleet, "set_config", PATCH, key="mallory")  # says alice, signed by mallory


def tampered(fleet: Fleet) -> dict[str, Any]:
    payload = signed(fleet, "set_config", PATCH)
    payload["patch"] = {"mqtt": {"port": 1}}  # changed after signing
    return payload


def garbled_sig(fleet: Fleet) -> dict[str, Any]:
    payload = signed(fleet, "set_config", PATCH)
    payload["auth"]["sig"] = "!!not base64!!"
    return payload


@pytest.mark.parametrize(
    ("name", "make", "error"),
    [
        ("set_config", lambda f: PATCH, "refused: command is not signed"),
        ("set_config", forged_signature, "signature of operator:alice does not verify"),
        ("set_config", tampered, "signature of operator:alice does not verify"),
        ("set_config", garbled_sig, "does not verify"),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, who="mallory"),
            "'operator:mallory' is not a trusted operator",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, target="east/rsu-b"),
            "signed for 'east/rsu-b', this unit is 'east/rsu-a'",
        ),
        (
            "set_config",
            lambda f: signed(f, "get_config"),
            "signature is for command 'get_config', not 'set_config'",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, now=time.time() - 1000),
            "s ago (old; the limit is 300 s",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, now=time.time() + 1000),
            "ahead (in the future",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, who="old"),
            "certificate of operator:old is not valid now",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", PATCH, who="bob"),
            "operator:bob has the read-only role",
        ),
        (
            "restart_pipeline",
            lambda f: signed(f, "restart_pipeline", {"camera": "c"}, who="bob"),
            "read-only role",
        ),
        ("set_config", lambda f: {**PATCH, "auth": "alice"}, "'auth' must have exactly"),
        (
            "set_config",
            lambda f: signed(f, "set_config", {"patch": {"security": {"unsigned_commands": True}}}),
            "security.unsigned_commands can change only by enrollment",
        ),
        (
            "set_config",
            lambda f: signed(f, "set_config", {"patch": {"gateway": {"id": "rsu-b"}}}),
            "gateway.id can change only by enrollment",
        ),
        ("set_config", lambda f: {**signed(f, "set_config", PATCH), "extra": 1}, "does not verify"),
    ],
    ids=[
        "unsigned",
        "forged",
        "tampered",
        "garbled",
        "untrusted",
        "wrong-target",
        "wrong-command",
        "expired",
        "future",
        "expired-cert",
        "read-only-set",
        "read-only-restart",
        "bad-auth",
        "unsigned-extra-arg",
        "remote-unsigned-mode",
        "remote-identity",
    ],
)
def test_attacks_are_refused_with_an_error_reply_and_change_nothing(
    fleet: Fleet, tmp_path: Path, name: str, make: Any, error: str
) -> None:
    unit = Unit(fleet, tmp_path)
    topic, reply = unit.send(name, make(fleet))
    assert reply["ok"] is False
    assert error in reply["error"], reply["error"]
    assert unit.changes == []
    assert unit.handler.rejected == 1
    # The error goes where the sender cannot choose: the claimed operator's space or
    # the unit's default reply topic, never a topic the payload names.
    assert topic in (f"{ALICE}/{name}", f"{BASE}/reply/{name}") or "/reply/operator:" in topic
    if "read-only role" in error or "enrollment" in error:
        assert len(unit.audits) == 1 and unit.audits[0].ok is False  # obeyed policy, refused role
    else:
        assert unit.audits == []


def test_read_only_operator_reads_the_config(fleet: Fleet, tmp_path: Path) -> None:
    unit = Unit(fleet, tmp_path)
    topic, reply = unit.send("get_config", signed(fleet, "get_config", who="bob"))
    assert reply["ok"] is True
    assert topic == f"{BASE}/reply/operator:bob/get_config"


def test_replayed_command_is_refused_even_after_a_restart(fleet: Fleet, tmp_path: Path) -> None:
    payload = signed(fleet, "set_config", PATCH)
    first = Unit(fleet, tmp_path)
    assert first.send("set_config", payload)[1]["ok"] is True
    _, again = first.send("set_config", payload)
    assert "replayed command" in again["error"]
    restarted = Unit(fleet, tmp_path)  # same nonce file
    _, after = restarted.send("set_config", payload)
    assert "replayed command" in after["error"]
    assert restarted.changes == []


@pytest.mark.parametrize(
    ("reply_to", "response_topic"),
    [
        ("city/ingest/deadletter", None),
        (f"{BASE}/reply/operator:bob/x", None),
        (f"{BASE}/reply/operator:alicex/1", None),
        (f"{BASE}/reply/operator:alice/", None),
        ("city/east/rsu-a/cmd/set_config", None),
        (None, "city/east/rsu-b/cmd/set_config"),
        (None, f"{BASE}/reply/operator:bob/x"),
    ],
)
def test_hostile_reply_topics_are_refused(
    fleet: Fleet, tmp_path: Path, reply_to: str | None, response_topic: str | None
) -> None:
    unit = Unit(fleet, tmp_path)
    args = {**PATCH, **({"reply_to": reply_to} if reply_to else {})}
    topic, reply = unit.send("set_config", signed(fleet, "set_config", args), response_topic)
    assert "replies go only under city/east/rsu-a/reply/operator:alice/" in reply["error"]
    assert topic == f"{ALICE}/set_config"
    assert unit.changes == []


def test_replay_cache_is_bounded_and_never_forgets_into_acceptance(tmp_path: Path) -> None:
    cache = ReplayCache(16, 300, tmp_path / "n.json")
    now = time.time()
    nonces = [f"{i:032x}" for i in range(40)]
    for i, nonce in enumerate(nonces):
        cache.check(nonce, now - 100 + i)
        cache.add(nonce, now - 100 + i, now)
    assert len(cache) == 16
    for i, nonce in enumerate(nonces):  # every one is refused: remembered or below the floor
        with pytest.raises(CommandRefusedError, match=r"replayed|older than the replay window"):
            cache.check(nonce, now - 100 + i)
    cache.add("f" * 32, now, now + 1000)  # everything older than the window is dropped
    assert len(cache) == 1


def test_policy_from_config(fleet: Fleet, tmp_path: Path) -> None:
    base = {"gateway": {"data_dir": str(tmp_path)}}
    for security, expected in (
        ({}, "has no trusted operators"),
        ({"trusted_operators": str(tmp_path / "missing.pem")}, "cannot read"),
        ({"trusted_operators": str(fleet.ids / "east.rsu-a.crt")}, "not an operator certificate"),
    ):
        from gateway.config.settings import validate_settings

        policy = authorizer_for(validate_settings({**base, "security": security}))
        assert isinstance(policy, RefuseAll)
        assert expected in policy.reason


# -- a real unit on the real broker --------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path, fleet: Fleet) -> Iterator[SecureBroker]:
    yield from secure_broker(tmp_path / "broker", fleet)


@pytest.fixture
def unit_app(tmp_path: Path, fleet: Fleet, broker: SecureBroker) -> Iterator[tuple[App, Path]]:
    path = write_config(
        tmp_path,
        broker.port,
        gateway={"id": "rsu-a", "site": "east", "data_dir": str(tmp_path / "data")},
        mqtt={
            "tls": fleet.tls(fleet.ids / "east.rsu-a"),
            "username": "ignored",
            "password": "mqtt-s3cret-pw",
        },
        security={
            "unsigned_commands": False,
            "trusted_operators": str(fleet.root / "operators.pem"),
            "rollback_deadline_s": 3,
        },
        cameras=[
            {
                "id": "gate",
                "enabled": False,
                "source": {"type": "url", "url": "rtsp://admin:cam-s3cret@192.0.2.7:554/stream1"},
            }
        ],
    )
    app = App(load_settings(path), path)
    app.start()
    app.link.wait_connected(15)
    yield app, path
    app.stop()


def operator_cli(fleet: Fleet, broker: SecureBroker, who: str, *args: str) -> list[str]:
    stem = fleet.ids / f"operator.{who}"
    return [
        "cmd", "--site", "east", "--unit", "rsu-a", "--host", "127.0.0.1",
        "--port", str(broker.port), "--ca", str(fleet.ca.cert_path),
        "--cert", f"{stem}.crt", "--key", f"{stem}.key", "--timeout", "20", *args,
    ]  # fmt: skip


def test_gateway_cmd_end_to_end_with_audit_and_redaction(
    fleet: Fleet,
    broker: SecureBroker,
    unit_app: tuple[App, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _app, path = unit_app
    ingest = TlsClient(broker, fleet.ids / "ingest.w1")
    assert ingest.connect() == "connected"
    ingest.subscribe("$share/ingest/+/+/+/events/#")
    try:
        code = main(operator_cli(fleet, broker, "alice", "get_config"))
        out = capsys.readouterr().out
        assert code == 0, out
        reply = json.loads(out)
        assert reply["ok"] is True
        assert "cam-s3cret" not in out and "mqtt-s3cret-pw" not in out
        assert (
            reply["result"]["cameras"][0]["source"]["url"]
            == "rtsp://admin:***@192.0.2.7:554/stream1"
        )
        assert reply["result"]["mqtt"]["password"] == "**********"

        patch = tmp_path / "patch.json"
        patch.write_text(json.dumps({"events": {"health_interval_s": 42}}))
        code = main(operator_cli(fleet, broker, "alice", "set_config", "--patch", str(patch)))
        reply = json.loads(capsys.readouterr().out)
        assert code == 0 and reply["ok"] is True, reply
        assert "health_interval_s = 42" in path.read_text()

        code = main(operator_cli(fleet, broker, "bob", "set_config", "--patch", str(patch)))
        reply = json.loads(capsys.readouterr().out)
        assert code == 1 and "read-only role" in reply["error"]

        assert ingest.wait_received("/events/gateway/command", 3)
    finally:
        ingest.close()
    audits = [json.loads(m.payload) for m in ingest.received("/events/gateway/command")]
    assert [(a["data"]["command"], a["data"]["caller"], a["data"]["ok"]) for a in audits] == [
        ("get_config", "operator:alice", True),
        ("set_config", "operator:alice", True),
        ("set_config", "operator:bob", False),
    ]
    assert audits[1]["data"]["patch_paths"] == ["events.health_interval_s"]
    from gateway.events import validate_event
    from gateway.ingest.mapping import event_points

    for audit in audits:  # valid against the published schema, and stored by the ingest
        validate_event(audit)
        [point] = event_points(audit)
        assert point.tags["caller"] == audit["data"]["caller"]
    assert all(a["gateway"] == "rsu-a" and a["site"] == "east" for a in audits)


def test_hostile_clients_on_the_real_broker_change_nothing(
    fleet: Fleet, broker: SecureBroker, unit_app: tuple[App, Path]
) -> None:
    app, path = unit_app
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    alice = TlsClient(broker, fleet.ids / "operator.alice")
    mallory = TlsClient(broker, fleet.ids / "operator.mallory")
    try:
        assert alice.connect() == "connected" and mallory.connect() == "connected"
        alice.subscribe(f"{ALICE}/#")
        mallory.subscribe("city/#")
        evil = {"patch": {"mqtt": {"port": 1}}}
        # Mallory is a fleet operator the broker lets publish commands, but the unit
        # does not trust her: unsigned, signed by herself, and alice's replayed command.
        mallory.publish(f"{BASE}/cmd/set_config", json.dumps(evil).encode())
        mallory.publish(
            f"{BASE}/cmd/set_config",
            json.dumps(signed(fleet, "set_config", evil, who="mallory")).encode(),
        )
        good = signed(
            fleet,
            "set_config",
            {
                "patch": {"events": {"health_interval_s": 99}},
                "reply_to": f"{ALICE}/1",
                "correlation": "one",
            },
        )
        alice.publish(f"{BASE}/cmd/set_config", json.dumps(good).encode())
        assert alice.wait_received(f"{ALICE}/1")
        after_good = path.read_text()
        mallory.publish(f"{BASE}/cmd/set_config", json.dumps(good).encode())  # captured, replayed
        assert alice.wait_received(f"{ALICE}/1", 2)
        broker.wait_log(f"'{BASE}/reply/set_config'")  # the unsigned one's error reply
    finally:
        alice.close()
        mallory.close()
    replies = [json.loads(m.payload) for m in alice.received(f"{ALICE}/1")]
    assert replies[0]["ok"] is True and replies[0]["correlation"] == "one"
    assert "replayed command" in replies[1]["error"]
    assert [m.topic for m in mallory.received("operator:alice")] == []  # alice's replies are hers
    assert mallory.received("reply/operator:mallory")  # her own refusal she may read
    assert path.read_text() == after_good and "port = 1\n" not in after_good
    assert before != after_good
    assert app.commands.rejected == 3 and app.commands.handled == 1


@pytest.mark.parametrize(
    ("patch", "ok"),
    [({"mqtt": {"port": 1}}, False), ({"mqtt": {"keepalive_s": 25}}, True)],
    ids=["bad-port-rolled-back", "good-change-applied-live"],
)
def test_a_change_that_cuts_the_unit_off_is_rolled_back(
    fleet: Fleet,
    broker: SecureBroker,
    unit_app: tuple[App, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    patch: dict[str, Any],
    ok: bool,
) -> None:
    app, path = unit_app
    before = path.read_text()
    connects = app.link.connects
    patch_file = tmp_path / "patch.json"
    patch_file.write_text(json.dumps(patch))
    code = main(operator_cli(fleet, broker, "alice", "set_config", "--patch", str(patch_file)))
    reply = json.loads(capsys.readouterr().out)
    assert reply["ok"] is ok, reply
    assert app.link.connected and app.link.cfg.port == broker.port
    if ok:
        assert code == 0 and "mqtt" in reply["result"]["applied"]
        assert "keepalive_s = 25" in path.read_text()
        assert app.link.connects == connects + 1 and app.link.cfg.keepalive_s == 25
    else:
        assert code == 1
        assert "did not reconnect with the new [mqtt] settings within 3 s" in reply["error"]
        assert "127.0.0.1:1" in reply["error"] and "last good config is restored" in reply["error"]
        assert path.read_text() == before
        assert app.link.connects == connects + 1  # back on the old broker
    # Still reachable and commandable, and after a restart too (the file is good).
    assert main(operator_cli(fleet, broker, "alice", "get_config")) == 0
    capsys.readouterr()
    assert load_settings(path).mqtt.port == broker.port


def test_gateway_cmd_from_an_operator_config_file_and_its_errors(
    fleet: Fleet,
    broker: SecureBroker,
    unit_app: tuple[App, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stem = fleet.ids / "operator.bob"
    operator_toml = tmp_path / "operator.toml"
    operator_toml.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[mqtt.tls]\nca_file = "{fleet.ca.cert_path}"\n'
        f'cert_file = "{stem}.crt"\nkey_file = "{stem}.key"\n'
    )
    base = ["cmd", "-c", str(operator_toml), "--site", "east", "--timeout", "3"]
    assert main([*base, "--unit", "rsu-a", "get_config"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    # A unit that does not answer, a unit key instead of an operator's, a missing cert.
    assert main([*base, "--unit", "rsu-nobody", "get_config"]) == 1
    assert "no reply from east/rsu-nobody within 3 s" in capsys.readouterr().err
    unit_stem = fleet.ids / "east.rsu-a"
    code = main(
        [
            *base,
            "--unit",
            "rsu-a",
            "--cert",
            f"{unit_stem}.crt",
            "--key",
            f"{unit_stem}.key",
            "get_config",
        ]
    )
    assert code == 2 and "is 'east/rsu-a', not an operator" in capsys.readouterr().err
    code = main(["cmd", "--site", "east", "--unit", "rsu-a", "get_config"])
    assert code == 2 and "give the operator's --cert and --key" in capsys.readouterr().err


def pem_of(fleet: Fleet, *names: str) -> str:
    return "".join((fleet.ids / f"operator.{n}.crt").read_text() for n in names)


def test_set_trust_replaces_the_operators_live_and_after_a_restart(
    fleet: Fleet, tmp_path: Path
) -> None:
    unit = Unit(fleet, tmp_path)
    args = {"operators": pem_of(fleet, "alice", "carol")}
    _, reply = unit.send("set_trust", signed(fleet, "set_trust", args))
    assert reply["ok"] is True, reply
    assert reply["result"] == {"trusted": ["operator:alice", "operator:carol"]}
    assert unit.audits[-1].details == {"trusted": ["operator:alice", "operator:carol"]}
    assert unit.send("get_config", signed(fleet, "get_config", who="carol"))[1]["ok"] is True
    _, bob = unit.send("get_config", signed(fleet, "get_config", who="bob"))
    assert "'operator:bob' is not a trusted operator" in bob["error"]
    # After a restart the unit reads the trust set_trust saved (checked against its CA).
    from gateway.config.settings import validate_settings

    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "trusted-operators.pem").write_text(args["operators"])
    settings = validate_settings(
        {
            "gateway": {"data_dir": str(tmp_path / "data"), "site": "east", "id": "rsu-a"},
            "mqtt": {"tls": {"ca_file": str(fleet.ca.cert_path)}},
            "security": {"trusted_operators": str(fleet.root / "operators.pem")},
        }
    )
    policy = authorizer_for(settings)
    assert isinstance(policy, SignedCommands)
    assert sorted(policy.verifier.trusted) == ["operator:alice", "operator:carol"]


@pytest.mark.parametrize(
    ("who", "operators", "error"),
    [
        ("alice", lambda f: pem_of(f, "bob"), "names no admin"),
        ("alice", lambda f: Fleet(f.root / "rogue2").ca.cert_pem.decode(), "not a fleet identity"),
        ("alice", lambda f: "junk", "not a PEM file of certificates"),
        ("alice", lambda f: "", "argument 'operators'"),
        ("bob", lambda f: pem_of(f, "alice", "bob"), "has the read-only role"),
    ],
)
def test_bad_set_trust_is_refused_and_changes_nothing(
    fleet: Fleet, tmp_path: Path, who: str, operators: Any, error: str
) -> None:
    unit = Unit(fleet, tmp_path)
    _, reply = unit.send(
        "set_trust", signed(fleet, "set_trust", {"operators": operators(fleet)}, who=who)
    )
    assert reply["ok"] is False and error in reply["error"], reply
    assert not (tmp_path / "trusted.pem").exists()
    assert unit.send("get_config", signed(fleet, "get_config", who="bob"))[1]["ok"] is True


def test_set_trust_refuses_an_operator_of_another_ca(fleet: Fleet, tmp_path: Path) -> None:
    rogue = Fleet(tmp_path / "rogue")
    rogue.operator("alice", "admin")  # same name, another CA
    unit = Unit(fleet, tmp_path)
    pem = (rogue.ids / "operator.alice.crt").read_text()
    _, reply = unit.send("set_trust", signed(fleet, "set_trust", {"operators": pem}))
    assert "operator:alice was not issued by the fleet CA" in reply["error"]


def test_gateway_pki_operators_and_set_trust_end_to_end(
    fleet: Fleet,
    broker: SecureBroker,
    unit_app: tuple[App, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, _path = unit_app
    pem = tmp_path / "operators.pem"
    args = ["pki", "operators", "--pki", str(fleet.ca.directory), "--out", str(pem)]
    assert main([*args, "--operator", "alice", "--operator", "carol"]) == 0
    assert "2 operator(s)" in capsys.readouterr().out
    assert main(operator_cli(fleet, broker, "carol", "get_config")) == 1  # not trusted yet
    assert "not a trusted operator" in json.loads(capsys.readouterr().out)["error"]
    assert main(operator_cli(fleet, broker, "alice", "set_trust", "--operators", str(pem))) == 0
    assert json.loads(capsys.readouterr().out)["result"]["trusted"] == [
        "operator:alice",
        "operator:carol",
    ]
    assert main(operator_cli(fleet, broker, "carol", "get_config")) == 0
    capsys.readouterr()
    saved = app.settings.gateway.data_dir / "trusted-operators.pem"
    assert saved.read_text() == pem.read_text()
