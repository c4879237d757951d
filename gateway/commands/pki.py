"""``gateway pki``: the fleet CA on the operator's machine.

The CA passphrase comes from ``--passphrase-file``, else ``GATEWAY_PKI_PASSPHRASE``,
else a prompt: never from the command line (it would show in ``ps`` and the shell
history), and it is never printed or logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.commands.common import json_option
from gateway.errors import SecurityError

if TYPE_CHECKING:
    from gateway.security.pki import Issued

PASSPHRASE_ENV = "GATEWAY_PKI_PASSPHRASE"
PKI_ENV = "GATEWAY_PKI_DIR"


def pki_dir_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--pki DIR``."""
    return click.option(
        "--pki",
        "pki_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=PKI_ENV,
        default=Path("pki"),
        show_default=True,
        help=f"The PKI directory (also {PKI_ENV}).",
    )(f)


def passphrase_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--passphrase-file FILE``."""
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Read the CA passphrase from FILE (else {PASSPHRASE_ENV}, else a prompt).",
    )(f)


def unit_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--site SITE --id ID``: the unit a certificate or bundle is for."""
    f = click.option("--id", "gateway_id", required=True, help="The unit's gateway id.")(f)
    return click.option("--site", required=True, help="The unit's site.")(f)


def read_passphrase(passphrase_file: Path | None, confirm: bool = False) -> bytes:
    """The CA passphrase from the file, the environment or a hidden prompt."""
    from gateway.security.pki import read_passphrase_file

    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode()
    value: str = click.prompt(
        "CA passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return value.encode()


def _out_files(out: Path, stem: str, issued: Issued, with_key: bool) -> list[Path]:
    from gateway.security.files import PRIVATE, PUBLIC, write_secure

    cert = out / f"{stem}.crt"
    write_secure(cert, issued.cert_pem, PUBLIC)
    written = [cert]
    if with_key:
        key = out / f"{stem}.key"
        write_secure(key, issued.key_pem, PRIVATE)
        written.append(key)
    return written


@click.group("pki")
def pki_group() -> None:
    """The fleet CA: create it, issue and renew identities, revoke them, broker config."""


def register(app: click.Group) -> None:
    """Add the ``pki`` group to the root app."""
    app.add_command(pki_group)


@pki_group.command("init")
@pki_dir_option
@passphrase_option
@click.option("--name", default="Roadside fleet CA", show_default=True, help="The CA's name.")
@click.option("--days", type=click.IntRange(1, 36500), default=3650, show_default=True)
def init(*, pki_dir: Path, passphrase_file: Path | None, name: str, days: int) -> None:
    """Create the fleet CA (its key encrypted with the passphrase) and an empty CRL."""
    from gateway.security.pki import FleetCA

    ca = FleetCA.create(pki_dir, read_passphrase(passphrase_file, confirm=True), name, days)
    click.echo(f"created fleet CA {name!r} in {pki_dir} (certificate {ca.cert_path})")


@pki_group.group("issue")
def issue_group() -> None:
    """Issue a unit, operator, ingest or broker identity."""


def _days_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--days", type=click.IntRange(1, 36500), default=None, help="Validity (default by kind)."
    )(f)


def _out_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="Where the certificate (and key, 0600) are written.",
    )(f)


@issue_group.command("unit")
@pki_dir_option
@passphrase_option
@unit_option
@click.option(
    "--csr",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Sign this CSR made on the unit (its key never leaves it); else make a key here.",
)
@_days_option
@_out_option
def issue_unit(
    *,
    pki_dir: Path,
    passphrase_file: Path | None,
    site: str,
    gateway_id: str,
    csr: Path | None,
    days: int | None,
    out: Path,
) -> None:
    """Issue the certificate of unit GATEWAY at SITE (CN '<site>/<gateway>')."""
    from gateway.security import identity
    from gateway.security.pki import FleetCA

    who = identity.unit(site, gateway_id)
    ca = FleetCA(pki_dir)
    passphrase = read_passphrase(passphrase_file)
    if csr is not None:
        issued = ca.sign_csr(csr.read_bytes(), passphrase, expected=who, days=days)
    else:
        issued = ca.issue_with_key(who, passphrase, days)
    files = _out_files(out, f"{site}.{gateway_id}", issued, csr is None)
    click.echo(
        f"issued {who.common_name} serial {issued.record.serial}: {', '.join(map(str, files))}"
    )


@issue_group.command("operator")
@pki_dir_option
@passphrase_option
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "read-only"]), required=True)
@_days_option
@_out_option
def issue_operator(
    *,
    pki_dir: Path,
    passphrase_file: Path | None,
    name: str,
    role: str,
    days: int | None,
    out: Path,
) -> None:
    """Issue operator NAME (CN 'operator:NAME'); its key also signs commands."""
    from gateway.security import identity
    from gateway.security.pki import FleetCA

    who = identity.operator(name, "admin" if role == "admin" else "read-only")
    issued = FleetCA(pki_dir).issue_with_key(who, read_passphrase(passphrase_file), days)
    files = _out_files(out, f"operator.{name}", issued, True)
    listing = ", ".join(map(str, files))
    click.echo(f"issued {who.common_name} ({role}) serial {issued.record.serial}: {listing}")


@issue_group.command("ingest")
@pki_dir_option
@passphrase_option
@click.argument("name")
@_days_option
@_out_option
def issue_ingest(
    *, pki_dir: Path, passphrase_file: Path | None, name: str, days: int | None, out: Path
) -> None:
    """Issue ingest worker NAME (CN 'ingest:NAME', also its client id: one per worker)."""
    from gateway.security import identity
    from gateway.security.pki import FleetCA

    who = identity.ingest(name)
    issued = FleetCA(pki_dir).issue_with_key(who, read_passphrase(passphrase_file), days)
    files = _out_files(out, f"ingest.{name}", issued, True)
    click.echo(
        f"issued {who.common_name} serial {issued.record.serial}: {', '.join(map(str, files))}"
    )


@issue_group.command("broker")
@pki_dir_option
@passphrase_option
@click.argument("host")
@click.option("--ip", "ips", multiple=True, help="Also valid for this IP address or name.")
@_days_option
@_out_option
def issue_broker(
    *,
    pki_dir: Path,
    passphrase_file: Path | None,
    host: str,
    ips: tuple[str, ...],
    days: int | None,
    out: Path,
) -> None:
    """Issue the broker's server certificate for HOST (written as broker.crt/broker.key)."""
    from gateway.security import identity
    from gateway.security.pki import FleetCA

    who = identity.broker(host)
    issued = FleetCA(pki_dir).issue_with_key(who, read_passphrase(passphrase_file), days, hosts=ips)
    files = _out_files(out, "broker", issued, True)
    click.echo(
        f"issued {who.common_name} serial {issued.record.serial}: {', '.join(map(str, files))}"
    )


@pki_group.command("renew")
@pki_dir_option
@passphrase_option
@click.argument("common_name")
@_days_option
@_out_option
def renew(
    *, pki_dir: Path, passphrase_file: Path | None, common_name: str, days: int | None, out: Path
) -> None:
    """Issue a new certificate to COMMON_NAME for the same key ('site/gw', 'operator:x')."""
    from gateway.security.pki import FleetCA

    issued = FleetCA(pki_dir).renew(common_name, read_passphrase(passphrase_file), days)
    stem = common_name.replace("/", ".").replace(":", ".")
    files = _out_files(out, stem, issued, False)
    click.echo(
        f"renewed {common_name}: serial {issued.record.serial} until "
        f"{issued.record.not_after:%Y-%m-%d}: {files[0]} (the previous certificate stays "
        "valid until it expires; revoke it with --serial once the new one is installed)"
    )


@pki_group.command("revoke")
@pki_dir_option
@passphrase_option
@click.argument("common_name", required=False)
@click.option("--serial", help="Revoke only this certificate (hex serial from `pki list`).")
@click.option(
    "--reason",
    default="unspecified",
    show_default=True,
    help="Recorded in the inventory (lost, stolen, decommissioned, ...).",
)
def revoke(
    *,
    pki_dir: Path,
    passphrase_file: Path | None,
    common_name: str | None,
    serial: str | None,
    reason: str,
) -> None:
    """Revoke COMMON_NAME's certificates (or one --serial) and write a new CRL.

    Copy crl.pem to the broker and send it SIGHUP: it refuses the certificate at the
    next TLS handshake and drops nobody else.
    """
    from gateway.security.pki import FleetCA

    if (common_name is None) == (serial is None):
        raise SecurityError("give either COMMON_NAME or --serial")
    ca = FleetCA(pki_dir)
    revoked = ca.revoke(read_passphrase(passphrase_file), common_name, serial, reason)
    for r in revoked:
        click.echo(f"revoked {r.common_name} serial {r.serial} ({reason})")
    click.echo(f"new CRL: {ca.crl_path} (copy it to the broker, then SIGHUP it)")


@pki_group.command("crl")
@pki_dir_option
@passphrase_option
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
def crl(pki_dir: Path, passphrase_file: Path | None, days: int) -> None:
    """Sign a fresh CRL. A broker refuses EVERY client once its CRL is past its next update."""
    from gateway.security.pki import FleetCA

    ca = FleetCA(pki_dir)
    new = ca.write_crl(read_passphrase(passphrase_file), days)
    click.echo(f"wrote {ca.crl_path}: valid until {new.next_update_utc:%Y-%m-%d %H:%M}Z")


@pki_group.command("list")
@pki_dir_option
@json_option
def list_command(pki_dir: Path, as_json: bool) -> None:
    """Every certificate issued, with its status; warns when the CRL is about to expire."""
    from gateway.security.pki import FleetCA, dump_records

    ca = FleetCA(pki_dir)
    rows = ca.statuses()
    if as_json:
        if rows:
            click.echo(dump_records(rows))
        return
    click.echo(f"{'identity':32} {'kind':8} {'role':9} {'serial':40} {'until':10} status")
    for r, status in rows:
        click.echo(
            f"{r.common_name:32} {r.kind:8} {r.role or '':9} {r.serial:40} "
            f"{r.not_after:%Y-%m-%d} {status}"
        )
    next_update = ca.crl_next_update()
    if next_update is not None:
        left = next_update - dt.datetime.now(dt.UTC)
        note = "  <- run `gateway pki crl` soon" if left < dt.timedelta(days=30) else ""
        click.echo(f"CRL valid until {next_update:%Y-%m-%d}{note}")


@pki_group.command("operators")
@pki_dir_option
@click.option("--operator", "operators", multiple=True, help="Only these operators (names).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PEM file."
)
def operators_command(*, pki_dir: Path, operators: tuple[str, ...], out: Path) -> None:
    """Write the valid operators' certificates: a unit's trust (gateway cmd NAME set_trust).

    Send it to units with `gateway cmd --site S --unit G set_trust --operators FILE`
    after issuing or revoking an operator; bundles made afterwards carry it too.
    """
    from gateway.security.bundle import operators_pem
    from gateway.security.files import PUBLIC, write_secure
    from gateway.security.pki import FleetCA

    pem = operators_pem(FleetCA(pki_dir), operators)
    write_secure(out, pem.encode(), PUBLIC)
    click.echo(f"wrote {out}: {pem.count('BEGIN CERTIFICATE')} operator(s)")


@pki_group.command("broker-config")
@pki_dir_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for roadside.conf, acl, ca.crt and crl.pem.",
)
@click.option(
    "--install-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where these files will live on the broker (default: --out).",
)
@click.option("--prefix", default="city", show_default=True, help="The gateways' topic prefix.")
@click.option("--port", type=click.IntRange(1, 65535), default=8883, show_default=True)
@click.option("--bind", default=None, help="Listen on this address only.")
@click.option("--dead-letter-topic", default="city/ingest/deadletter", show_default=True)
@click.option("--stats-topic", default="city/ingest/stats", show_default=True)
def broker_config(
    *,
    pki_dir: Path,
    out: Path,
    install_dir: Path | None,
    prefix: str,
    port: int,
    bind: str | None,
    dead_letter_topic: str,
    stats_topic: str,
) -> None:
    """Write the Mosquitto listener (mutual TLS, CRL) and ACL for the fleet's identities.

    Put broker.crt/broker.key (`gateway pki issue broker`) beside them, include
    roadside.conf from mosquitto.conf, and SIGHUP the broker after each change.
    """
    from gateway.security.broker import BrokerLayout, acl_text, mosquitto_conf
    from gateway.security.files import PUBLIC, write_secure
    from gateway.security.pki import FleetCA

    ca = FleetCA(pki_dir)
    where = (install_dir or out).absolute()
    layout = BrokerLayout(
        prefix=prefix,
        port=port,
        bind=bind,
        ca_file=where / "ca.crt",
        cert_file=where / "broker.crt",
        key_file=where / "broker.key",
        crl_file=where / "crl.pem",
        acl_file=where / "acl",
        dead_letter_topic=dead_letter_topic,
        stats_topic=stats_topic,
    )
    acl = acl_text(layout, ca.records())
    write_secure(out / "roadside.conf", mosquitto_conf(layout).encode(), PUBLIC)
    write_secure(out / "acl", acl.encode(), PUBLIC)
    write_secure(out / "ca.crt", ca.cert_pem, PUBLIC)
    write_secure(out / "crl.pem", ca.crl_path.read_bytes(), PUBLIC)
    click.echo(
        json.dumps({"wrote": [str(out / n) for n in ("roadside.conf", "acl", "ca.crt", "crl.pem")]})
    )
