"""The CLI's contract: help everywhere, exit codes, one-line errors, JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gateway.cli import app, main

ROOT = Path(__file__).resolve().parents[2]


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    out = [prefix]
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{' '.join((*prefix, name))} is registered but cannot be loaded"
        if isinstance(cmd, click.Group):
            out += _all_commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _all_commands(app)
    assert len(commands) > 5
    for path in commands:
        assert main([*path, "--help"]) == 0, path
        assert "Usage:" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err
    assert main(["config", "check"]) == 2
    assert main(["--log-format", "xml", "config", "schema"]) == 2


def test_runtime_error_is_one_line_and_debug_adds_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the store's folder should be")  # the disk, not the input
    args = ["models", "--model-dir", str(blocker / "s"), "import", str(bad), "--name", "x"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert main(["--debug", *args]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_json_logs_for_log_shippers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nid = 'ok'\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = (
        "import logging, sys; from gateway.cli import main; "
        "rc = main(['--log-format', 'json', 'config', 'check', sys.argv[1]]); "
        "logging.getLogger('gateway.test').warning('hello %s', 'there'); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stderr.strip().splitlines()[-1])
    assert record["message"] == "hello there"
    assert record["level"] == "WARNING" and record["logger"] == "gateway.test"


def test_console_script_version() -> None:
    exe = Path(sys.executable).with_name("gateway")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("gateway, version ")
