"""Train the demo detector on simulator frames and export it to ONNX.

Usage (CPU, one thread, about 20 minutes)::

    .venv/bin/pip install torch==2.13.0
    .venv/bin/python -m modelzoo.train.train --minutes 20 --out modelzoo/demo/roadsim.onnx

Frames and exact boxes come from :mod:`simulators.camera`; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from modelzoo.train.data import INPUT_H, INPUT_W, Sample, make_samples
from modelzoo.train.net import STRIDES, Exported, RoadSimNet, decode
from simulators.camera.world import CLASSES

IGNORE, NEGATIVE = -2, -1


def grid_centres() -> list[np.ndarray]:
    """Cell centres ``(HW, 2)`` per stride, row-major (the export order)."""
    out = []
    for s in STRIDES:
        ys, xs = np.mgrid[0 : INPUT_H // s, 0 : INPUT_W // s]
        out.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1).astype(np.float32))
    return out


# Object size (longest side, input pixels) each stride is responsible for.
SIZE_RANGE = {8: (0.0, 80.0), 16: (48.0, 1e9)}


def assign(sample: Sample, centres: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell class target (class index, NEGATIVE or IGNORE) and box target."""
    cls_parts, box_parts = [], []
    order = np.argsort(-_area(sample.boxes))  # large first, so small objects win shared cells
    for s, c in zip(STRIDES, centres, strict=True):
        cls_t = np.full(len(c), NEGATIVE, dtype=np.int64)
        box_t = np.zeros((len(c), 4), dtype=np.float32)
        lo, hi = SIZE_RANGE[s]
        for k in order:
            x1, y1, x2, y2 = sample.boxes[k]
            bcx, bcy = (x1 + x2) / 2, (y1 + y2) / 2
            inside = (c[:, 0] > x1) & (c[:, 0] < x2) & (c[:, 1] > y1) & (c[:, 1] < y2)
            near = (np.abs(c[:, 0] - bcx) < 1.5 * s) & (np.abs(c[:, 1] - bcy) < 1.5 * s)
            cells = np.flatnonzero(inside & near)
            if len(cells) == 0:
                cells = np.array([np.argmin((c[:, 0] - bcx) ** 2 + (c[:, 1] - bcy) ** 2)])
            if sample.ignore[k]:
                cls_t[cells[cls_t[cells] == NEGATIVE]] = IGNORE
                continue
            if not lo <= max(x2 - x1, y2 - y1) <= hi:
                cls_t[cells[cls_t[cells] == NEGATIVE]] = IGNORE
                continue
            cls_t[cells] = sample.classes[k]
            box_t[cells] = sample.boxes[k]
        cls_parts.append(cls_t)
        box_parts.append(box_t)
    return np.concatenate(cls_parts), np.concatenate(box_parts)


def _area(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def giou_loss(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 - GIoU for matching rows of x1,y1,x2,y2 boxes."""
    ix1, iy1 = torch.max(p[:, 0], t[:, 0]), torch.max(p[:, 1], t[:, 1])
    ix2, iy2 = torch.min(p[:, 2], t[:, 2]), torch.min(p[:, 3], t[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    ap = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    at = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = ap + at - inter + 1e-6
    iou = inter / union
    cx1, cy1 = torch.min(p[:, 0], t[:, 0]), torch.min(p[:, 1], t[:, 1])
    cx2, cy2 = torch.max(p[:, 2], t[:, 2]), torch.max(p[:, 3], t[:, 3])
    hull = (cx2 - cx1) * (cy2 - cy1) + 1e-6
    return 1 - (iou - (hull - union) / hull)


def loss_fn(outputs: list[torch.Tensor], cls_t: torch.Tensor, box_t: torch.Tensor) -> torch.Tensor:
    boxes, logits = [], []
    for raw, s in zip(outputs, STRIDES, strict=True):
        b, lg = decode(raw, s)
        boxes.append(b)
        logits.append(lg)
    pred_boxes, pred_logits = torch.cat(boxes, 1), torch.cat(logits, 1)
    pos = cls_t >= 0
    valid = cls_t != IGNORE
    num_pos = max(1.0, float(pos.sum()))
    onehot = F.one_hot(cls_t.clamp(min=0), len(CLASSES)).float() * pos.unsqueeze(-1)
    ce = F.binary_cross_entropy_with_logits(pred_logits, onehot, reduction="none")
    prob = torch.sigmoid(pred_logits)
    p_t = prob * onehot + (1 - prob) * (1 - onehot)
    alpha = 0.25 * onehot + 0.75 * (1 - onehot)
    focal = (alpha * (1 - p_t) ** 2 * ce).sum(-1)
    cls_loss = (focal * valid).sum() / num_pos
    box_loss = (
        giou_loss(pred_boxes[pos], box_t[pos]).sum() / num_pos
        if pos.any()
        else pred_boxes.sum() * 0
    )
    return cls_loss + 2.0 * box_loss


def to_tensor(images: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    n = len(images)
    gain = torch.from_numpy(rng.uniform(0.75, 1.25, (n, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32))
    return (x * gain + bias).clamp(0, 1)


def export(net: RoadSimNet, out: Path) -> None:
    net.eval()
    model = Exported(net)
    dummy = torch.zeros(1, 3, INPUT_H, INPUT_W)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["images"],
        output_names=["output"],
        opset_version=17,
        dynamo=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=20.0, help="Wall-clock training budget.")
    ap.add_argument("--samples", type=int, default=5000, help="Training frames to render.")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("modelzoo/demo/roadsim.onnx"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    samples = make_samples(args.seed, args.samples)
    centres = grid_centres()
    targets = [assign(s, centres) for s in samples]
    images = np.stack([s.image for s in samples])
    cls_all = torch.from_numpy(np.stack([t[0] for t in targets]))
    box_all = torch.from_numpy(np.stack([t[1] for t in targets]))
    print(f"rendered {len(samples)} frames in {time.monotonic() - t0:.0f} s", flush=True)

    net = RoadSimNet(len(CLASSES))
    ema = copy.deepcopy(net).eval()
    print(f"parameters: {sum(p.numel() for p in net.parameters())}", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    budget = args.minutes * 60
    start, step = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < budget:
        frac = elapsed / budget
        lr = args.lr * (min(1.0, (step + 1) / 200)) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(samples), args.batch)
        x = to_tensor(images[idx], rng)
        loss = loss_fn(net(x), cls_all[idx], box_all[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.state_dict().values(), net.state_dict().values(), strict=True):
                if pe.dtype.is_floating_point:
                    pe.mul_(decay).add_(pn.detach(), alpha=1 - decay)
                else:
                    pe.copy_(pn)
        if step % 50 == 0:
            print(f"step {step} t={elapsed:.0f}s lr={lr:.5f} loss={loss.item():.4f}", flush=True)
        step += 1
    print(f"trained {step} steps x {args.batch} in {time.monotonic() - start:.0f} s", flush=True)
    checkpoint = Path(tempfile.gettempdir()) / f"{args.out.stem}.pt"  # not committed
    torch.save(ema.state_dict(), checkpoint)
    print(f"checkpoint {checkpoint}", flush=True)
    export(ema, args.out)
    print(f"exported {args.out} ({args.out.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()
