"""The ``gateway`` command line (click).

Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure.
Errors are one line on stderr; ``--debug`` adds the traceback.
Command groups live in :mod:`gateway.commands`, one module each, registered
explicitly in :data:`COMMANDS`. Heavy imports (OpenCV, ONNX Runtime) stay inside
the command functions so ``gateway --help`` is fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence

import click

from gateway import __version__
from gateway.commands import (
    bench,
    camera,
    cmd,
    config,
    console,
    count,
    demo,
    detect,
    doctor,
    enroll,
    ingest,
    models,
    ngsi,
    pki,
    rules,
    run,
    score,
    sensors,
)
from gateway.errors import ConfigError, GatewayError, UsageError
from gateway.logs import setup_logging

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _State:
    debug = False


@click.group(context_settings=CONTEXT)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log format on stderr (json for journald and log shippers).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.version_option(__version__, prog_name="gateway")
def app(debug: bool, log_format: str, log_level: str) -> None:
    """Roadside Gateway: detection, counting and sensors on a roadside unit, over MQTT."""
    _State.debug = debug
    setup_logging("debug" if debug else log_level, "json" if log_format == "json" else "text")


# The explicit registry of command groups; each module adds its commands to ``app``.
COMMANDS: tuple[Callable[[click.Group], None], ...] = (
    demo.register,
    run.register,
    detect.register,
    count.register,
    score.register,
    camera.register,
    models.register,
    sensors.register,
    ingest.register,
    ngsi.register,
    config.register,
    console.register,
    rules.register,
    doctor.register,
    pki.register,
    cmd.register,
    enroll.register,
    bench.register,
)
for _register in COMMANDS:
    _register(app)


def _fail(message: str, code: int, fix: str | None = None) -> int:
    if _State.debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    if fix:
        print(f"  fix: {fix}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (also the console-script entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _State.debug = "--debug" in args
    try:
        # Without standalone mode click returns the code of a ``click.exceptions.Exit``.
        result = app.main(args=args, prog_name="gateway", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except ConfigError as exc:
        code = _fail(str(exc), 2)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return code
    except UsageError as exc:
        return _fail(str(exc), 2, exc.fix)
    except GatewayError as exc:
        return _fail(str(exc), 1, exc.fix)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1)
    return result if isinstance(result, int) else 0


def entry() -> int:
    """The console-script entry point: :func:`main`, with C libraries' stderr in the logs.

    FFmpeg and OpenCV write to file descriptor 2 directly; for the whole run it is a
    pipe whose lines become log records (:mod:`gateway.native_stderr`). Tests call
    :func:`main` in-process and keep their own capture.
    """
    from gateway.native_stderr import NativeStderr

    capture = NativeStderr()
    capture.start()
    try:
        return main()
    finally:
        capture.stop()


if __name__ == "__main__":
    sys.exit(entry())
