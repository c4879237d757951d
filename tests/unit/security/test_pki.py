"""The fleet CA: identities, CSRs, renewal, revocation, the CRL, and `gateway pki` itself."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.cli import main
from gateway.errors import SecurityError
from gateway.security import identity
from gateway.security.broker import BrokerLayout, acl_text
from gateway.security.pki import FleetCA, identity_of, make_csr, new_key
from tests.support.security import PASSPHRASE


@pytest.fixture
def ca(tmp_path: Path) -> FleetCA:
    return FleetCA.create(tmp_path / "pki", PASSPHRASE)


def test_ca_key_is_encrypted_at_rest_and_private(ca: FleetCA) -> None:
    pem = ca.key_path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    with pytest.raises(TypeError):  # not loadable without the passphrase
        serialization.load_pem_private_key(pem, None)
    with pytest.raises(SecurityError, match="wrong passphrase"):
        ca.issue_with_key(identity.unit("east", "rsu-1"), b"not the passphrase")
    assert ca.records() == []  # the failed attempt recorded nothing


@pytest.mark.parametrize(
    ("passphrase", "error"),
    [(b"short", "at least 8"), (PASSPHRASE, "already holds")],
)
def test_bad_ca_creation(tmp_path: Path, passphrase: bytes, error: str) -> None:
    FleetCA.create(tmp_path / "existing", PASSPHRASE)
    target = tmp_path / ("existing" if error == "already holds" else "new")
    with pytest.raises(SecurityError, match=error):
        FleetCA.create(target, passphrase)


@pytest.mark.parametrize(
    ("who", "cn", "ou", "usage"),
    [
        (identity.unit("east", "rsu-1"), "east/rsu-1", "unit", ExtendedKeyUsageOID.CLIENT_AUTH),
        (
            identity.operator("alice", "admin"),
            "operator:alice",
            "admin",
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
        (
            identity.operator("bob", "read-only"),
            "operator:bob",
            "read-only",
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
        (identity.ingest("w1"), "ingest:w1", "ingest", ExtendedKeyUsageOID.CLIENT_AUTH),
        (
            identity.broker("mqtt.city"),
            "broker:mqtt.city",
            "broker",
            ExtendedKeyUsageOID.SERVER_AUTH,
        ),
    ],
)
def test_issued_certificates_name_the_identity(
    ca: FleetCA, who: identity.Identity, cn: str, ou: str, usage: x509.ObjectIdentifier
) -> None:
    issued = ca.issue_with_key(
        who, PASSPHRASE, hosts=("127.0.0.1",) if who.kind == "broker" else ()
    )
    cert = issued.certificate
    assert identity_of(cert) == who
    assert cert.subject.rfc4514_string().startswith(f"OU={ou},CN={cn}")
    assert cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    ).value == x509.ExtendedKeyUsage([usage])
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca.certificate)
    assert ca.newest(cn) == issued.record


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: identity.unit("east/x", "rsu-1"), "site"),
        (lambda: identity.unit("east", "rsu+1"), "gateway id"),
        (lambda: identity.unit("east", "#"), "gateway id"),
        (lambda: identity.unit("", "rsu-1"), "site"),
        (lambda: identity.operator("al:ice", "admin"), "operator name"),
        (lambda: identity.operator("alice", "root"), "role"),  # type: ignore[arg-type]
        (lambda: identity.ingest("w/1"), "ingest worker name"),
        (lambda: identity.parse_common_name("alice"), "not a fleet identity"),
        (lambda: identity.parse_common_name("admin:alice"), "unknown kind"),
    ],
)
def test_bad_identity_names_are_refused(make: object, error: str) -> None:
    with pytest.raises(SecurityError, match=error):
        make()  # type: ignore[operator]


def test_csr_path_keeps_the_key_on_the_unit(ca: FleetCA) -> None:
    key = new_key()
    who = identity.unit("east", "rsu-1")
    issued = ca.sign_csr(make_csr(who, key), PASSPHRASE, expected=who)
    assert issued.key is None
    assert issued.certificate.public_key() == key.public_key()
    with pytest.raises(SecurityError, match="never saw"):
        _ = issued.key_pem


@pytest.mark.parametrize(
    ("csr", "error"),
    [
        (lambda: make_csr(identity.unit("east", "rsu-2"), new_key()), "expected 'east/rsu-1'"),
        (lambda: make_csr(identity.operator("eve", "admin"), new_key()), "not operator"),
        (
            lambda: (
                b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            ),
            "not a PEM",
        ),
        (lambda: b"garbage", "not a PEM"),
    ],
)
def test_bad_csrs_are_refused(ca: FleetCA, csr: object, error: str) -> None:
    with pytest.raises(SecurityError, match=error):
        ca.sign_csr(csr(), PASSPHRASE, expected=identity.unit("east", "rsu-1"))  # type: ignore[operator]
    assert ca.records() == []


def test_csr_with_a_forged_signature_is_refused(ca: FleetCA) -> None:
    pem = make_csr(identity.unit("east", "rsu-1"), new_key())
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(SecurityError, match="signature does not verify"):
        ca.sign_csr(forged, PASSPHRASE)


def test_renew_keeps_the_key_and_supersedes(ca: FleetCA) -> None:
    first = ca.issue_with_key(identity.unit("east", "rsu-1"), PASSPHRASE)
    renewed = ca.renew("east/rsu-1", PASSPHRASE, days=30)
    assert renewed.certificate.public_key() == first.certificate.public_key()
    assert renewed.record.serial != first.record.serial
    assert [s for _, s in ca.statuses()] == ["superseded", "valid"]
    with pytest.raises(SecurityError, match="ever issued"):
        ca.renew("east/rsu-9", PASSPHRASE)


def test_revoke_writes_the_serial_into_the_crl(ca: FleetCA) -> None:
    keep = ca.issue_with_key(identity.unit("east", "rsu-1"), PASSPHRASE)
    lost = ca.issue_with_key(identity.unit("east", "rsu-2"), PASSPHRASE)
    assert list(ca.crl()) == []
    ca.revoke(PASSPHRASE, "east/rsu-2", reason="stolen")
    crl = ca.crl()
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(lost.certificate.serial_number)
    assert crl.get_revoked_certificate_by_serial_number(keep.certificate.serial_number) is None
    assert {r.common_name: s for r, s in ca.statuses()} == {
        "east/rsu-1": "valid",
        "east/rsu-2": "revoked",
    }
    with pytest.raises(SecurityError, match="no unrevoked"):
        ca.revoke(PASSPHRASE, "east/rsu-2")
    with pytest.raises(SecurityError, match="revoked: issue a new identity"):
        ca.renew("east/rsu-2", PASSPHRASE)


def test_acl_lists_live_operators_and_ingest_only(ca: FleetCA) -> None:
    ca.issue_with_key(identity.operator("alice", "admin"), PASSPHRASE)
    ca.issue_with_key(identity.operator("mallory", "admin"), PASSPHRASE)
    ca.issue_with_key(identity.ingest("w1"), PASSPHRASE)
    ca.issue_with_key(identity.unit("east", "rsu-1"), PASSPHRASE)
    ca.revoke(PASSPHRASE, "operator:mallory")
    text = acl_text(BrokerLayout(prefix="city/east"), ca.records())
    assert "user operator:alice" in text and "user ingest:w1" in text
    assert "mallory" not in text
    assert "rsu-1" not in text  # units are covered by the patterns
    assert "pattern write city/east/%u/events/#" in text
    # Every identity reads the consumers' declarations; the ingest and admins write them.
    assert "pattern read city/east/central/capabilities/+" in text
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n\n")}
    assert "topic write city/east/central/capabilities/+" in sections["# ingest w1"]
    assert "topic write city/east/central/capabilities/+" in sections["# operator alice (admin)"]


@pytest.mark.parametrize(
    ("layout", "error"),
    [
        (BrokerLayout(prefix="city/#"), "topic prefix"),
        (BrokerLayout(dead_letter_topic="city/+/dl"), "dead-letter"),
        (BrokerLayout(dead_letter_topic="city/ingest/deadletter"), "would own"),
        (BrokerLayout(dead_letter_topic="city/x/dl"), "would own 'city/central/capabilities/\\+'"),
    ],
)
def test_acl_generation_refuses_unsafe_layouts(
    ca: FleetCA, layout: BrokerLayout, error: str
) -> None:
    ca.issue_with_key(identity.unit("ingest", "deadletter"), PASSPHRASE)
    ca.issue_with_key(identity.unit("central", "capabilities"), PASSPHRASE)
    with pytest.raises(SecurityError, match=error):
        acl_text(layout, ca.records())


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


def test_cli_end_to_end_never_prints_the_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "tr0ub4dor&3-secret"
    pfile = tmp_path / "pass"
    pfile.write_text(secret + "\n")
    pki = ["--pki", str(tmp_path / "pki"), "--passphrase-file", str(pfile)]
    out = ["--out", str(tmp_path / "out")]
    transcript = []
    for args in (
        ["pki", "init", *pki],
        ["pki", "issue", "unit", *pki, "--site", "east", "--id", "rsu-1", *out],
        ["pki", "issue", "operator", "alice", "--role", "admin", *pki, *out],
        ["pki", "issue", "ingest", "w1", *pki, *out],
        ["pki", "issue", "broker", "localhost", "--ip", "127.0.0.1", *pki, *out],
        ["pki", "renew", "east/rsu-1", *pki, *out],
        ["pki", "revoke", "operator:alice", "--reason", "left", *pki],
        ["pki", "crl", *pki, "--days", "30"],
        ["pki", "list", "--pki", str(tmp_path / "pki")],
        ["pki", "broker-config", "--pki", str(tmp_path / "pki"), "--out", str(tmp_path / "broker")],
    ):
        code, text = run_cli(args, capsys)
        assert code == 0, (args, text)
        transcript.append(text)
    joined = "\n".join(transcript)
    assert secret not in joined
    assert "operator:alice" in transcript[-2] and "revoked" in transcript[-2]
    assert "<- run `gateway pki crl` soon" in transcript[-2]  # 30-day CRL
    for key in (tmp_path / "out").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    acl = (tmp_path / "broker" / "acl").read_text()
    assert "user ingest:w1" in acl and "operator:alice" not in acl
    # The environment variable works too; a wrong one is one clear line, exit 2.
    monkeypatch.setenv("GATEWAY_PKI_PASSPHRASE", "wrong passphrase")
    code, text = run_cli(
        ["pki", "issue", "ingest", "w2", "--pki", str(tmp_path / "pki"), *out], capsys
    )
    assert code == 2
    assert text.strip() == "error: wrong passphrase for the CA key (or the key is damaged)"
    code, text = run_cli(["pki", "list", "--pki", str(tmp_path / "pki"), "--json"], capsys)
    rows = [json.loads(line) for line in text.splitlines()]
    assert [(r["common_name"], r["status"]) for r in rows] == [
        ("east/rsu-1", "superseded"),
        ("operator:alice", "revoked"),
        ("ingest:w1", "valid"),
        ("broker:localhost", "valid"),
        ("east/rsu-1", "valid"),
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["pki", "list"], "no fleet CA in"),
        (["pki", "revoke"], "either COMMON_NAME or --serial"),
        (["pki", "issue", "unit", "--site", "a/b", "--id", "x"], "site 'a/b'"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    error: str,
) -> None:
    monkeypatch.setenv("GATEWAY_PKI_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("GATEWAY_PKI_PASSPHRASE", "whatever-long")
    code, text = run_cli(args, capsys)
    assert code == 2
    assert error in text


@pytest.mark.parametrize(
    ("who", "site", "gateway", "expected"),
    [
        (identity.unit("east", "rsu-1"), "east", "rsu-1", None),
        (
            identity.unit("east", "rsu-1"),
            "east",
            "rsu-2",
            "names unit east/rsu-1, the config says east/rsu-2",
        ),
        (identity.unit("east", "rsu-1"), "west", "rsu-1", "only under east/rsu-1/"),
        (identity.operator("alice", "admin"), "east", "rsu-1", None),  # not a unit certificate
    ],
)
def test_certificate_mismatch_is_named(
    ca: FleetCA,
    tmp_path: Path,
    who: identity.Identity,
    site: str,
    gateway: str,
    expected: str | None,
) -> None:
    from gateway.security.pki import certificate_mismatch

    cert = tmp_path / "unit.crt"
    cert.write_bytes(ca.issue_with_key(who, PASSPHRASE).cert_pem)
    problem = certificate_mismatch(cert, site, gateway)
    assert problem is None if expected is None else expected in (problem or "")
    assert certificate_mismatch(tmp_path / "missing.crt", site, gateway) is None
