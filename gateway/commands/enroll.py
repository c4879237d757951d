"""``gateway provision`` (operator machine) and ``gateway enroll`` (on the unit)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from gateway.commands.pki import passphrase_option, pki_dir_option, read_passphrase, unit_option
from gateway.errors import SecurityError

SERVICE = "roadside-gateway"


def register(app: click.Group) -> None:
    """Add ``provision`` and ``enroll`` to the root app."""
    app.add_command(provision_command)
    app.add_command(enroll_command)


def _broker(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 8883
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SecurityError(f"--broker {value!r}: the port must be 1-65535")
    return host, int(port)


@click.command("provision")
@pki_dir_option
@passphrase_option
@unit_option
@click.option(
    "--config",
    "template",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A config template (cameras, sensors, ...); id, site and broker are filled in.",
)
@click.option("--broker", required=True, help="Broker HOST[:PORT] (port 8883 by default).")
@click.option(
    "--csr",
    "csr_flow",
    is_flag=True,
    help="No key in the bundle: the unit makes its key and a CSR at enrollment.",
)
@click.option("--operator", "operators", multiple=True, help="Trust only these operators.")
@click.option("--days", type=click.IntRange(1, 36500), default=None, help="Certificate validity.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle file (default <site>.<id>.bundle.json).",
)
def provision_command(
    *,
    pki_dir: Path,
    passphrase_file: Path | None,
    site: str,
    gateway_id: str,
    template: Path | None,
    broker: str,
    csr_flow: bool,
    operators: tuple[str, ...],
    days: int | None,
    out: Path | None,
) -> None:
    """Write the enrollment bundle of one unit: copy it to the crew's USB stick.

    The bundle holds the unit's config, the fleet CA, the trusted operators and (unless
    --csr) the unit's key and certificate: it is written 0600; treat it as a secret.
    """
    from gateway.config.settings import read_toml
    from gateway.security.bundle import provision
    from gateway.security.files import PRIVATE, write_secure
    from gateway.security.pki import FleetCA

    host, port = _broker(broker)
    ca = FleetCA(pki_dir)
    bundle = provision(
        ca,
        site=site,
        gateway=gateway_id,
        broker_host=host,
        broker_port=port,
        template=read_toml(template) if template else None,
        passphrase=None if csr_flow else read_passphrase(passphrase_file),
        operators=operators,
        days=days,
    )
    path = out or Path(f"{site}.{gateway_id}.bundle.json")
    write_secure(path, bundle.model_dump_json(indent=1).encode(), PRIVATE)
    what = "CSR flow: the unit makes its key" if csr_flow else "with the unit's key"
    click.echo(
        f"wrote {path} for {site}/{gateway_id} ({what}); on the unit: gateway enroll {path.name}"
    )


@click.command("enroll")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSR flow, second step: the certificate the operator signed.",
)
@click.option(
    "--etc-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/roadside-gateway"),
    show_default=True,
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/roadside-gateway"),
    show_default=True,
)
@click.option("--user", default=SERVICE, show_default=True, help="The service user.")
@click.option(
    "--doctor/--no-doctor",
    default=True,
    show_default=True,
    help="Run gateway doctor's checks on the installed config (broker, clock, disk, ...).",
)
@click.option(
    "--start/--no-start",
    default=None,
    help="(Re)start the service afterwards (default: when systemd runs and the unit file exists).",
)
def enroll_command(
    *,
    bundle_path: Path,
    cert_file: Path | None,
    etc_dir: Path,
    data_dir: Path,
    user: str,
    doctor: bool,
    start: bool | None,
) -> int:
    """Install an enrollment BUNDLE on this unit (run as root); safe to run again.

    Everything is checked first (certificates against the CA, key against certificate,
    the config), then written: keys 0600 owned by the service user. Then gateway
    doctor's checks run on the installed config, and the service is (re)started even
    when one fails (offline at the pole: the gateway keeps trying the broker and stores
    its events meanwhile); the exit code is 1 then. With a --csr bundle the first run
    writes a CSR beside the bundle and exits 3; run it again with --cert once the
    operator has signed it.
    """
    from gateway.config.settings import load_settings
    from gateway.security.bundle import InstallPaths, enroll, read_bundle

    bundle = read_bundle(bundle_path)
    paths = InstallPaths(etc=etc_dir, data=data_dir)
    csr_out = bundle_path.with_name(f"{bundle.site}.{bundle.gateway}.csr")
    result = enroll(bundle, paths, user=user, cert_file=cert_file, csr_out=csr_out)
    for path in result.written:
        click.echo(f"installed {path}")
    if result.unchanged:
        click.echo(f"unchanged: {len(result.unchanged)} file(s)")
    if not result.complete:
        click.echo(
            f"key made on this unit; certificate request written to {result.csr}.\n"
            f"Operator: gateway pki issue unit --site {bundle.site} --id {bundle.gateway} "
            f"--csr {result.csr.name if result.csr else ''}\n"
            f"Then here: gateway enroll {bundle_path} --cert <the signed .crt>"
        )
        return 3
    settings = load_settings(paths.config)  # the installed file, as the service reads it
    click.echo(
        f"enrolled {result.unit}: broker {settings.mqtt.host}:{settings.mqtt.port}, "
        f"{len(settings.cameras)} camera(s), {len(settings.sensors)} sensor(s)"
    )
    healthy = _doctor(paths.config) if doctor else True
    systemd = Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
    if start is None:
        start = systemd and Path(f"/lib/systemd/system/{SERVICE}.service").exists()
    if start:
        verb = "restart" if result.written else "start"
        for args in (["enable", SERVICE], [verb, SERVICE]):
            done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SecurityError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")
        click.echo(f"service {SERVICE}: {verb}ed")
    return 0 if healthy else 1


def _doctor(config: Path) -> bool:
    """Run the doctor's unit checks on the installed config; print one line each."""
    from gateway.doctor import CheckResult, run_doctor

    def show(result: CheckResult) -> None:
        line = f"doctor {result.status:<4} {result.name}: {result.detail}"
        click.echo(line + (f" -> fix: {result.fix}" if result.fix else ""))

    report = run_doctor(config, roles=frozenset({"run"}), on_result=show)
    failed = report.count("fail")
    if failed:
        click.echo(f"doctor: {failed} check(s) failed; the unit is enrolled, fix them and restart")
    return report.ok
