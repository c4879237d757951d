"""``gateway doctor``: every check against the real thing, through the CLI.

Model stores with and without the model, the road simulator as a working and a
refusing camera, a pty sensor and a missing port, Mosquitto plain, with a password
file and with the fleet's TLS (good, missing and expired unit certificates, a wrong
CA), VictoriaMetrics for an ingest config, an unwritable data folder, and the clock
with each source of synchronisation state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.patch import to_toml
from gateway.config.settings import GatewaySettings
from gateway.doctor import Context, run_doctor
from gateway.doctor.clock import SyncState, check_clock, interpret_adjtimex
from gateway.localservers import Mosquitto, VictoriaMetrics, free_port
from simulators.camera.mjpeg import MjpegServer
from simulators.sensors.stream import StreamSimulator
from tests.support.camera import mjpeg_camera, with_auth
from tests.support.security import Fleet, SecureBroker

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "modelzoo" / "demo" / "roadsim.onnx"
DEMO_LABELS = ROOT / "modelzoo" / "demo" / "roadsim.labels.txt"


def write_config(tmp_path: Path, **sections: Any) -> Path:
    """A config with a data folder under ``tmp_path`` and the given sections."""
    data: dict[str, Any] = {
        "gateway": {"id": "rsu-doc", "site": "lab", "data_dir": str(tmp_path / "data")}
    }
    data.update(sections)
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    return path


def doctor(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "-c", str(config), "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1])


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def camera(cam_id: str, source: dict[str, Any], model: str = str(DEMO_MODEL)) -> dict[str, Any]:
    labels = str(DEMO_LABELS) if model == str(DEMO_MODEL) else None
    detector = {"model": model, "model_type": "yolo", "labels": labels}
    return {"id": cam_id, "source": source, "detector": {k: v for k, v in detector.items() if v}}


@pytest.fixture
def pty_sensor() -> Iterator[str]:
    sim = StreamSimulator("pms5003", rate_hz=5.0, seed=1)
    path = sim.start()
    yield path
    sim.stop()


@pytest.fixture(scope="module")
def mjpeg() -> Iterator[MjpegServer]:
    with mjpeg_camera(("viewer", "s3cret")) as server:
        yield server


def test_a_unit_that_would_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mosquitto: Mosquitto, pty_sensor: str
) -> None:
    config = write_config(
        tmp_path,
        cameras=[camera("sim", {"type": "simulator", "seed": 3})],
        sensors=[{"id": "pm-1", "protocol": "pms5003", "port": pty_sensor}],
        mqtt={"host": "127.0.0.1", "port": mosquitto.port},
    )
    code, report = doctor(capsys, config)
    checks = by_name(report)
    assert code == 0, report
    assert report["ok"] is True and report["roles"] == ["run"]
    for name in (
        "config",
        "providers",
        f"model {DEMO_MODEL}",
        "camera sim",
        "sensor pm-1",
        "broker tcp",
        "broker mqtt",
        "disk outbox",
    ):
        assert checks[name]["status"] == "ok", checks[name]
    assert "640x360" in checks["camera sim"]["detail"]
    assert "pms5003 reading pm1_0=" in checks["sensor pm-1"]["detail"]
    assert "CONNACK accepted, MQTT 5 without credentials" in checks["broker mqtt"]["detail"]
    assert checks["clock"]["status"] in ("ok", "warn")  # the machine's own state


def test_text_output_is_one_line_per_check_with_the_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, mqtt={"host": "127.0.0.1", "port": free_port()})
    code = main(["doctor", "-c", str(config), "--only", "broker", "--only", "disk"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert lines[0].startswith("ok    config ")
    assert lines[1].startswith("fail  broker tcp ")
    assert "connection refused: nothing listens on 127.0.0.1" in lines[1]
    assert "-> fix: is the broker running?" in lines[1]
    assert lines[2].startswith("ok    disk outbox ")
    assert lines[-1] == "1 failed, 0 warning(s), 2 ok: gateway run would not work"


@pytest.mark.parametrize(
    ("providers", "status", "words"),
    [
        (["cpu"], "ok", "configured: cpu"),
        (["cuda"], "fail", "missing cuda (used by sim)"),
        (["tensorrt", "cuda"], "fail", "missing tensorrt (used by sim); cuda (used by sim)"),
    ],
)
def test_execution_providers_offered_and_configured(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    providers: list[str],
    status: str,
    words: str,
) -> None:
    cam = camera("sim", {"type": "simulator", "seed": 3})
    cam["detector"]["providers"] = providers
    config = write_config(tmp_path, cameras=[cam])
    code, report = doctor(capsys, config, "--only", "providers")
    check = by_name(report)["providers"]
    assert check["status"] == status, check
    assert "offers: " in check["detail"] and "cpu" in check["detail"].split("offers: ")[1]
    assert words in check["detail"], check
    assert (code == 0) == (status == "ok")
    if status == "fail":
        assert "deploy/debian.md" in check["fix"]


@pytest.mark.parametrize(
    ("stored", "model", "fix"),
    [
        (True, "roadsim", None),
        (False, "yolox_nano", "gateway models pull yolox_nano --model-dir {store}"),
        (
            False,
            "my_model",
            "gateway models import /path/to/model.onnx --name my_model --model-dir {store}",
        ),
        (False, "/nowhere/model.onnx", "copy the model to /nowhere/model.onnx"),
    ],
)
def test_models_in_and_out_of_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stored: bool, model: str, fix: str | None
) -> None:
    store = tmp_path / "store"
    if stored:
        assert (
            main(
                [
                    "models",
                    "--model-dir",
                    str(store),
                    "import",
                    str(DEMO_MODEL),
                    "--name",
                    "roadsim",
                    "--type",
                    "yolo",
                    "--labels",
                    str(DEMO_LABELS),
                ]
            )
            == 0
        )
        capsys.readouterr()
    config = write_config(tmp_path, cameras=[camera("c1", {"type": "simulator"}, model=model)])
    code, report = doctor(capsys, config, "--only", "models", "--model-dir", str(store))
    check = by_name(report)[f"model {model}"]
    assert "used by c1" in check["detail"]
    if fix is None:
        assert (code, check["status"]) == (0, "ok"), check
        assert "6 classes" in check["detail"]
    else:
        assert (code, check["status"]) == (1, "fail")
        assert fix.format(store=store) in check["fix"]


@pytest.mark.parametrize(
    ("auth", "path", "status", "words"),
    [
        (("viewer", "s3cret"), "/video", "ok", "640x360"),
        (None, "/video", "fail", "HTTP 401: the camera wants a user name and password"),
        (("viewer", "s3cret"), "/nope", "fail", "HTTP 404"),
    ],
)
def test_cameras_that_work_and_that_fail(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mjpeg: MjpegServer,
    auth: tuple[str, str] | None,
    path: str,
    status: str,
    words: str,
) -> None:
    url = with_auth(f"http://127.0.0.1:{mjpeg.port}{path}", auth)
    config = write_config(
        tmp_path,
        cameras=[
            camera("cam", {"type": "url", "url": url}),
            camera("off", {"type": "url", "url": f"rtsp://127.0.0.1:{free_port()}/x"}),
        ],
    )
    code, report = doctor(capsys, config, "--only", "cameras", "--timeout", "5")
    checks = by_name(report)
    assert checks["camera cam"]["status"] == status, checks["camera cam"]
    assert words in checks["camera cam"]["detail"]
    refused = checks["camera off"]
    assert refused["status"] == "fail" and "connection refused" in refused["detail"]
    assert "554" in refused["fix"]
    assert code == 1


def test_serial_ports(capsys: pytest.CaptureFixture[str], tmp_path: Path, pty_sensor: str) -> None:
    silent_master, silent_slave = os.openpty()  # a port where nothing is connected
    garbage = StreamSimulator("pms5003", rate_hz=20.0, seed=2)
    garbage_path = garbage.start()
    try:
        config = write_config(
            tmp_path,
            sensors=[
                {"id": "ok", "protocol": "pms5003", "port": pty_sensor},
                {"id": "gone", "protocol": "pms5003", "port": "/dev/ttyUSB97"},
                {"id": "quiet", "protocol": "pms5003", "port": os.ttyname(silent_slave)},
                {"id": "wrong", "protocol": "sds011", "port": garbage_path},  # PMS frames
            ],
        )
        code, report = doctor(capsys, config, "--only", "serial", "--timeout", "1.5")
    finally:
        garbage.stop()
        os.close(silent_master)
        os.close(silent_slave)
    checks = by_name(report)
    assert code == 1
    assert checks["sensor ok"]["status"] == "ok"
    assert checks["sensor gone"]["status"] == "fail"
    assert "/dev/ttyUSB97 does not exist" in checks["sensor gone"]["detail"]
    assert "/dev/serial/by-id" in checks["sensor gone"]["fix"]
    assert checks["sensor quiet"]["status"] == "warn"
    assert "no data in" in checks["sensor quiet"]["detail"]
    assert checks["sensor wrong"]["status"] == "fail"
    assert "no valid sds011 frame" in checks["sensor wrong"]["detail"]


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    pw_file = tmp_path / "passwd"
    subprocess.run(
        [passwd, "-b", "-c", str(pw_file), "unit", "right"], check=True, capture_output=True
    )
    pw_file.chmod(0o600)
    server = Mosquitto(
        tmp_path / "mosq",
        extra_config=f"password_file {pw_file}\nallow_anonymous false\n",
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("username", "password", "status", "words"),
    [
        ("unit", "right", "ok", "CONNACK accepted, MQTT 5 as unit"),
        # Mosquitto 2 answers "Not authorized", not "Bad user name or password".
        ("unit", "wrong", "fail", "CONNACK refused: Not authorized (code 135)"),
        (None, None, "fail", "CONNACK refused: Not authorized (code 135)"),
    ],
)
def test_broker_credentials(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    password_broker: Mosquitto,
    username: str | None,
    password: str | None,
    status: str,
    words: str,
) -> None:
    mqtt: dict[str, Any] = {"host": "127.0.0.1", "port": password_broker.port}
    if username:
        mqtt |= {"username": username, "password": password}
    config = write_config(tmp_path, mqtt=mqtt)
    code, report = doctor(capsys, config, "--only", "broker")
    check = by_name(report)["broker mqtt"]
    assert check["status"] == status, check
    assert words in check["detail"]
    assert code == (0 if status == "ok" else 1)
    if status == "fail" and username:
        assert "mqtt.password" in check["fix"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    f.unit("lab", "rsu-doc")
    f.expired_unit("lab", "rsu-old")
    return f


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Iterator[SecureBroker]:
    server = SecureBroker(tmp_path_factory.mktemp("broker"), fleet)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("identity", "ca", "name", "words"),
    [
        ("lab.rsu-doc", "fleet", "broker mqtt", "CONNACK accepted"),
        (None, "fleet", "broker tls", "wants a client certificate and none is configured"),
        ("lab.rsu-doc", "system", "broker tls", "the broker's certificate is not trusted"),
        ("lab.rsu-old", "fleet", "unit certificate", "expired on"),
    ],
)
def test_broker_tls(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fleet: Fleet,
    tls_broker: SecureBroker,
    identity: str | None,
    ca: str,
    name: str,
    words: str,
) -> None:
    tls: dict[str, Any] = (
        fleet.tls(fleet.ids / identity) if identity else {"ca_file": str(fleet.ca.cert_path)}
    )
    if ca == "system":
        tls.pop("ca_file")
    config = write_config(tmp_path, mqtt={"host": "127.0.0.1", "port": tls_broker.port, "tls": tls})
    code, report = doctor(capsys, config, "--only", "broker")
    checks = by_name(report)
    assert words in checks[name]["detail"], report
    if name == "broker mqtt":
        assert code == 0
        assert checks["broker tls"]["status"] == "ok"
        assert "handshake with this unit's certificate" in checks["broker tls"]["detail"]
        assert checks["unit certificate"]["status"] == "ok"
    else:
        assert code == 1 and checks[name]["status"] == "fail"
        assert "broker mqtt" not in checks  # stops at the first failure


def test_an_ingest_config_checks_the_database(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mosquitto: Mosquitto,
    victoria: VictoriaMetrics,
) -> None:
    mqtt = {"host": "127.0.0.1", "port": mosquitto.port}
    good = write_config(tmp_path, mqtt=mqtt, ingest={"influx": {"url": victoria.url}})
    code, report = doctor(capsys, good)
    checks = by_name(report)
    assert code == 0, report
    assert report["roles"] == ["ingest"]
    assert checks["database health"]["status"] == "ok"
    assert checks["database write"]["status"] == "ok"
    assert "camera" not in " ".join(checks)  # nothing of a roadside unit
    down = write_config(
        tmp_path, mqtt=mqtt, ingest={"influx": {"url": f"http://127.0.0.1:{free_port()}"}}
    )
    code, report = doctor(capsys, down, "--only", "database")
    assert code == 1
    assert "connection refused" in by_name(report)["database"]["detail"]


def test_disk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    huge = write_config(tmp_path, outbox={"max_bytes": 1 << 50})  # a cap larger than any disk
    code, report = doctor(capsys, huge, "--only", "disk")
    check = by_name(report)["disk outbox"]
    assert (code, check["status"]) == (0, "warn")
    assert "less than outbox.max_bytes" in check["detail"]
    nowhere = tmp_path / "nowhere.toml"
    nowhere.write_text(to_toml({"gateway": {"data_dir": "/proc/roadside-gateway"}}))
    code, report = doctor(capsys, nowhere, "--only", "disk")
    check = by_name(report)["disk outbox"]
    assert (code, check["status"]) == (1, "fail")
    assert "not writable" in check["detail"]


@pytest.mark.parametrize(
    ("sources", "now", "status", "words"),
    [
        ([SyncState("timedatectl", True)], 1.8e9, "ok", "NTP synchronised (timedatectl)"),
        (
            [None, SyncState("adjtimex", False, "x")],
            1.8e9,
            "warn",
            "NOT synchronised (adjtimex, x)",
        ),
        ([None, None], 1.8e9, "warn", "synchronisation unknown"),
        ([SyncState("timedatectl", True)], 86_400.0, "fail", "1970-01-02"),
    ],
)
def test_clock(sources: list[SyncState | None], now: float, status: str, words: str) -> None:
    ctx = Context(GatewaySettings(), frozenset({"run"}))
    (result,) = check_clock(ctx, [lambda s=s: s for s in sources], now=lambda: now)
    assert result.status == status
    assert words in result.detail


@pytest.mark.parametrize(
    ("state", "status", "synced"),
    [(0, 0x2001, True), (5, 0x0040, False), (0, 0x0040, False), (1, 0, True)],
)
def test_adjtimex_interpretation(state: int, status: int, synced: bool) -> None:
    assert interpret_adjtimex(state, status, 16_000).synchronized is synced


@pytest.mark.parametrize(
    ("text", "words", "exit_code"),
    [
        ("[mqtt]\nport = 99999\n", "mqtt.port: Input should be less than or equal to 65535", 1),
        ("[mqtt\n", "not valid TOML", 2),  # not a config at all: the argument is wrong
    ],
)
def test_a_bad_config_fails_the_config_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, words: str, exit_code: int
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, report = doctor(capsys, path)
    assert code == exit_code
    assert [c["name"] for c in report["checks"]] == ["config"]
    assert words in report["checks"][0]["detail"]
    code, report = doctor(capsys, tmp_path / "missing.toml")
    assert code == 2 and "config file not found" in report["checks"][0]["detail"]


def test_the_library_streams_results_in_order(tmp_path: Path) -> None:
    config = write_config(tmp_path, mqtt={"port": free_port()})
    seen: list[str] = []
    report = run_doctor(config, only=["broker", "clock"], on_result=lambda r: seen.append(r.name))
    assert seen == [r.name for r in report.results] == ["config", "broker tcp", "clock"]
    assert not report.ok and report.verdict == "gateway run would not work"


def test_unknown_check_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["doctor", "-c", str(write_config(tmp_path)), "--only", "nope"]) == 2
    assert "unknown check nope" in capsys.readouterr().err


def test_tls_to_a_plain_mqtt_port_and_mqtt_to_a_web_port(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mosquitto: Mosquitto, mjpeg: MjpegServer
) -> None:
    tls = {"host": "127.0.0.1", "port": mosquitto.port, "tls": {"ca_file": str(DEMO_LABELS)}}
    code, report = doctor(capsys, write_config(tmp_path, mqtt=tls), "--only", "broker")
    check = by_name(report)["broker tls"]
    assert code == 1
    assert "cannot load the TLS files" in check["detail"]  # a labels file is no CA
    tls["tls"] = {"insecure": True}
    code, report = doctor(capsys, write_config(tmp_path, mqtt=tls), "--only", "broker")
    assert (
        "closed the connection during the TLS handshake" in by_name(report)["broker tls"]["detail"]
    )
    web = {"host": "127.0.0.1", "port": mjpeg.port, "protocol": "3.1.1"}
    code, report = doctor(
        capsys, write_config(tmp_path, mqtt=web), "--only", "broker", "--timeout", "2"
    )
    check = by_name(report)["broker mqtt"]
    assert code == 1
    assert "CONNACK" in check["detail"] and "MQTT broker's port" in check["fix"]
