"""``gateway bench flow``: flow measures against the simulated world's truth, and their cost.

Accuracy: each scenario of ``simulators/camera/flow_scenarios.py`` runs for ``--seconds``
through the real pipeline (truth-based detector with 1 px jitter and 3 % misses); every
measure of every lane and interval is paired with the world's truth; per measure the
mean and worst absolute error are printed.

Cost: the tracked detections of the intersection run are replayed through the analytics
engine with and without ``[cameras.flow]`` (baseline and candidate rounds interleaved,
A B A B), giving the added milliseconds per frame; and one camera-shift check is timed
on rendered frames (its cost per frame is that divided by the frames per check).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from gateway.bench.load import describe_load
from gateway.output import json_option, print_json


def _magnitude(x: float) -> float:
    return abs(x)


def accuracy(name: str, seconds: float, interval_s: float = 60.0) -> dict[str, Any]:
    """Per-measure errors of one scenario."""
    from simulators.camera.flow_scenarios import SCENARIOS, compare, run

    t0 = time.perf_counter()
    scenario = dataclasses.replace(SCENARIOS[name](), interval_s=interval_s)
    result = run(scenario, seconds)
    wall = time.perf_counter() - t0
    errors: dict[str, list[float]] = defaultdict(list)
    for pair in compare(result):
        if pair.error is not None:
            errors[pair.measure].append(pair.error)
    return {
        "scenario": name,
        "seconds": seconds,
        "frames": result.frames,
        "wall_s": round(wall, 1),
        "intervals": len(result.reports),
        "measures": {
            m: {
                "n": len(v),
                "mean_abs": round(statistics.fmean(abs(x) for x in v), 4),
                "bias": round(statistics.fmean(v), 4),
                "worst": round(sorted(v, key=_magnitude)[-1], 4),
            }
            for m, v in sorted(errors.items())
        },
    }


def cost(seconds: float, rounds: int) -> dict[str, Any]:
    """Added per-frame cost of the flow measures and of the camera-shift check."""
    from gateway.vision.analytics.engine import AnalyticsEngine
    from gateway.vision.drift import DriftDetector
    from gateway.vision.reference import ReferenceStore
    from simulators.camera.flow_scenarios import intersection, run
    from simulators.camera.world import CLASSES

    scenario = intersection()
    result = run(scenario, seconds, record=True)
    recorded, images = result.tracks, result.images
    camera = result.camera
    assert camera is not None
    plain = camera.model_copy(update={"flow": None})
    size = scenario.size

    def replay(cfg: Any) -> float:
        engine = AnalyticsEngine(cfg, list(CLASSES), size)
        t0 = time.perf_counter()
        for tracked, ts in recorded:
            engine.update(tracked, ts)
        return (time.perf_counter() - t0) * 1000 / len(recorded)

    base, flow = [], []
    for _ in range(rounds):
        base.append(replay(plain))
        flow.append(replay(camera))
    detector = DriftDetector(
        camera, ReferenceStore(Path(tempfile.mkdtemp(prefix="bench-flow-")), "bench"), size
    )
    for k, image in enumerate(images[:5]):
        detector.update(image, 1e9 + k * 10)
    checks = []
    for image in images[5:] * 2:
        t0 = time.perf_counter()
        detector.check(image, 1e9)
        checks.append((time.perf_counter() - t0) * 1000)
    interval_frames = camera.drift.interval_s * scenario.world.fps
    added = [f - b for f, b in zip(flow, base, strict=True)]
    return {
        "frames": len(recorded),
        "mean_tracks": round(statistics.fmean(len(t) for t, _ in recorded), 1),
        "lanes": len(camera.flow.lanes) if camera.flow else 0,
        "gates": len(camera.flow.gates) if camera.flow else 0,
        "engine_ms_per_frame": {
            "baseline": [round(x, 3) for x in base],
            "with_flow": [round(x, 3) for x in flow],
            "baseline_median": round(statistics.median(base), 3),
            "with_flow_median": round(statistics.median(flow), 3),
            "added_median": round(statistics.median(added), 3),
            "added_spread": round(max(added) - min(added), 3),
        },
        "drift_check_ms": {
            "median": round(statistics.median(checks), 2),
            "max": round(max(checks), 2),
            "n": len(checks),
            "per_frame_at_defaults": round(statistics.median(checks) / interval_frames, 3),
        },
    }


def _print(out: dict[str, Any]) -> None:
    echo = click.echo
    echo(f"flow bench ({out['load_before']}; after: {out['load_after']})")
    for acc in out["accuracy"]:
        echo(
            f"  {acc['scenario']}: {acc['seconds']:.0f} s simulated, {acc['intervals']} intervals,"
            f" {acc['frames']} frames in {acc['wall_s']} s"
        )
        echo(f"    {'measure':<20} {'n':>4} {'mean |err|':>11} {'bias':>9} {'worst':>9}")
        for m, row in acc["measures"].items():
            echo(
                f"    {m:<20} {row['n']:>4} {row['mean_abs']:>11.3f} {row['bias']:>+9.3f}"
                f" {row['worst']:>+9.3f}"
            )
    c = out.get("cost")
    if c:
        e = c["engine_ms_per_frame"]
        echo(
            f"  analytics engine per frame ({c['frames']} frames, {c['mean_tracks']} tracks,"
            f" {c['lanes']} lanes, {c['gates']} gates):"
        )
        echo(f"    baseline  {e['baseline']}  median {e['baseline_median']} ms")
        echo(f"    with flow {e['with_flow']}  median {e['with_flow_median']} ms")
        echo(f"    added     median {e['added_median']} ms (spread {e['added_spread']} ms)")
        d = c["drift_check_ms"]
        echo(
            f"  camera-shift check: median {d['median']} ms, max {d['max']} ms over {d['n']};"
            f" {d['per_frame_at_defaults']} ms per frame at interval_s 10 and 10 fps"
        )


@click.command("flow")
@click.option("--seconds", type=click.FloatRange(20, 7200), default=300.0, show_default=True)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["intersection", "queueing-lane"]),
    help="Default: both.",
)
@click.option(
    "--interval", "interval_s", type=click.FloatRange(5, 3600), default=60.0, show_default=True
)
@click.option("--rounds", type=click.IntRange(2, 20), default=4, show_default=True)
@click.option("--no-cost", is_flag=True, help="Accuracy only.")
@json_option
def command(  # noqa: PLR0917 (one parameter per option)
    seconds: float,
    scenarios: tuple[str, ...],
    interval_s: float,
    rounds: int,
    no_cost: bool,
    as_json: bool,
) -> None:
    """Flow measures vs the simulated world's truth, and the added per-frame cost."""
    out: dict[str, Any] = {"load_before": describe_load()}
    names = scenarios or ("intersection", "queueing-lane")
    out["accuracy"] = [accuracy(name, seconds, interval_s) for name in names]
    if not no_cost:
        out["cost"] = cost(min(seconds, 120.0), rounds)
    out["load_after"] = describe_load()
    if as_json:
        print_json(out)
    else:
        _print(out)
