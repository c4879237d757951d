"""The portable C reference: build with gcc via make and run its vector tests."""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import subprocess
import tty
from pathlib import Path

import pytest

from firmware_bridge.messages import OUTPUT_OK, OUTPUT_UNKNOWN, OutputState, Pong
from gateway.sensors.rsb import BridgeDecoder
from simulators.board.faults import FaultConfig, Wire

C_DIR = Path(__file__).resolve().parents[2] / "firmware_bridge" / "c"


def _need_toolchain() -> None:
    missing = [tool for tool in ("gcc", "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: install them (deploy/install-dev.sh lists "
            "gcc and make) to build the firmware bridge C reference",
            pytrace=False,
        )


def _make(directory: Path, build: Path, target: str = "test") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(directory), "-B", "CC=gcc", f"BUILD={build}", target],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_c_reference_passes_its_vector_tests() -> None:
    _need_toolchain()
    result = _make(C_DIR, C_DIR / "build")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = re.search(r"^(\d+) passed, (\d+) failed$", result.stdout, re.MULTILINE)
    assert match is not None, output
    assert int(match.group(1)) > 100
    assert match.group(2) == "0"


def test_c_tests_fail_on_a_wrong_vector(tmp_path: Path) -> None:
    _need_toolchain()
    work = tmp_path / "c"
    shutil.copytree(C_DIR, work, ignore=shutil.ignore_patterns("build"))
    header = (work / "vectors.h").read_text()
    # change the last CRC byte of the worked example frame
    mutated = header.replace("0x0f, 0x7f, 0x00};", "0x0f, 0x7e, 0x00};", 1)
    assert mutated != header
    (work / "vectors.h").write_text(mutated)
    result = _make(work, tmp_path / "build")
    assert result.returncode != 0
    assert "FAIL" in result.stdout


def test_c_library_uses_only_stdint_and_stddef() -> None:
    names = ("rsb_frame.c", "rsb_frame.h", "rsb_link.c", "rsb_link.h", "rsb_output.c")
    for name in (*names, "rsb_output.h"):
        includes = re.findall(
            r"^\s*#\s*include\s*([<\"][^>\"]+[>\"])", (C_DIR / name).read_text(), re.M
        )
        allowed = {"<stdint.h>", "<stddef.h>", '"rsb_frame.h"', '"rsb_link.h"', '"rsb_output.h"'}
        assert set(includes) <= allowed, (name, includes)


def test_c_board_talks_to_the_python_decoder_over_a_pty_with_faults(tmp_path: Path) -> None:
    """Interoperability: the C link + framing on a pty, BridgeDecoder on the other end."""
    _need_toolchain()
    build = tmp_path / "build"
    made = _make(C_DIR, build, "demo")
    assert made.returncode == 0, made.stdout + made.stderr
    master, slave = os.openpty()
    tty.setraw(slave)
    count = 150
    proc = subprocess.Popen(
        [str(build / "rsb_board_demo"), "3", str(count), "65500", "4242"],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    faults = FaultConfig(drop_frame=0.1, flip=0.002, garbage=0.05)
    to_host, to_board = Wire(faults, random.Random(1)), Wire(faults, random.Random(2))
    decoder = BridgeDecoder()
    readings = []
    pings = 0
    try:
        while proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the board exited and closed the line
                    break
                for chunk in to_host.apply([data]):
                    readings += decoder.feed(chunk)
            if len(readings) > 50 and pings < 20:
                decoder.ping(3, nonce=pings)
                decoder.output_set(3, pings % 5, float(pings), fail_safe=-1.0, lease_ms=50)
                pings += 1
            for chunk in to_board.apply([decoder.pending_writes()]):
                os.write(master, chunk)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(master)
    assert proc.returncode == 0, stderr
    assert "done: 150 readings" in stderr
    assert [r.values["humidity_pct"] for r in readings] == list(range(count))
    assert [r.values["temperature_c"] for r in readings] == [float(i) for i in range(count)]
    assert {r.extra["boot_id"] for r in readings} == {4242}
    assert readings[0].extra["seq"] == 65500
    assert readings[-1].extra["seq"] == (65500 + count - 1) % 65536
    answers = decoder.responses()
    assert any(isinstance(m.body, Pong) and m.body.nonce < 20 for m in answers)  # PONGs came back
    states = [m.body for m in answers if isinstance(m.body, OutputState)]
    # OUTPUT_SET answered: outputs 0..3 take the value, output 4 does not exist
    assert any(s.status == OUTPUT_OK and s.value == float(s.output) for s in states), states
    assert all(s.status == OUTPUT_UNKNOWN for s in states if s.output == 4)
    assert all(s.lease_ms == 50 for s in states if s.status == OUTPUT_OK)
    stats = decoder.stats()
    assert stats["bad_checksum"] + stats["bad_frames"] > 0  # faults were injected
    assert stats["link_duplicates"] > 0  # lost ACKs were answered again, not re-delivered
