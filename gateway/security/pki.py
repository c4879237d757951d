"""The fleet CA on the operator's machine: identities, renewal, revocation and the CRL.

A PKI directory holds::

    ca.key          the CA's private key, PKCS#8 encrypted with the passphrase (0600)
    ca.crt          the CA certificate (given to every unit and to the broker)
    crl.pem         the certificate revocation list (the broker's ``crlfile``)
    inventory.json  every certificate issued: identity, serial, validity, revocation
    certs/          a copy of every issued certificate, ``<serial>.pem``

Private keys of identities are never kept here: a unit makes its own key and sends
a CSR, or (the crew's simpler path) :meth:`FleetCA.issue_with_key` returns a fresh
key that the caller writes into the unit's bundle and nowhere else.
Keys are ECDSA P-256: every broker and TLS stack speaks it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import SecurityError
from gateway.security.files import PRIVATE, PUBLIC, write_secure
from gateway.security.identity import Identity, Kind, Role, parse_common_name

CA_DAYS = 3650
CRL_DAYS = 365
DEFAULT_DAYS: dict[Kind, int] = {"unit": 1095, "operator": 365, "ingest": 730, "broker": 730}
MIN_PASSPHRASE = 8

Status = Literal["valid", "expired", "revoked", "superseded"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class CertRecord(BaseModel):
    """One issued certificate in the inventory."""

    model_config = ConfigDict(extra="forbid")

    serial: str
    kind: Kind
    name: str
    common_name: str
    site: str | None = None
    role: Role | None = None
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str
    revoked_at: dt.datetime | None = None
    revoke_reason: str | None = None

    def status(self, newest: bool, now: dt.datetime | None = None) -> Status:
        """Where this certificate stands ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.not_after <= (now or _now()):
            return "expired"
        return "valid" if newest else "superseded"


class _Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    records: list[CertRecord] = []


@dataclass(frozen=True, slots=True)
class Issued:
    """A freshly issued certificate (and its key when the CA made it)."""

    record: CertRecord
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None = None

    @property
    def cert_pem(self) -> bytes:
        """The certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM (goes only into a 0600 file or a bundle)."""
        if self.key is None:
            raise SecurityError("this certificate was issued for a key the CA never saw")
        return key_pem(self.key)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(identity: Identity, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A certificate signing request for ``identity`` (PEM), made where the key lives."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def identity_of(cert: x509.Certificate) -> Identity:
    """The fleet identity a certificate names (CN, with the role in OU for operators)."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        raise SecurityError("certificate has no single common name")
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ou = str(ous[0].value) if ous else None
    role: Role | None = "admin" if ou == "admin" else "read-only" if ou == "read-only" else None
    return parse_common_name(str(cns[0].value), role)


def load_certificate(data: bytes, what: str = "certificate") -> x509.Certificate:
    """Parse a PEM certificate; :class:`SecurityError` when it is not one."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SecurityError(f"{what} is not a PEM certificate: {exc}") from exc


class FleetCA:
    """The CA in one PKI directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if not self.cert_path.exists():
            raise SecurityError(f"no fleet CA in {directory} (create one with gateway pki init)")
        self.certificate = load_certificate(self.cert_path.read_bytes(), str(self.cert_path))

    # -- layout ----------------------------------------------------------------------

    @property
    def cert_path(self) -> Path:
        """The CA certificate."""
        return self.directory / "ca.crt"

    @property
    def key_path(self) -> Path:
        """The encrypted CA key."""
        return self.directory / "ca.key"

    @property
    def crl_path(self) -> Path:
        """The revocation list."""
        return self.directory / "crl.pem"

    @property
    def inventory_path(self) -> Path:
        """The inventory of issued certificates."""
        return self.directory / "inventory.json"

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    # -- creation --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        passphrase: bytes,
        name: str = "Roadside fleet CA",
        days: int = CA_DAYS,
    ) -> FleetCA:
        """Make a new CA in ``directory`` (which must not hold one) and an empty CRL."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise SecurityError(f"the CA passphrase needs at least {MIN_PASSPHRASE} characters")
        if (directory / "ca.key").exists() or (directory / "ca.crt").exists():
            raise SecurityError(f"{directory} already holds a fleet CA")
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        write_secure(directory / "ca.key", encrypted, PRIVATE)
        write_secure(directory / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), PUBLIC)
        write_secure(directory / "inventory.json", _Inventory().model_dump_json().encode(), PUBLIC)
        ca = cls(directory)
        ca._write_crl(key, [], CRL_DAYS)
        return ca

    # -- the key ---------------------------------------------------------------------

    def _key(self, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), passphrase)
        except FileNotFoundError as exc:
            raise SecurityError(f"the CA key {self.key_path} is missing") from exc
        except (ValueError, TypeError) as exc:
            raise SecurityError("wrong passphrase for the CA key (or the key is damaged)") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SecurityError("the CA key is not an EC key")
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # -- inventory -------------------------------------------------------------------

    def records(self) -> list[CertRecord]:
        """Every certificate issued, oldest first."""
        try:
            text = self.inventory_path.read_text(encoding="utf-8")
            return _Inventory.model_validate_json(text).records
        except FileNotFoundError:
            return []
        except ValidationError as exc:
            raise SecurityError(f"{self.inventory_path} is damaged: {exc}") from exc

    def _save(self, records: list[CertRecord]) -> None:
        data = _Inventory(records=records).model_dump_json(indent=1).encode()
        write_secure(self.inventory_path, data, PUBLIC)

    def newest(self, common_name: str) -> CertRecord | None:
        """The latest certificate issued to ``common_name``."""
        found = [r for r in self.records() if r.common_name == common_name]
        return found[-1] if found else None

    def statuses(self, now: dt.datetime | None = None) -> list[tuple[CertRecord, Status]]:
        """Every record with its status (only an identity's newest one counts as valid)."""
        records = self.records()
        newest = {r.common_name: r.serial for r in records}
        return [(r, r.status(newest[r.common_name] == r.serial, now)) for r in records]

    def certificate_of(self, record: CertRecord) -> x509.Certificate:
        """The stored copy of an issued certificate."""
        path = self.directory / "certs" / f"{record.serial}.pem"
        return load_certificate(path.read_bytes(), str(path))

    # -- issuing ---------------------------------------------------------------------

    def _build(
        self,
        *,
        key: ec.EllipticCurvePrivateKey,
        identity: Identity,
        public_key: ec.EllipticCurvePublicKey,
        not_before: dt.datetime,
        not_after: dt.datetime,
        hosts: tuple[str, ...],
    ) -> x509.Certificate:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, identity.common_name)]
        attrs.append(
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.role or identity.kind)
        )
        usage = ExtendedKeyUsageOID.SERVER_AUTH if identity.kind == "broker" else None
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(min(not_after, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([usage or ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False
            )
        )
        if identity.kind == "broker":
            names: list[x509.GeneralName] = [x509.DNSName(identity.name)]
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(key, hashes.SHA256())

    def issue(
        self,
        identity: Identity,
        public_key: ec.EllipticCurvePublicKey,
        passphrase: bytes,
        days: int | None = None,
        *,
        hosts: tuple[str, ...] = (),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Issued:
        """Sign a certificate for ``identity`` over ``public_key`` and record it.

        ``not_before``/``not_after`` override ``days`` (to make a short-lived or an
        already expired certificate on purpose).
        """
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise SecurityError("only EC (P-256) keys are issued certificates")
        key = self._key(passphrase)
        start = not_before or _now() - dt.timedelta(minutes=5)
        end = not_after or _now() + dt.timedelta(days=days or DEFAULT_DAYS[identity.kind])
        with self._locked():
            cert = self._build(
                key=key,
                identity=identity,
                public_key=public_key,
                not_before=start,
                not_after=end,
                hosts=hosts,
            )
            record = CertRecord(
                serial=format(cert.serial_number, "x"),
                kind=identity.kind,
                name=identity.name,
                common_name=identity.common_name,
                site=identity.site,
                role=identity.role,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                fingerprint=fingerprint(cert),
            )
            write_secure(
                self.directory / "certs" / f"{record.serial}.pem",
                cert.public_bytes(serialization.Encoding.PEM),
                PUBLIC,
            )
            self._save([*self.records(), record])
        return Issued(record, cert)

    def issue_with_key(
        self, identity: Identity, passphrase: bytes, days: int | None = None, **kw: object
    ) -> Issued:
        """Make a key for ``identity`` here and issue its certificate (the operator-side path)."""
        key = new_key()
        issued = self.issue(identity, key.public_key(), passphrase, days, **kw)  # type: ignore[arg-type]
        return Issued(issued.record, issued.certificate, key)

    def sign_csr(
        self,
        csr_pem: bytes,
        passphrase: bytes,
        expected: Identity | None = None,
        days: int | None = None,
    ) -> Issued:
        """Issue a certificate for a CSR made on the unit (its key never leaves the unit).

        The CSR's own signature must verify, its CN must name a fleet identity (and
        ``expected`` when given); only its public key is used.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise SecurityError(f"not a PEM certificate signing request: {exc}") from exc
        if not csr.is_signature_valid:
            raise SecurityError("the CSR's signature does not verify")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise SecurityError("the CSR has no single common name")
        identity = parse_common_name(str(cns[0].value))
        if identity.kind not in ("unit", "ingest"):
            raise SecurityError(f"a CSR may request a unit or ingest identity, not {identity.kind}")
        if expected is not None and identity.common_name != expected.common_name:
            raise SecurityError(
                f"the CSR asks for {identity.common_name!r}, expected {expected.common_name!r}"
            )
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise SecurityError("the CSR's key is not an EC (P-256) key")
        return self.issue(identity, public_key, passphrase, days)

    def renew(self, common_name: str, passphrase: bytes, days: int | None = None) -> Issued:
        """A new certificate for the same identity and key (the key stays where it is).

        The previous certificate stays valid until it expires, so the unit can switch
        over in its own time; revoke it once the new one is installed.
        """
        record = self.newest(common_name)
        if record is None:
            raise SecurityError(f"no certificate was ever issued to {common_name!r}")
        if record.revoked_at is not None:
            raise SecurityError(f"{common_name!r} is revoked: issue a new identity instead")
        old = self.certificate_of(record)
        public_key = old.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise SecurityError("the stored certificate's key is not an EC key")
        identity = identity_of(old)
        hosts: tuple[str, ...] = ()
        if identity.kind == "broker":
            san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            hosts = tuple(str(n.value) for n in san if not isinstance(n, x509.DNSName))
        return self.issue(identity, public_key, passphrase, days, hosts=hosts)

    # -- revocation ------------------------------------------------------------------

    def revoke(
        self,
        passphrase: bytes,
        common_name: str | None = None,
        serial: str | None = None,
        reason: str = "unspecified",
        crl_days: int = CRL_DAYS,
    ) -> list[CertRecord]:
        """Revoke every live certificate of ``common_name`` (or the one ``serial``); new CRL."""
        key = self._key(passphrase)
        with self._locked():
            records = self.records()
            hit = [
                r
                for r in records
                if r.revoked_at is None
                and (r.common_name == common_name if common_name else r.serial == serial)
            ]
            if not hit:
                what = common_name or serial
                raise SecurityError(f"no unrevoked certificate of {what!r} in the inventory")
            now = _now()
            for r in hit:
                r.revoked_at = now
                r.revoke_reason = reason
            self._save(records)
            self._write_crl(key, records, crl_days)
        return hit

    def write_crl(self, passphrase: bytes, days: int = CRL_DAYS) -> x509.CertificateRevocationList:
        """Sign a fresh CRL (run before the current one's next update date)."""
        key = self._key(passphrase)
        with self._locked():
            return self._write_crl(key, self.records(), days)

    def _write_crl(
        self, key: ec.EllipticCurvePrivateKey, records: list[CertRecord], days: int
    ) -> x509.CertificateRevocationList:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=days))
        )
        for r in records:
            if r.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(r.serial, 16))
                    .revocation_date(r.revoked_at)
                    .build()
                )
        crl = builder.sign(key, hashes.SHA256())
        write_secure(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), PUBLIC)
        return crl

    def crl(self) -> x509.CertificateRevocationList:
        """The current CRL."""
        return x509.load_pem_x509_crl(self.crl_path.read_bytes())

    def crl_next_update(self) -> dt.datetime | None:
        """When the current CRL stops being accepted (brokers then refuse every client)."""
        return self.crl().next_update_utc


def read_passphrase_file(path: Path) -> bytes:
    """The first line of a passphrase file (which should be 0600)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read passphrase file {path}: {exc.strerror}") from exc
    line = text.splitlines()[0] if text.strip() else b""
    if not line:
        raise SecurityError(f"passphrase file {path} is empty")
    return line


def dump_records(records: list[tuple[CertRecord, Status]]) -> str:
    """The inventory as JSON lines for scripts."""
    return "\n".join(
        json.dumps({**r.model_dump(mode="json"), "status": s}, separators=(",", ":"))
        for r, s in records
    )


def certificate_mismatch(cert_file: Path, site: str, gateway: str) -> str | None:
    """Why the broker will refuse this unit's publishes, when its certificate names another.

    ``None`` when ``cert_file`` names unit ``site/gateway`` (or is not a fleet certificate
    at all: a broker with other rules).
    """
    try:
        who = identity_of(load_certificate(cert_file.read_bytes(), str(cert_file)))
    except (OSError, SecurityError):
        return None
    if who.kind == "unit" and (who.site, who.gateway) != (site, gateway):
        return (
            f"the client certificate {cert_file} names unit {who.common_name}, the config "
            f"says {site}/{gateway}: the broker lets it publish only under "
            f"{who.common_name}/ (re-enroll, or fix [gateway] id and site)"
        )
    return None
