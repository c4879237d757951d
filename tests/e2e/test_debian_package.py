"""The Debian package, installed into this machine with apt, enrolled, run, and purged.

CI builds the package before the suite (``.ci/run`` calls ``deploy/build-deb.sh``);
when ``dist/`` has none, or one older than the sources, the test builds it (about a
minute). It needs root and apt,
and refuses to touch a machine where the package is already installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gateway import __version__
from gateway.security.bundle import provision
from tests.support.security import PASSPHRASE, Fleet, SecureBroker, TlsClient

ROOT = Path(__file__).resolve().parents[2]
PKG = "roadside-gateway"
OWNED = [
    Path("/opt/roadside-gateway"),
    Path("/usr/bin/gateway"),
    Path("/lib/systemd/system/roadside-gateway.service"),
    Path("/etc/roadside-gateway"),
    Path("/var/lib/roadside-gateway"),
    Path("/usr/share/doc/roadside-gateway"),
]


def _newest_source() -> float:
    files = [ROOT / "pyproject.toml", *ROOT.glob("deploy/*"), *ROOT.glob("gateway/**/*.py")]
    return max(f.stat().st_mtime for f in files)


def package_file() -> Path:
    found = sorted((ROOT / "dist").glob(f"{PKG}_{__version__}_*.deb"))
    if found and found[-1].stat().st_mtime >= _newest_source():
        return found[-1]  # built from this tree (CI builds it before the suite)
    build = subprocess.run(
        ["bash", str(ROOT / "deploy" / "build-deb.sh"), "--out", str(ROOT / "dist")],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(
            f"deploy/build-deb.sh failed (CI builds the package before the tests):\n"
            f"{build.stdout[-2000:]}{build.stderr[-2000:]}",
            pytrace=False,
        )
    return sorted((ROOT / "dist").glob(f"{PKG}_{__version__}_*.deb"))[-1]


def installed() -> bool:
    query = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", PKG], capture_output=True, text=True, check=False
    )
    return "install ok installed" in query.stdout


def sh(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(list(args), capture_output=True, text=True, check=False, env=env, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.slow
def test_package_installs_enrolls_publishes_and_purges_cleanly(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("the package test needs root and apt-get (as on CI)", pytrace=False)
    if installed() and os.environ.get("CI") == "true":
        sh("apt-get", "purge", "-y", PKG)  # left by an interrupted run on this CI machine
    if installed():
        pytest.fail(f"{PKG} is already installed here: not touching it", pytrace=False)
    # Paths the package owns that exist without it (another test's default data_dir, a
    # hand install) are moved aside for the test and put back afterwards.
    aside = {p: tmp_path / "aside" / p.name for p in OWNED if p.exists() or p.is_symlink()}
    for path, keep in aside.items():
        keep.parent.mkdir(exist_ok=True)
        shutil.move(path, keep)
    try:
        _install_enroll_run_purge(tmp_path)
    finally:
        for path, keep in aside.items():
            if not (path.exists() or path.is_symlink()):
                shutil.move(keep, path)


def _install_enroll_run_purge(tmp_path: Path) -> None:
    deb = package_file()
    fleet = Fleet(tmp_path / "fleet")
    fleet.ingest("w1")
    fleet.operator("alice")
    broker = SecureBroker(tmp_path / "broker", fleet)
    broker.start()
    try:
        done = sh("apt-get", "install", "-y", "--no-install-recommends", str(deb))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        version = sh("/usr/bin/gateway", "--version")
        assert version.returncode == 0 and __version__ in version.stdout, version
        example = "/usr/share/doc/roadside-gateway/gateway.example.toml"
        check = sh("/usr/bin/gateway", "config", "check", example)
        assert check.returncode == 0, check.stderr
        user = pwd.getpwnam(PKG)
        etc = Path("/etc/roadside-gateway")
        assert stat.S_IMODE(etc.stat().st_mode) == 0o1775 and etc.stat().st_gid == user.pw_gid

        # The second of the two commands on the pole: enroll the bundle from the stick.
        bundle = provision(
            fleet.ca,
            site="east",
            gateway="rsu-deb",
            broker_host="127.0.0.1",
            broker_port=broker.port,
            template={"events": {"health_interval_s": 1}},
            passphrase=PASSPHRASE,
        )
        stick = tmp_path / "stick.bundle.json"
        stick.write_text(bundle.model_dump_json())
        enrolled = sh("/usr/bin/gateway", "enroll", str(stick), "--no-start")
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        assert "doctor ok   broker" in enrolled.stdout  # enroll ran the doctor's checks
        doctor = sh("/usr/bin/gateway", "doctor", "-c", str(etc / "gateway.toml"))
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        key = etc / "pki" / "unit.key"
        assert key.stat().st_uid == user.pw_uid and stat.S_IMODE(key.stat().st_mode) == 0o600

        # As the service runs it: the service user, the installed command, the installed config.
        ingest = TlsClient(broker, fleet.ids / "ingest.w1")
        assert ingest.connect() == "connected"
        ingest.subscribe("$share/ingest/+/+/+/health")
        service = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={PKG}",
                f"--regid={PKG}",
                "--init-groups",
                "/usr/bin/gateway",
                "run",
                "-c",
                str(etc / "gateway.toml"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            published = ingest.wait_received("city/east/rsu-deb/health", timeout=30)
            # The service user may rewrite its own config (sticky /etc/roadside-gateway).
            patch = tmp_path / "patch.json"
            patch.write_text('{"events": {"health_interval_s": 7}}')
            alice = fleet.ids / "operator.alice"
            changed = sh(
                "/usr/bin/gateway", "cmd", "--site", "east", "--unit", "rsu-deb",
                "--host", "127.0.0.1", "--port", str(broker.port), "--ca", str(fleet.ca.cert_path),
                "--cert", f"{alice}.crt", "--key", f"{alice}.key",
                "set_config", "--patch", str(patch),
            )  # fmt: skip
        finally:
            service.terminate()
            output, _ = service.communicate(timeout=30)
            ingest.close()
        assert published, output[-3000:]
        assert changed.returncode == 0, changed.stdout + changed.stderr + output[-2000:]
        assert "health_interval_s = 7" in (etc / "gateway.toml").read_text()
        assert service.returncode == 0, output[-3000:]
    finally:
        broker.stop()
        purge = sh("apt-get", "purge", "-y", PKG)
    assert purge.returncode == 0, purge.stdout[-2000:] + purge.stderr[-2000:]
    assert not installed()
    assert [p for p in OWNED if p.exists() or p.is_symlink()] == []
    pwd.getpwnam(PKG)  # the system user stays, as Debian does for system users
