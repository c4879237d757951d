"""From a bundle on a stick to an enrolled unit publishing on the authorizing broker."""

from __future__ import annotations

import json
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config.settings import load_settings
from tests.support.security import PASSPHRASE, Fleet, SecureBroker, TlsClient

USER = "nobody"  # any existing unprivileged user stands in for roadside-gateway


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    f = Fleet(tmp_path / "fleet")
    f.operator("alice", "admin")
    f.ingest("w1")
    return f


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


def provision(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str], port: int, *extra: str
) -> Path:
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    template = tmp_path / "template.toml"
    template.write_text('[events]\nhealth_interval_s = 1\n[logging]\nlevel = "info"\n')
    out = tmp_path / "stick" / "east.rsu-9.bundle.json"
    code, text = run(
        [
            "provision", "--pki", str(fleet.ca.directory),
            "--passphrase-file", str(tmp_path / "pass"),
            "--site", "east", "--id", "rsu-9", "--broker", f"127.0.0.1:{port}",
            "--config", str(template), "--out", str(out), *extra,
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return out


def enroll_args(bundle: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "enroll", str(bundle), "--etc-dir", str(tmp_path / "etc"),
        "--data-dir", str(tmp_path / "data"), "--user", USER, "--no-start", *extra,
    ]  # fmt: skip


def test_bundle_enrolls_idempotently_and_the_unit_publishes(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = SecureBroker(tmp_path / "broker", fleet)
    broker.start()
    try:
        bundle = provision(fleet, tmp_path, capsys, broker.port)
        key_pem = json.loads(bundle.read_text())["key"]
        code, text = run(enroll_args(bundle, tmp_path), capsys)
        assert code == 0, text
        assert "enrolled east/rsu-9: broker 127.0.0.1" in text
        assert "doctor ok   broker" in text, text  # the doctor checked the installed config
        assert "PRIVATE KEY" not in text and key_pem not in text
        etc = tmp_path / "etc"
        nobody = pwd.getpwnam(USER)
        key = etc / "pki" / "unit.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (key.stat().st_uid, key.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
        assert stat.S_IMODE((etc / "pki").stat().st_mode) == 0o750
        assert (etc / "pki").stat().st_uid == 0  # the service cannot change its CA
        assert stat.S_IMODE(etc.stat().st_mode) == 0o1775
        config = etc / "gateway.toml"
        assert config.stat().st_uid == nobody.pw_uid  # set_config may rewrite it
        mtimes = {p: p.stat().st_mtime_ns for p in etc.rglob("*")}

        code, text = run(enroll_args(bundle, tmp_path), capsys)  # again: nothing changes
        assert code == 0 and "installed" not in text and "unchanged: 5 file(s)" in text
        assert {p: p.stat().st_mtime_ns for p in etc.rglob("*")} == mtimes

        settings = load_settings(config)
        assert (settings.gateway.site, settings.gateway.id) == ("east", "rsu-9")
        assert settings.security.trusted_operators == etc / "pki" / "operators.pem"
        ingest = TlsClient(broker, fleet.ids / "ingest.w1")
        assert ingest.connect() == "connected"
        ingest.subscribe("$share/ingest/+/+/+/health")
        app = App(settings, config)
        try:
            app.start()
            assert ingest.wait_received("city/east/rsu-9/health", timeout=20)
        finally:
            app.stop()
            ingest.close()
        broker.wait_log("as east/rsu-9 (p5")
    finally:
        broker.stop()


def test_csr_flow_keeps_the_key_on_the_unit(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = provision(fleet, tmp_path, capsys, 8883, "--csr")
    assert json.loads(bundle.read_text())["key"] is None
    code, text = run(enroll_args(bundle, tmp_path), capsys)
    assert code == 3, text
    csr = bundle.with_name("east.rsu-9.csr")
    assert "gateway pki issue unit --site east --id rsu-9 --csr east.rsu-9.csr" in text
    key = (tmp_path / "etc" / "pki" / "unit.key").read_bytes()
    code, _ = run(enroll_args(bundle, tmp_path), capsys)  # again: the same key, the same CSR
    assert code == 3 and (tmp_path / "etc" / "pki" / "unit.key").read_bytes() == key
    code, text = run(
        [
            "pki", "issue", "unit", "--pki", str(fleet.ca.directory), "--passphrase-file",
            str(tmp_path / "pass"), "--site", "east", "--id", "rsu-9", "--csr", str(csr),
            "--out", str(tmp_path / "signed"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, text
    assert not (tmp_path / "signed" / "east.rsu-9.key").exists()
    cert = tmp_path / "signed" / "east.rsu-9.crt"
    code, text = run(enroll_args(bundle, tmp_path, "--cert", str(cert)), capsys)
    assert code == 1, text  # enrolled, but the doctor finds no broker on 127.0.0.1:8883
    assert "enrolled east/rsu-9" in text and "doctor: 1 check(s) failed" in text
    code, text = run(enroll_args(bundle, tmp_path, "--cert", str(cert), "--no-doctor"), capsys)
    assert code == 0, text
    assert (tmp_path / "etc" / "pki" / "unit.key").read_bytes() == key
    assert (tmp_path / "etc" / "pki" / "unit.crt").read_bytes() == cert.read_bytes()


def _edit(bundle: Path, **changes: Any) -> None:
    data = json.loads(bundle.read_text())
    data.update(changes)
    bundle.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda b, f: b.write_text("{not json"), "not a valid enrollment bundle"),
        (lambda b, f: b.write_bytes(b"\xff\xfe"), "not an enrollment bundle"),
        (lambda b, f: _edit(b, format="other"), "format"),
        (lambda b, f: _edit(b, gateway="rsu-10"), "names another unit"),
        (lambda b, f: _edit(b, key=json.loads(b.read_text())["key"].replace("A", "B", 3)), "key"),
        (lambda b, f: _edit(b, ca=Fleet(f.root / "rogue").ca.cert_pem.decode()), "not issued by"),
        (lambda b, f: _edit(b, config='[gateway]\nid = "rsu-1"\nsite = "east"\n'), "another unit"),
        (lambda b, f: _edit(b, config="[gateway]\nnope = 1\n"), "invalid setting"),
        (lambda b, f: _edit(b, operators="junk"), "not a PEM file of certificates"),
        (lambda b, f: _edit(b, certificate=None), "certificate without its key"),
    ],
    ids=["not-json", "binary", "format", "other-unit", "bad-key", "rogue-ca", "config-other-unit",
         "bad-config", "bad-operators", "half-pair"],
)  # fmt: skip
def test_bad_bundles_are_refused_and_nothing_is_written(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, error: str
) -> None:
    bundle = provision(fleet, tmp_path, capsys, 8883)
    damage(bundle, fleet)
    code, text = run(enroll_args(bundle, tmp_path), capsys)
    assert code == 2, text
    assert error in text
    assert not (tmp_path / "etc").exists()


def test_enroll_needs_the_service_user(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = provision(fleet, tmp_path, capsys, 8883)
    args = enroll_args(bundle, tmp_path)
    args[args.index(USER)] = "no-such-user-here"
    code, text = run(args, capsys)
    assert code == 2 and "user 'no-such-user-here' does not exist" in text
