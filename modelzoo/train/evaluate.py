"""Measure the demo detector on held-out simulator frames (precision, recall, AP@0.5 per class).

Runs the exported ONNX model through the project's own detector
(:func:`gateway.vision.detector.load_detector`), so the figures include its
letterbox, decoding, class filter and NMS. Objects less than
:data:`~modelzoo.train.data.MIN_VISIBLE` visible are "ignore" regions: a detection
on one is neither a hit nor a false alarm, and missing one costs nothing.

    .venv/bin/python -m modelzoo.train.evaluate --frames 300 --json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gateway.config.vision import DetectorConfig
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections
from gateway.vision.detector import load_detector
from modelzoo.train.data import FRAME_H, FRAME_W, MIN_VISIBLE, clip_frames
from simulators.camera.render import GroundTruth
from simulators.camera.world import CLASSES

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
MODEL = DEMO_DIR / "roadsim.onnx"
LABELS = DEMO_DIR / "roadsim.labels.txt"
HELD_OUT_SEED = 900_000  # training clips use seeds below 100 000 000 / 1000 * 1000 + clips


@dataclass
class ClassStats:
    """Scored detections (with hit flags) and the number of objects for one class."""

    scores: list[float] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    objects: int = 0

    def precision_recall(self, conf: float) -> tuple[float, float]:
        s, h = np.array(self.scores), np.array(self.hits, dtype=bool)
        kept = s >= conf
        tp = int(h[kept].sum())
        precision = tp / int(kept.sum()) if kept.any() else 1.0
        recall = tp / self.objects if self.objects else 1.0
        return precision, recall

    def ap(self) -> float:
        """All-point interpolated average precision (VOC 2010+)."""
        if not self.objects:
            return float("nan")
        order = np.argsort(-np.array(self.scores))
        hits = np.array(self.hits, dtype=bool)[order]
        tp = np.cumsum(hits)
        fp = np.cumsum(~hits)
        recall = np.concatenate([[0.0], tp / self.objects, [1.0]])
        precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1), [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def match_frame(  # noqa: PLR0917
    stats: dict[int, ClassStats],
    det_xyxy: np.ndarray,
    det_score: np.ndarray,
    det_cls: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_cls: np.ndarray,
    gt_ignore: np.ndarray,
) -> None:
    """Greedy IoU >= 0.5 matching per class, best scores first; accumulate into ``stats``."""
    for c in range(len(CLASSES)):
        st = stats.setdefault(c, ClassStats())
        d = np.flatnonzero(det_cls == c)
        g = np.flatnonzero(gt_cls == c)
        st.objects += int((~gt_ignore[g]).sum())
        d = d[np.argsort(-det_score[d])]
        ious = box_iou(det_xyxy[d], gt_xyxy[g]) if len(d) and len(g) else np.zeros((len(d), len(g)))
        taken = np.zeros(len(g), dtype=bool)
        for i, di in enumerate(d):
            best, best_j = 0.5, -1
            for j in range(len(g)):
                if not taken[j] and ious[i, j] >= best:
                    best, best_j = ious[i, j], j
            if best_j >= 0 and gt_ignore[g[best_j]]:
                taken[best_j] = True
                continue  # a detection of an ignore object: not scored
            if best_j < 0 and len(g) and (ious[i] >= 0.5).any():
                continue  # a duplicate on an already-matched ignore object
            st.scores.append(float(det_score[di]))
            st.hits.append(best_j >= 0)
            if best_j >= 0:
                taken[best_j] = True


def score_frame(stats: dict[int, ClassStats], dets: Detections, truth: GroundTruth) -> None:
    """Match one frame's detections to its truth (objects under MIN_VISIBLE are ignored)."""
    match_frame(
        stats,
        dets.xyxy,
        dets.score,
        dets.class_id,
        truth.xyxy,
        truth.class_id,
        truth.visible < MIN_VISIBLE,
    )


def evaluate(
    frames: int, conditions: tuple[str, ...], conf: float = 0.35, model: Path = MODEL
) -> dict[str, dict[str, float | int]]:
    """Per-class precision and recall at ``conf`` and AP@0.5, over ``frames`` per condition."""
    detector = load_detector(
        DetectorConfig(model=str(model), model_type="yolo", labels=LABELS, conf=0.05)
    )
    stats: dict[int, ClassStats] = {}
    for k, cond in enumerate(conditions):
        done, clip = 0, 0
        while done < frames:
            n = min(20, frames - done)
            for img, gt in clip_frames(HELD_OUT_SEED + 100 * k + clip, cond, n, 15, 1.0, 20.0):
                score_frame(stats, detector.detect(img), gt)
            done += n
            clip += 1
    report: dict[str, dict[str, float | int]] = {}
    for c, st in sorted(stats.items()):
        p, r = st.precision_recall(conf)
        report[CLASSES[c]] = {"precision": p, "recall": r, "ap50": st.ap(), "objects": st.objects}
    aps = [v["ap50"] for v in report.values() if v["objects"]]
    report["all"] = {
        "map50": float(np.mean(aps)),
        "frames": frames * len(conditions),
        "size": f"{FRAME_W}x{FRAME_H}",
    }  # type: ignore[dict-item]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=300, help="Frames per condition.")
    ap.add_argument("--conditions", default="day,dusk,rain")
    ap.add_argument("--conf", type=float, default=0.35)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {}
    for cond in args.conditions.split(","):
        out[cond] = evaluate(args.frames, (cond,), args.conf, args.model)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for cond, report in out.items():
        print(
            f"## {cond}: mAP@0.5 {report['all']['map50']:.3f} over {report['all']['frames']} frames"
        )
        print("| class | objects | precision | recall | AP@0.5 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in CLASSES:
            r = report.get(name)
            if r:
                print(
                    f"| {name} | {r['objects']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                    f"{r['ap50']:.3f} |"
                )


if __name__ == "__main__":
    main()
