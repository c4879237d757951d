"""The enrollment bundle: one file a crew carries to the pole, and installing it on the unit.

``gateway provision`` (operator machine) writes ``<site>.<gateway>.bundle.json``::

    {"format": "roadside-gateway-bundle", "version": 1, "site": ..., "gateway": ...,
     "created": ..., "config": "<TOML>", "ca": "<PEM>", "operators": "<PEM>",
     "certificate": "<PEM>" | null, "key": "<PEM>" | null}

With ``certificate`` and ``key`` the CA made the unit's key (the simple path: the
stick holds a private key, treat it like one). Without them the unit makes its key
at enrollment and writes a CSR beside the bundle; the operator signs it
(``gateway pki issue unit --csr``) and ``gateway enroll BUNDLE --cert FILE`` finishes.

:func:`enroll` installs a bundle: the config (with the installed paths), the CA,
the unit's certificate and key (0600, owned by the service user) and the trusted
operators; it checks everything before writing anything and is idempotent.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config.patch import merge_patch, to_toml
from gateway.config.settings import validate_settings
from gateway.errors import SecurityError
from gateway.security import identity
from gateway.security.files import PRIVATE, PUBLIC, write_secure
from gateway.security.pki import FleetCA, identity_of, key_pem, load_certificate, make_csr, new_key
from gateway.security.signing import load_trusted_operators

FORMAT = "roadside-gateway-bundle"


class Bundle(BaseModel):
    """The bundle file's contents."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["roadside-gateway-bundle"]
    version: Literal[1]
    site: str
    gateway: str
    created: dt.datetime
    config: str
    ca: str
    operators: str
    certificate: str | None = None
    key: str | None = None

    @property
    def unit(self) -> identity.Identity:
        """The unit's identity."""
        return identity.unit(self.site, self.gateway)


def read_bundle(path: Path) -> Bundle:
    """Read and parse a bundle file; :class:`SecurityError` with the reason otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityError(f"cannot read bundle {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SecurityError(f"{path} is not an enrollment bundle (not UTF-8 text)") from exc
    try:
        return Bundle.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SecurityError(
            f"{path} is not a valid enrollment bundle: {where}: {first['msg']}"
        ) from exc


def provision(
    ca: FleetCA,
    *,
    site: str,
    gateway: str,
    broker_host: str,
    broker_port: int,
    template: dict[str, Any] | None = None,
    passphrase: bytes | None = None,
    operators: tuple[str, ...] = (),
    days: int | None = None,
) -> Bundle:
    """Make the bundle of unit ``gateway`` at ``site`` (a key and certificate when ``passphrase``).

    ``operators`` names the trusted operators (``alice``); empty: every valid operator.
    """
    unit = identity.unit(site, gateway)
    data = merge_patch(
        template or {},
        {
            "gateway": {"id": gateway, "site": site},
            "mqtt": {"host": broker_host, "port": broker_port},
        },
    )
    validate_settings(data, "bundle config")  # a bad template fails here, not at the pole
    pem = operators_pem(ca, operators)
    cert = key = None
    if passphrase is not None:
        issued = ca.issue_with_key(unit, passphrase, days)
        cert, key = issued.cert_pem.decode(), issued.key_pem.decode()
    return Bundle(
        format=FORMAT,
        version=1,
        site=site,
        gateway=gateway,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0),
        config=to_toml(data),
        ca=ca.cert_pem.decode(),
        operators=pem,
        certificate=cert,
        key=key,
    )


def operators_pem(ca: FleetCA, operators: tuple[str, ...] = ()) -> str:
    """The PEM of the fleet's valid operators (only ``operators`` when given: ``alice``)."""
    live = [r for r, status in ca.statuses() if r.kind == "operator" and status == "valid"]
    if operators:
        wanted = {identity.operator(n, "admin").common_name for n in operators}
        missing = wanted - {r.common_name for r in live}
        if missing:
            raise SecurityError(f"no valid operator certificate for {', '.join(sorted(missing))}")
        live = [r for r in live if r.common_name in wanted]
    if not live:
        raise SecurityError(
            "the fleet has no valid operator: issue one first (gateway pki issue operator)"
        )
    return b"".join(
        ca.certificate_of(r).public_bytes(serialization.Encoding.PEM) for r in live
    ).decode()


@dataclass(frozen=True, slots=True)
class InstallPaths:
    """Where a bundle is installed on the unit."""

    etc: Path = Path("/etc/roadside-gateway")
    data: Path = Path("/var/lib/roadside-gateway")

    @property
    def config(self) -> Path:
        """The gateway's config file."""
        return self.etc / "gateway.toml"

    @property
    def pki(self) -> Path:
        """Certificates and the unit's key."""
        return self.etc / "pki"

    @property
    def ca(self) -> Path:
        """The fleet CA."""
        return self.pki / "ca.crt"

    @property
    def cert(self) -> Path:
        """The unit's certificate."""
        return self.pki / "unit.crt"

    @property
    def key(self) -> Path:
        """The unit's private key (0600, the service user's)."""
        return self.pki / "unit.key"

    @property
    def operators(self) -> Path:
        """The trusted operators' certificates."""
        return self.pki / "operators.pem"


@dataclass
class EnrollResult:
    """What :func:`enroll` did."""

    unit: str
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    csr: Path | None = None

    @property
    def complete(self) -> bool:
        """Whether the unit has its certificate (else it waits for the signed CSR)."""
        return self.csr is None


def _owner(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise SecurityError(
            f"user {user!r} does not exist (the Debian package creates roadside-gateway; "
            "or give --user)"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _check_cert(cert_pem: bytes, ca: x509.Certificate, unit: identity.Identity) -> x509.Certificate:
    cert = load_certificate(cert_pem, "the unit certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SecurityError("the unit certificate was not issued by the bundle's CA") from exc
    who = identity_of(cert)
    if who.common_name != unit.common_name:
        raise SecurityError(
            f"the certificate is for {who.common_name!r}, this bundle for {unit.common_name!r}"
        )
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise SecurityError(f"the unit certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return cert


def _load_key(pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, None)
    except (TypeError, ValueError) as exc:
        raise SecurityError(f"{what} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SecurityError(f"{what} is not an EC key")
    return key


def enroll(
    bundle: Bundle,
    paths: InstallPaths,
    *,
    user: str = "roadside-gateway",
    cert_file: Path | None = None,
    csr_out: Path | None = None,
) -> EnrollResult:
    """Install ``bundle``; with the CSR flow, make the key and CSR or install ``cert_file``."""
    uid, gid = _owner(user)
    unit = bundle.unit
    ca = load_certificate(bundle.ca.encode(), "the bundle's CA")
    load_trusted_operators(bundle.operators.encode(), "the bundle's operators")
    for cert in x509.load_pem_x509_certificates(bundle.operators.encode()):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            name = identity_of(cert).common_name
            raise SecurityError(f"operator {name} was not issued by the bundle's CA") from exc
    try:
        template = tomllib.loads(bundle.config)
    except tomllib.TOMLDecodeError as exc:
        raise SecurityError(f"the bundle's config is not TOML: {exc}") from exc
    data = merge_patch(
        template,
        {
            "gateway": {"data_dir": str(paths.data)},
            "mqtt": {
                "tls": {
                    "ca_file": str(paths.ca),
                    "cert_file": str(paths.cert),
                    "key_file": str(paths.key),
                }
            },
            "security": {"trusted_operators": str(paths.operators), "unsigned_commands": False},
        },
    )
    settings = validate_settings(data, "bundle config")
    if (settings.gateway.site, settings.gateway.id) != (bundle.site, bundle.gateway):
        raise SecurityError("the bundle's config names another unit than the bundle")

    # The key and certificate: from the bundle, or made here (CSR flow).
    result = EnrollResult(unit.common_name)
    key_bytes: bytes | None = None
    cert_bytes: bytes | None = None
    if bundle.certificate is not None and bundle.key is not None:
        cert = _check_cert(bundle.certificate.encode(), ca, unit)
        key = _load_key(bundle.key.encode(), "the bundle's key")
        if key.public_key() != cert.public_key():
            raise SecurityError("the bundle's key does not belong to its certificate")
        key_bytes, cert_bytes = bundle.key.encode(), bundle.certificate.encode()
    elif bundle.certificate is not None or bundle.key is not None:
        raise SecurityError("the bundle has a certificate without its key (or a key without one)")
    else:
        # Idempotent: a key made by an earlier run stays (its CSR may be out for signing).
        key = _load_key(paths.key.read_bytes(), str(paths.key)) if paths.key.exists() else new_key()
        key_bytes = key_pem(key)
        if cert_file is not None:
            try:
                cert_bytes = cert_file.read_bytes()
            except OSError as exc:
                raise SecurityError(f"cannot read {cert_file}: {exc.strerror}") from exc
            cert = _check_cert(cert_bytes, ca, unit)
            if cert.public_key() != key.public_key():
                raise SecurityError(f"{cert_file} is not the certificate of this unit's key")
        elif paths.cert.exists():
            cert_bytes = paths.cert.read_bytes()
            cert = _check_cert(cert_bytes, ca, unit)
            if cert.public_key() != key.public_key():
                cert_bytes = None  # an old certificate of another key: a CSR is needed
    config_text = to_toml(data).encode()

    # Everything checked: write (only what differs).
    def put(path: Path, content: bytes, mode: int, owner: tuple[int, int]) -> None:
        same = path.exists() and path.read_bytes() == content
        if same:
            st = path.stat()
            same = (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, *owner)
        if same:
            result.unchanged.append(path)
        else:
            write_secure(path, content, mode, owner)
            result.written.append(path)

    for directory, mode, owner in (
        # Sticky and group-writable: the service replaces its own gateway.toml
        # (set_config) but cannot rename or remove root's pki/.
        (paths.etc, 0o1775, (0, gid)),
        (paths.pki, 0o750, (0, gid)),
        (paths.data, 0o750, (uid, gid)),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, *owner)
        directory.chmod(mode)
    put(paths.ca, bundle.ca.encode(), PUBLIC, (0, 0))
    put(paths.operators, bundle.operators.encode(), PUBLIC, (0, 0))
    put(paths.key, key_bytes, PRIVATE, (uid, gid))
    if cert_bytes is not None:
        put(paths.cert, cert_bytes, PUBLIC, (0, 0))
    else:
        csr_path = csr_out or paths.pki / "unit.csr"
        put(csr_path, make_csr(unit, key), PUBLIC, (0, 0))
        result.csr = csr_path
    # The service may rewrite its config (set_config), never its CA or key files (pki/ is
    # root's); the operators it obeys change only by an admin's signed set_trust.
    put(paths.config, config_text, 0o640, (uid, gid))
    return result
