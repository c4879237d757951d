"""The portable C reference: build with gcc via make and run its vector tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

C_DIR = Path(__file__).resolve().parent.parent / "firmware_bridge" / "c"


def _need_toolchain() -> None:
    missing = [tool for tool in ("gcc", "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: install them (deploy/install-dev.sh lists "
            "gcc and make) to build the firmware bridge C reference",
            pytrace=False,
        )


def _make(directory: Path, build: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(directory), "-B", "CC=gcc", f"BUILD={build}", "test"],
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
    for name in ("rsb_frame.c", "rsb_frame.h"):
        includes = re.findall(
            r"^\s*#\s*include\s*([<\"][^>\"]+[>\"])", (C_DIR / name).read_text(), re.M
        )
        assert set(includes) <= {"<stdint.h>", "<stddef.h>", '"rsb_frame.h"'}, (name, includes)
