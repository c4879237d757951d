"""Console benchmark: pipeline throughput without the console, with it idle, with one viewer.

Each round runs the real gateway (:class:`gateway.app.App`, no MQTT broker) on the
simulated road camera, paced at ``--camera-fps`` (15: about what the pipeline keeps up
with on this machine, so anything the console takes shows as frames not processed), or
rendering as fast as it can (``--camera-fps 0``: the pipeline runs flat out, and its fps
then follows whatever CPU share the machine's other load leaves it).
Three kinds of round, interleaved, their order rotated each round (A B C, B C A, ...):

* ``off``: no ``[console]``;
* ``idle``: the console serves, nobody is logged in;
* ``viewer``: one viewer (a separate process, as a laptop would be) logged in and
  watching the camera the way the page does: its frame ``view_fps`` times a second and
  its live state once a second.

Figures per round: processed frames per second over the measured window (after a
warm-up), the console's JPEG encodings and the viewer's counters, the load average
before and after. The targets are median idle >= 0.98 x off and viewer >= 0.9 x off.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import click

from gateway.bench.load import load_1m
from gateway.localservers import free_port
from gateway.output import json_option, print_json

Kind = Literal["off", "idle", "viewer"]
KINDS: tuple[Kind, ...] = ("off", "idle", "viewer")
PASSWORD = "bench console password"


def settings(
    data_dir: Path, *, console: bool, seed: int, view_fps: float, camera_fps: float
) -> dict[str, Any]:
    """The gateway's settings for one round."""
    from gateway.console.passwords import hash_password
    from gateway.demo.scenario import detector_config

    detector = {k: v for k, v in detector_config().model_dump(mode="json").items() if v is not None}
    data: dict[str, Any] = {
        "gateway": {"id": "bench-console", "site": "bench", "data_dir": str(data_dir)},
        "logging": {"level": "warning"},
        "detector": detector,
        "cameras": [
            {
                "id": "cam",
                "source": {
                    "type": "simulator",
                    "seed": seed,
                    "density": 2.0,
                    "realtime": camera_fps > 0,
                    "fps": camera_fps or 10.0,
                },
                "lines": [{"id": "road", "points": [[0.5, 0.45], [0.5, 0.97]]}],
                "zones": [
                    {"id": "walk", "points": [[0.6, 0.8], [0.9, 0.8], [0.9, 0.98], [0.6, 0.98]]}
                ],
            }
        ],
        "mqtt": {"host": "127.0.0.1", "port": free_port(), "reconnect_max_s": 5},
        "events": {"health_interval_s": 3600},
    }
    if console:
        data["console"] = {
            "enabled": True,
            "bind": "127.0.0.1",
            "port": 0,
            "view_fps": view_fps,
            "users": {"bench": {"role": "read-only", "password_hash": hash_password(PASSWORD)}},
        }
    return data


def _console_cpu_s() -> dict[int, float]:
    """CPU seconds so far of each console thread (its server and its request workers)."""
    import threading

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for thread in threading.enumerate():
        if not thread.name.startswith(("console", "AnyIO worker")) or thread.native_id is None:
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[thread.native_id] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _process_cpu_s() -> float:
    """CPU seconds of this process so far (the gateway; the viewer is another process)."""
    times = os.times()
    return times.user + times.system


def _frames(app: Any) -> int:
    return int(app.cameras["cam"].health().pipeline.frames)


def run_round(
    kind: Kind, seconds: float, *, seed: int, view_fps: float, warm_up_s: float, camera_fps: float
) -> dict[str, Any]:
    """One round of ``kind``: its processed fps and the console's counters."""
    from gateway.app import App
    from gateway.config.settings import validate_settings

    load_before = load_1m()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        config = settings(
            Path(tmp) / "data",
            console=kind != "off",
            seed=seed,
            view_fps=view_fps,
            camera_fps=camera_fps,
        )
        app = App(validate_settings(config))
        viewer: subprocess.Popen[str] | None = None
        try:
            app.start()
            if kind == "viewer":
                assert app.console is not None
                assert app.console.port is not None
                viewer = subprocess.Popen(
                    [sys.executable, "-m", "gateway.bench.console_viewer",
                     str(app.console.port), "cam", str(view_fps)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                assert viewer.stdin is not None
                viewer.stdin.write(PASSWORD + "\n")
                viewer.stdin.close()
            time.sleep(warm_up_s)
            encodes_before = app.console.encodes if app.console else 0
            cpu_before = _console_cpu_s()
            process_before = _process_cpu_s()
            start_frames, start = _frames(app), time.monotonic()
            time.sleep(seconds)
            frames, elapsed = _frames(app) - start_frames, time.monotonic() - start
            process_cpu = _process_cpu_s() - process_before
            cpu_after = _console_cpu_s()
            console_cpu = sum(v - cpu_before.get(tid, 0.0) for tid, v in cpu_after.items())
            encodes = (app.console.encodes if app.console else 0) - encodes_before
            watched: dict[str, Any] = {}
            if viewer is not None:
                viewer.send_signal(signal.SIGTERM)
                assert viewer.stdout is not None
                out = viewer.stdout.read()
                viewer.wait(30)
                watched = json.loads(out.strip().splitlines()[-1])
        finally:
            if viewer is not None and viewer.poll() is None:
                viewer.kill()
                viewer.wait()
            app.stop()
    return {
        "round": 0,
        "kind": kind,
        "seconds": round(elapsed, 1),
        "frames": frames,
        "fps": round(frames / elapsed, 2),
        "frames_per_cpu_s": round(frames / process_cpu, 2) if process_cpu > 0 else None,
        "process_cpu_pct": round(100 * process_cpu / elapsed, 1),
        "encodes_per_s": round(encodes / elapsed, 2),
        "console_cpu_pct": round(100 * console_cpu / elapsed, 2),
        "viewer": watched,
        "load_1m_before": load_before,
        "load_1m_after": load_1m(),
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median fps of each kind, its spread, and the ratios to ``off``."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        values = [float(r["fps"]) for r in rounds if r["kind"] == kind]
        cpu = [float(r["console_cpu_pct"]) for r in rounds if r["kind"] == kind]
        per_cpu = [
            float(r["frames_per_cpu_s"])
            for r in rounds
            if r["kind"] == kind and r["frames_per_cpu_s"]
        ]
        out[kind] = {
            "rounds": len(values),
            "fps": round(statistics.median(values), 2),
            "fps_spread": [round(min(values), 2), round(max(values), 2)],
            "frames_per_cpu_s": round(statistics.median(per_cpu), 2) if per_cpu else None,
            "console_cpu_pct": round(statistics.median(cpu), 2),
        }
    # Each kind against the "off" round next to it (the same load, more or less), then
    # the median of those ratios: the machine's load drifts between rounds.
    by_round: dict[int, dict[str, float]] = {}
    for row in rounds:
        by_round.setdefault(int(row["round"]), {})[row["kind"]] = float(row["fps"])
    for kind in ("idle", "viewer"):
        ratios = [r[kind] / r["off"] for r in by_round.values() if r.get("off") and kind in r]
        out[f"{kind}_ratio"] = round(statistics.median(ratios), 3) if ratios else None
        out[f"{kind}_ratios"] = [round(x, 3) for x in ratios]
        # Frames per CPU-second of the gateway process: what the console costs when the
        # CPU is the limit, much less sensitive to what else runs on the machine.
        base, cand = out["off"]["frames_per_cpu_s"], out[kind]["frames_per_cpu_s"]
        out[f"{kind}_cpu_efficiency_ratio"] = round(cand / base, 3) if base and cand else None
    out["targets_met"] = {
        "idle >= 0.98": out["idle_ratio"] is not None and out["idle_ratio"] >= 0.98,
        "viewer >= 0.9": out["viewer_ratio"] is not None and out["viewer_ratio"] >= 0.9,
    }
    loads = [r["load_1m_before"] for r in rounds] + [r["load_1m_after"] for r in rounds]
    out["load_1m"] = [min(loads), max(loads)]
    return out


@click.command("console")
@click.option(
    "--rounds",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Rounds of each kind (interleaved, order rotated: off idle viewer, idle viewer off, ...).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(3, 3600),
    default=20.0,
    show_default=True,
    help="Measured length of one round (after the warm-up).",
)
@click.option(
    "--view-fps",
    type=click.FloatRange(0.1, 15),
    default=4.0,
    show_default=True,
    help="The console's view_fps (frames the viewer asks for per second).",
)
@click.option(
    "--warm-up",
    "warm_up_s",
    type=click.FloatRange(0, 60),
    default=4.0,
    show_default=True,
    help="Seconds each round runs before it is measured.",
)
@click.option(
    "--camera-fps",
    type=click.FloatRange(0, 60),
    default=15.0,
    show_default=True,
    help="The simulated camera's frame rate, paced in real time (about what the pipeline "
    "keeps up with here); 0: as fast as it renders (the pipeline runs flat out).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@json_option
def command(  # noqa: PLR0917 - one parameter per click option
    rounds: int,
    seconds: float,
    view_fps: float,
    warm_up_s: float,
    camera_fps: float,
    seed: int,
    as_json: bool,
) -> None:
    """Pipeline fps with the console off, idle and with one viewer (interleaved rounds)."""
    import logging

    logging.getLogger("gateway").setLevel(logging.WARNING)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    results = []
    for i in range(rounds):
        for kind in KINDS[i % 3 :] + KINDS[: i % 3]:  # rotated: no kind always runs first
            row = {
                **run_round(
                    kind,
                    seconds,
                    seed=seed + i,
                    view_fps=view_fps,
                    warm_up_s=warm_up_s,
                    camera_fps=camera_fps,
                ),
                "round": i + 1,
            }
            results.append(row)
            if not as_json:
                watched = row["viewer"]
                extra = (
                    f"; viewer got {watched.get('frames')} frames "
                    f"({watched.get('distinct_frames')} distinct, {watched.get('errors')} errors), "
                    f"{row['encodes_per_s']} encodes/s"
                    if watched
                    else f"; {row['encodes_per_s']} encodes/s"
                )
                extra += f", console threads {row['console_cpu_pct']} % of a core"
                click.echo(
                    f"round {i + 1} {kind:6}: {row['fps']} fps ({row['frames']} frames in "
                    f"{row['seconds']} s, {row['frames_per_cpu_s']} per CPU-second"
                    f"){extra}; load {row['load_1m_before']} -> "
                    f"{row['load_1m_after']} ({os.cpu_count()} cores)"
                )
    summary = summarize(results)
    if as_json:
        print_json(
            {"benchmark": "console", "cores": os.cpu_count(), "view_fps": view_fps,
             "camera_fps": camera_fps, "rounds": results, "summary": summary}
        )  # fmt: skip
        return
    click.echo(
        f"median fps: off {summary['off']['fps']} {summary['off']['fps_spread']}, idle "
        f"{summary['idle']['fps']} {summary['idle']['fps_spread']}, one viewer "
        f"{summary['viewer']['fps']} {summary['viewer']['fps_spread']}; median of the "
        f"per-round ratios idle/off "
        f"{summary['idle_ratio']} (target >= 0.98), viewer/off {summary['viewer_ratio']} "
        f"(target >= 0.9); frames per CPU-second idle/off "
        f"{summary['idle_cpu_efficiency_ratio']}, viewer/off "
        f"{summary['viewer_cpu_efficiency_ratio']}; console threads "
        f"{summary['idle']['console_cpu_pct']} % of a core "
        f"idle, {summary['viewer']['console_cpu_pct']} % with the viewer; load "
        f"{summary['load_1m'][0]}-{summary['load_1m'][1]}"
    )
