"""The project's commands as child processes (``python -m gateway``, ``-m simulators``).

:func:`run_cli` runs one to its end and returns its exit code and text output (the
caller asserts them); :func:`start_gateway` starts ``gateway run`` and leaves stopping it
(SIGTERM, kill -9) to the test; :func:`popen_as_on_a_terminal` starts a child that takes
Ctrl-C (SIGINT) as it would on a terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(package: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <package> <args>`` from the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_gateway(
    config: Path, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start ``gateway run --config <config>``; stdout and stderr are pipes unless given.

    ``env`` adds variables to this process's environment.
    """
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        env={**os.environ, **(env or {})},
        **popen,
    )


def popen_as_on_a_terminal(args: list[str], **popen: Any) -> subprocess.Popen[str]:
    """``subprocess.Popen(args, text=True, ...)`` with SIGINT at its default in the child.

    A shell starts background jobs with SIGINT ignored, an ignored signal stays ignored
    in children, and Python then never raises ``KeyboardInterrupt``: a Ctrl-C test run
    from a suite in the background would wait for nothing. A handled signal is back to
    its default after exec, so the parent handles it while it starts the child.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, text=True, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)
