"""Each enabled serial sensor: the port exists, opens, and what arrives decodes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from gateway.config.sensors import SensorConfig
from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult

LISTEN_S = 3.0  # longest wait for a first reading (sensors report about once a second)
MAX_BYTES = 1 << 16


def check_serial(ctx: Context) -> Iterator[CheckResult]:
    """Open every enabled sensor's port and listen (or poll once) for a reading."""
    from gateway.sensors.registry import get_protocol

    for sensor in ctx.settings.sensors:
        name = f"sensor {sensor.id}"
        if not sensor.enabled:
            yield CheckResult("serial", name, "ok", "disabled (not checked)")
            continue
        problem = _device_problem(name, sensor.port)
        if problem is not None:
            yield problem
            continue
        listen = min(ctx.timeout(LISTEN_S), sensor.read_timeout_s)
        if get_protocol(sensor.protocol).kind == "poll":
            yield _poll(name, sensor)
        else:
            yield _listen(name, sensor, listen)


def _device_problem(name: str, port: str) -> CheckResult | None:
    from gateway.sensors.ports import port_problem

    problem = port_problem(port)
    if problem is None:
        return None
    return CheckResult("serial", name, "fail", problem.detail, problem.fix)


def _open_failed(name: str, port: str, exc: BaseException) -> CheckResult:
    from gateway.sensors.ports import open_problem

    problem = open_problem(port, exc)
    return CheckResult("serial", name, "fail", str(problem), problem.fix)


def _listen(name: str, sensor: SensorConfig, listen_s: float) -> CheckResult:
    from gateway.sensors.registry import make_decoder
    from gateway.serialports.reader import open_port

    try:
        port = open_port(sensor.port, sensor.baud, timeout=0.2)
    except Exception as exc:  # pyserial raises SerialException, OSError or ValueError
        return _open_failed(name, sensor.port, exc)
    decoder = make_decoder(sensor.protocol, sensor.id, sensor.options)
    writes = getattr(decoder, "pending_writes", None)
    received, readings, first = 0, 0, None
    deadline = time.monotonic() + listen_s
    try:
        while time.monotonic() < deadline and received < MAX_BYTES and not readings:
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            received += len(data)
            got = decoder.feed(data)
            readings += len(got)
            first = first or (got[0] if got else None)
            out = writes() if callable(writes) else None
            if out:
                port.write(out)
    except Exception as exc:  # the adapter went away while we listened
        return CheckResult(
            "serial",
            name,
            "fail",
            f"{sensor.port} failed while reading: {exc}",
            "check the cable and the adapter",
        )
    finally:
        port.close()
    where = f"{sensor.port} at {sensor.baud} baud"
    if readings:
        return CheckResult(
            "serial",
            name,
            "ok",
            f"{where}: {sensor.protocol} reading {_values(first)}",
        )
    if received:
        return CheckResult(
            "serial",
            name,
            "fail",
            f"{where}: {received} bytes in {listen_s:.0f} s, but no valid {sensor.protocol} frame",
            "check the protocol and the baud rate against the sensor's datasheet",
        )
    return CheckResult(
        "serial",
        name,
        "warn",
        f"{where}: opens, but no data in {listen_s:.0f} s",
        "check the wiring (sensor TX to adapter RX, common ground) and the sensor's power",
    )


def _poll(name: str, sensor: SensorConfig) -> CheckResult:
    from gateway.serialports.modbus import ModbusPoller

    poller = ModbusPoller(sensor)
    try:
        poller.connect()
    except Exception as exc:  # pymodbus / pyserial errors
        return _open_failed(name, sensor.port, exc)
    try:
        reading = poller.poll()
        stats = poller.stats()
    except Exception as exc:  # the port went away
        return CheckResult("serial", name, "fail", f"{sensor.port}: {exc}", "check the adapter")
    finally:
        poller.close()
    slave = sensor.modbus.slave if sensor.modbus else 1
    if reading is not None and reading.values:
        return CheckResult("serial", name, "ok", f"modbus slave {slave}: {_values(reading)}")
    return CheckResult(
        "serial",
        name,
        "fail",
        f"modbus slave {slave} on {sensor.port}: no answer "
        f"(timeouts {stats.get('timeouts', 0)}, bad CRC {stats.get('bad_crc', 0)}, "
        f"exceptions {stats.get('exceptions', 0)})",
        "check the slave id, baud rate, parity and the A/B wiring",
    )


def _values(reading: Any) -> str:
    values = getattr(reading, "values", {}) or {}
    shown = ", ".join(f"{k}={v}" for k, v in list(values.items())[:4])
    return shown or "(no values)"
