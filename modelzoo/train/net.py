"""RoadSimNet: a small anchor-free detector (stride 8 and 16 grids, ~0.4 M parameters).

Each grid cell predicts class logits and distances (left, top, right, bottom) from
its centre to the box edges. :class:`Exported` wraps it for ONNX in the Ultralytics
v8 layout: one output ``[1, 4 + C, N]`` with ``cx, cy, w, h`` in input pixels and
sigmoid class scores, cells of stride 8 first, row-major.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True)
    )


class RoadSimNet(nn.Module):
    """Backbone, a one-step feature pyramid and a shared-shape head per stride."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2), conv(32, 32))
        self.c3 = nn.Sequential(conv(32, 64, 2), conv(64, 64))  # stride 8
        self.c4 = nn.Sequential(conv(64, 96, 2), conv(96, 96), conv(96, 96))  # stride 16
        self.fuse = conv(96 + 64, 64)
        self.head8 = nn.Sequential(conv(64, 64), nn.Conv2d(64, 4 + num_classes, 1))
        self.head16 = nn.Sequential(conv(96, 64), nn.Conv2d(64, 4 + num_classes, 1))
        for head in (self.head8, self.head16):
            last = head[-1]
            assert isinstance(last, nn.Conv2d)
            nn.init.constant_(last.bias[4:], -4.6)  # start with ~1 % class scores
            nn.init.constant_(last.bias[:4], 0.5)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Raw maps per stride: ``(B, 4 + C, H/s, W/s)``."""
        p3 = self.c3(self.stem(x))
        p4 = self.c4(p3)
        up = F.interpolate(p4, size=p3.shape[-2:], mode="nearest")
        f3 = self.fuse(torch.cat([p3, up], 1))
        return [self.head8(f3), self.head16(p4)]


def decode(raw: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``(B, HW, 4)`` x1,y1,x2,y2 in input pixels and logits ``(B, HW, C)`` of one map."""
    h, w = raw.shape[-2:]
    ys = (torch.arange(h, dtype=raw.dtype) + 0.5) * stride
    xs = (torch.arange(w, dtype=raw.dtype) + 0.5) * stride
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    flat = raw.flatten(2).transpose(1, 2)  # (B, HW, 4 + C)
    dist = F.softplus(flat[..., :4]) * stride
    gx, gy = gx.reshape(1, -1), gy.reshape(1, -1)
    boxes = torch.stack(
        [gx - dist[..., 0], gy - dist[..., 1], gx + dist[..., 2], gy + dist[..., 3]], -1
    )
    return boxes, flat[..., 4:]


class Exported(nn.Module):
    """The ONNX graph: ``images [1,3,H,W]`` RGB 0..1 -> ``output [1, 4 + C, N]``."""

    def __init__(self, net: RoadSimNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for raw, stride in zip(self.net(x), STRIDES, strict=True):
            boxes, logits = decode(raw, stride)
            cxcy = (boxes[..., :2] + boxes[..., 2:]) / 2
            wh = boxes[..., 2:] - boxes[..., :2]
            parts.append(torch.cat([cxcy, wh, torch.sigmoid(logits)], -1))
        return torch.cat(parts, 1).transpose(1, 2)
