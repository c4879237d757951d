"""``gateway bench pipeline``: end-to-end video throughput against the model alone.

In one run:

* **model only**: ``session.run`` in a loop on inputs prepared beforehand from the video's
  frames (the raw baseline), measured before and after the end-to-end pass and averaged
  so machine load drifts affect both alike;
* **end to end**: decode -> motion gate -> detect -> track -> analytics through the real
  :class:`~gateway.vision.runner.CameraRunner` (capture thread + pipeline thread), every
  frame delivered, the video looped; its ratio to the model-only rate; frame-to-result
  and frame-to-event latency p50/p99; RSS at start and end and the process peak;
* **motion gating**: share of inference saved on a still scene (a clip written from one
  frame plus sensor noise) and on the real clip, with the line counts each way;
* **tiling**: detections and time per frame, tiled vs not, on dense scenes;
* **tracking + analytics**: per-frame time of the tracker and line counter on the video's
  recorded detections (detected once), next to the tracker alone (its raw baseline),
  in interleaved rounds (A B A B ...), medians and range.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from gateway.cli_options import threads_option
from gateway.output import json_option, print_json

DEFAULT_VIDEO = Path("../shared/data/traffic_480p.mp4")
DEFAULT_IMAGE = Path("../shared/data/street.jpg")
DEFAULT_LINE = ((0.0, 0.5), (1.0, 0.5))
STATIC_FRAMES = 200
NOISE_SIGMA = 3.0


def _rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def model_only_fps(detector: Any, frames: list[Any], seconds: float) -> float:
    """Model runs per second of ``session.run`` on inputs prepared beforehand."""
    feeds = []
    for image in frames[:20]:
        feed, _ = detector.prepare(image)
        feeds.append({k: v.copy() for k, v in feed.items()})  # the tensor is reused by prepare
    names = detector.decoder.output_names
    runs = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        detector.session.run(names, feeds[runs % len(feeds)])
        runs += 1
    return runs / (time.perf_counter() - t0)


def camera(video: Path, *, motion: str = "off", tiles: str = "off", loop: bool = False) -> Any:
    """A camera config reading ``video`` as fast as possible, with the default line."""
    from gateway.config.vision import CameraConfig
    from gateway.vision.offline import parse_tiles

    return CameraConfig.model_validate(
        {
            "id": "bench",
            "source": {"type": "file", "path": video, "realtime": False, "loop": loop},
            "lines": [{"id": "l1", "points": list(DEFAULT_LINE)}],
            "motion": {"enabled": motion != "off", "mode": "skip" if motion == "off" else motion},
            "tiling": parse_tiles(tiles),
        }
    )


def end_to_end(detector: Any, video: Path, seconds: float) -> dict[str, Any]:
    """Run the real runner on the looped video for ``seconds``; throughput and latency."""
    from gateway.vision.runner import CameraRunner

    events = 0

    def sink(batch: list[Any]) -> None:
        nonlocal events
        events += len(batch)

    runner = CameraRunner(
        camera(video, loop=True), detector, sink, every_frame=True, media_clock=True
    )
    t0 = time.perf_counter()
    runner.start()
    rss = []
    while time.perf_counter() - t0 < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.perf_counter() - t0))))
        rss.append(_rss_mb())
    frames = runner.pipeline.stats.frames
    elapsed = time.perf_counter() - t0
    health = runner.health()
    runner.stop()
    return {
        "frames": frames,
        "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 2),
        "events": events,
        "inference_ms_avg": health.pipeline.inference_ms_avg,
        "frame_latency_ms": {
            "p50": health.frame_latency_p50_ms,
            "p99": health.frame_latency_p99_ms,
        },
        "event_latency_ms": {
            "p50": health.event_latency_p50_ms,
            "p99": health.event_latency_p99_ms,
        },
        "errors": health.errors,
        "rss_mb_after_1s": rss[0],
        "rss_mb_at_end": rss[-1],
        "rss_mb_max": max(rss),
    }


def static_clip(video: Path, out_dir: Path) -> Path:
    """Write a still-scene clip: the video's first frame repeated with sensor noise."""
    import cv2
    import numpy as np

    from gateway.vision.offline import read_frames

    base = read_frames(video, 1)[0]
    path = out_dir / "static.mp4"
    h, w = base.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (w, h))
    rng = np.random.default_rng(0)
    for _ in range(STATIC_FRAMES):
        noisy = base.astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, base.shape)
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    return path


def upscaled_clip(video: Path, out_dir: Path, factor: int = 2) -> Path:
    """Write ``video`` upscaled ``factor`` times (a high-resolution camera for regions mode)."""
    import cv2

    from gateway.vision.offline import read_frames

    frames = read_frames(video, 100_000)
    h, w = frames[0].shape[:2]
    path = out_dir / f"{video.stem}_x{factor}.mp4"
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (w * factor, h * factor)
    )
    for image in frames:
        writer.write(cv2.resize(image, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR))
    writer.release()
    return path


def motion_savings(detector: Any, clip: Path, mode: str) -> dict[str, Any]:
    """Process every frame of ``clip`` with motion gating ``mode``; inference saved and counts."""
    from gateway.vision.offline import count_video

    result = count_video(camera(clip, motion=mode), detector)
    stats = result["pipeline"]
    frames = stats["frames"]
    full_equivalent = stats["inferred_full"] + stats["inferred_regions"]
    return {
        "clip": clip.name,
        "mode": mode,
        "frames": frames,
        "inferred_full": stats["inferred_full"],
        "inferred_regions": stats["inferred_regions"],
        "skipped": stats["skipped_motion"],
        "detector_calls": stats["detector_calls"],
        "saved_share": round(1 - full_equivalent / frames, 3) if frames else 0.0,
        "fps": result["fps"],
        "counts": result["lines"][0]["counts"],
    }


def tiling_figures(detector: Any, image: Any, name: str, repeats: int = 5) -> list[dict[str, Any]]:
    """Detections and mean time per frame on ``image`` with tiling off, auto and 2x2."""
    from gateway.config.vision import TilingConfig
    from gateway.vision.offline import parse_tiles
    from gateway.vision.tiling import Tiler

    rows = []
    for mode in ("off", "auto", "2x2"):
        tiler = Tiler(TilingConfig(**parse_tiles(mode)), detector.input_size, detector.nms_iou)
        dets = tiler.detect(image, detector.detect)
        t0 = time.perf_counter()
        for _ in range(repeats):
            dets = tiler.detect(image, detector.detect)
        ms = (time.perf_counter() - t0) * 1000 / repeats
        tiles = len(tiler.tiles((int(image.shape[1]), int(image.shape[0]))))
        labels = [detector.labels[c] for c in dets.class_id.tolist()]
        rows.append(
            {
                "image": name,
                "size": [int(image.shape[1]), int(image.shape[0])],
                "tiles": mode,
                "detector_calls": max(1, tiles + (1 if tiles else 0)),
                "detections": len(dets),
                "person": labels.count("person"),
                "vehicles": sum(labels.count(v) for v in ("car", "bus", "truck", "motorcycle")),
                "ms": round(ms, 1),
            }
        )
    return rows


def track_and_analytics(detector: Any, frames: list[Any], rounds: int = 5) -> dict[str, Any]:
    """Per-frame ms of the tracker alone (A) and tracker + analytics (B), interleaved."""
    import numpy as np

    from gateway.config.vision import CameraConfig
    from gateway.vision.analytics.engine import AnalyticsEngine
    from gateway.vision.tracker import make_tracker

    dets = [detector.detect(image) for image in frames]
    h, w = frames[0].shape[:2]
    cfg = CameraConfig.model_validate(
        {
            "id": "bench",
            "source": {"type": "file", "path": "bench.mp4"},
            "lines": [{"id": "l1", "points": list(DEFAULT_LINE)}],
        }
    )

    def one(with_analytics: bool) -> float:
        tracker = make_tracker(cfg.tracker)
        engine = AnalyticsEngine(cfg, detector.labels, (w, h)) if with_analytics else None
        t0 = time.perf_counter()
        for k, d in enumerate(dets):
            tracked = tracker.update(d, k / 10.0)
            if engine is not None:
                engine.update(tracked, k / 10.0, births=tracker.births)
        return (time.perf_counter() - t0) * 1000 / len(dets)

    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(one(False))
        b.append(one(True))
    return {
        "frames": len(dets),
        "detections_per_frame": round(float(np.mean([len(d) for d in dets])), 2),
        "rounds": rounds,
        "tracker_ms": round(float(np.median(a)), 3),
        "tracker_ms_range": [round(min(a), 3), round(max(a), 3)],
        "tracker_analytics_ms": round(float(np.median(b)), 3),
        "tracker_analytics_ms_range": [round(min(b), 3), round(max(b), 3)],
    }


def measure(
    *, model: str, video: Path, image: Path, seconds: float, threads: int, extras: bool
) -> dict[str, Any]:
    """Run the whole benchmark and return its figures."""
    import cv2
    import numpy as np

    from gateway.config.vision import DetectorConfig
    from gateway.vision.detector import load_detector
    from gateway.vision.offline import read_frames

    rss_start = _rss_mb()
    detector = load_detector(DetectorConfig(model=model, threads=threads))
    frames = read_frames(video, 100)
    rss_loaded = _rss_mb()
    before = model_only_fps(detector, frames, seconds / 2)
    rss_before_e2e = _rss_mb()
    e2e = end_to_end(detector, video, seconds)
    rss_after_e2e = _rss_mb()
    after = model_only_fps(detector, frames, seconds / 2)
    model_fps = (before + after) / 2
    result: dict[str, Any] = {
        "benchmark": "pipeline",
        "model": model,
        "video": str(video),
        "frame_size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        "threads": threads,
        "model_only_fps": round(model_fps, 2),
        "model_only_fps_before_after": [round(before, 2), round(after, 2)],
        "end_to_end": e2e,
        "ratio": round(e2e["fps"] / model_fps, 3) if model_fps else 0.0,
        "rss_mb": {
            "start": rss_start,
            "model_loaded": rss_loaded,
            "before_e2e": rss_before_e2e,
            "after_e2e": rss_after_e2e,
            "end": _rss_mb(),
            "peak": _peak_rss_mb(),
        },
    }
    result["track_analytics"] = track_and_analytics(detector, read_frames(video, 300))
    if extras:
        with tempfile.TemporaryDirectory() as tmp:
            still = static_clip(video, Path(tmp))
            large = upscaled_clip(video, Path(tmp))
            result["motion"] = [
                motion_savings(detector, still, "off"),
                motion_savings(detector, still, "skip"),
                motion_savings(detector, video, "off"),
                motion_savings(detector, video, "skip"),
                motion_savings(detector, large, "off"),
                motion_savings(detector, large, "regions"),
            ]
        dense = cv2.imread(str(image))
        mosaic = np.vstack([np.hstack(frames[0:2]), np.hstack(frames[40:42])])
        result["tiling"] = []
        if dense is not None:
            result["tiling"] += tiling_figures(detector, dense, image.name)
        result["tiling"] += tiling_figures(detector, mosaic, "2x2 mosaic of video frames")
        result["rss_mb"]["end"] = _rss_mb()
        result["rss_mb"]["peak"] = _peak_rss_mb()
    return result


def _print(result: dict[str, Any]) -> None:
    e2e = result["end_to_end"]
    w, h = result["frame_size"]
    echo = click.echo
    echo(
        f"pipeline: {result['model']} on {result['video']} ({w}x{h}), {result['threads']} thread(s)"
    )
    before, after = result["model_only_fps_before_after"]
    echo(f"  model only (session.run)   {result['model_only_fps']:8.2f} fps")
    echo(f"      (before the end-to-end pass {before}, after it {after})")
    echo(f"  end to end (real runner)   {e2e['fps']:8.2f} fps")
    echo(f"      ({e2e['frames']} frames in {e2e['seconds']} s, {e2e['events']} events)")
    echo(f"  end to end / model only    {result['ratio']:8.3f}x")
    fl, el = e2e["frame_latency_ms"], e2e["event_latency_ms"]
    echo(f"  frame -> result latency    p50 {fl['p50']} ms   p99 {fl['p99']} ms")
    echo(f"  frame -> event latency     p50 {el['p50']} ms   p99 {el['p99']} ms")
    rss = result["rss_mb"]
    echo(f"  RSS MiB start {rss['start']}, model loaded {rss['model_loaded']}, end {rss['end']}")
    echo(
        f"      end-to-end pass {rss['before_e2e']} -> {rss['after_e2e']}"
        f" (after 1 s {e2e['rss_mb_after_1s']}, max {e2e['rss_mb_max']}), peak {rss['peak']}"
    )
    ta = result["track_analytics"]
    echo(
        f"  tracker alone              {ta['tracker_ms']:8.3f} ms/frame"
        f"  (range {ta['tracker_ms_range'][0]}-{ta['tracker_ms_range'][1]},"
        f" {ta['rounds']} rounds, {ta['frames']} frames, {ta['detections_per_frame']} boxes/frame)"
    )
    echo(
        f"  tracker + analytics        {ta['tracker_analytics_ms']:8.3f} ms/frame"
        f"  (range {ta['tracker_analytics_ms_range'][0]}-{ta['tracker_analytics_ms_range'][1]})"
    )
    for row in result.get("motion", []):
        echo(
            f"  motion {row['mode']:<8} {row['clip']:<22} frames {row['frames']:4d}"
            f"  full {row['inferred_full']:4d}  regions {row['inferred_regions']:4d}"
            f"  skipped {row['skipped']:4d}  calls {row['detector_calls']:4d}"
        )
        echo(
            f"      saved {row['saved_share'] * 100:5.1f} % of frames, {row['fps']:7.2f} fps,"
            f" counts {row['counts']}"
        )
    for row in result.get("tiling", []):
        echo(
            f"  tiling {row['tiles']:<5} {row['image']:<28} calls {row['detector_calls']:2d}"
            f"  detections {row['detections']:3d}"
            f" (person {row['person']}, vehicles {row['vehicles']})  {row['ms']:7.1f} ms/frame"
        )


@click.command("pipeline")
@click.option("--model", "-m", required=True, help="An .onnx file.")
@click.option(
    "--video",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_VIDEO,
    show_default=True,
    help="A real video, looped for the end-to-end pass.",
)
@click.option(
    "--image",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_IMAGE,
    show_default=True,
    help="A dense high-resolution image for the tiling figures.",
)
@click.option("--seconds", type=click.FloatRange(1, 3600), default=10.0, show_default=True)
@threads_option
@click.option(
    "--extras/--no-extras", default=True, show_default=True, help="Motion and tiling figures."
)
@json_option
def command(
    *,
    model: str,
    video: Path,
    image: Path,
    seconds: float,
    threads: int,
    extras: bool,
    as_json: bool,
) -> None:
    """Time end-to-end video processing against model-only inference; motion and tiling gains."""
    result = measure(
        model=model, video=video, image=image, seconds=seconds, threads=threads, extras=extras
    )
    if as_json:
        print_json(result)
    else:
        _print(result)
