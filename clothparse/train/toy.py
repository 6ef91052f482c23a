"""A tiny in-memory dataset of coloured shapes, for smoke tests of training and DDP.

Each item is in the format of ``clothparse.data.dataset`` (and what torchvision's
Mask R-CNN takes): image float32 ``[3, S, S]`` RGB in [0, 1] (grey noise background);
target ``boxes`` float32 ``[N, 4]`` xyxy pixels (x2/y2 exclusive), ``labels`` int64
``[N]`` (1 = red rectangle, 2 = blue ellipse), ``masks`` uint8 ``[N, S, S]`` 0/1,
``image_id`` int64. Items are a pure function of (seed, index).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from clothparse.data.dataset import masks_to_boxes

TOY_CLASSES = ["red_rect", "blue_ellipse"]
_COLOURS = {1: (0.9, 0.1, 0.1), 2: (0.1, 0.2, 0.9)}


def toy_sample(seed: int, size: int = 96, max_objects: int = 3) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One image with 1..``max_objects`` non-overlapping-ish shapes (later ones drawn on top)."""
    g = torch.Generator().manual_seed(seed)
    img = 0.4 + 0.2 * torch.rand(3, size, size, generator=g)
    n = int(torch.randint(1, max_objects + 1, (1,), generator=g))
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks: list[torch.Tensor] = []
    labels: list[int] = []
    for _ in range(n):
        label = int(torch.randint(1, 3, (1,), generator=g))
        w, h = (int(v) for v in torch.randint(size // 6, size // 2, (2,), generator=g))
        x0 = int(torch.randint(0, size - w, (1,), generator=g))
        y0 = int(torch.randint(0, size - h, (1,), generator=g))
        if label == 1:
            m = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        else:
            cx, cy = x0 + w / 2, y0 + h / 2
            m = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1.0
        for prev in masks:  # later shapes occlude earlier ones
            prev &= ~m
        masks.append(m)
        labels.append(label)
        img[:, m] = torch.tensor(_COLOURS[label]).unsqueeze(1)
    mask_t = torch.stack(masks).to(torch.uint8)
    keep = mask_t.flatten(1).sum(1) > 16
    mask_t = mask_t[keep]
    target = {
        "boxes": masks_to_boxes(mask_t.bool()),
        "labels": torch.tensor(labels, dtype=torch.int64)[keep],
        "masks": mask_t,
        "image_id": torch.tensor(seed, dtype=torch.int64),
    }
    return img.clamp_(0, 1), target


class ToyShapes(Dataset[tuple[torch.Tensor, dict[str, torch.Tensor]]]):
    """``n`` toy images of side ``size``; item i is ``toy_sample(seed * 100003 + i, size)``."""

    class_names = tuple(TOY_CLASSES)

    def __init__(self, n: int, size: int = 96, seed: int = 0) -> None:
        self.n, self.size, self.seed = n, size, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return toy_sample(self.seed * 100003 + i, self.size)
