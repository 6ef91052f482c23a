"""Training augmentation on ``(image, target)`` pairs: horizontal flip and scale jitter.

Images are float32 ``[3, H, W]`` in [0, 1], RGB; targets are the detection dicts of
``clothparse.data.dataset`` (``boxes`` float32 ``[N, 4]`` xyxy, ``masks`` uint8
``[N, H, W]``, ``labels`` int64 ``[N]``). After a transform, boxes are recomputed from
the transformed masks, so boxes and masks always agree; instances whose mask vanished
(tiny objects shrunk below a pixel) are dropped together with their labels.

Randomness: with ``seed=None`` draws come from torch's global generator (which the
DataLoader seeds per worker). With a seed, a private ``torch.Generator`` is seeded with
``seed``, the DDP rank and the DataLoader worker id, so every process draws its own
stream and a run is repeatable for a given process and worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import get_worker_info

from clothparse.data.dataset import Target, drop_degenerate, masks_to_boxes
from clothparse.errors import ConfigError

PairTransform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


class Compose:
    """Apply pair transforms in order."""

    def __init__(self, transforms: Sequence[PairTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


def hflip(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Mirror left-right: image ``[3,H,W]``, masks ``[N,H,W]`` and xyxy boxes (x → W - x)."""
    width = image.shape[-1]
    out = dict(target)
    if "masks" in target:
        out["masks"] = target["masks"].flip(-1)
    if "boxes" in target:
        boxes = target["boxes"].clone()
        boxes[:, 0] = width - target["boxes"][:, 2]
        boxes[:, 2] = width - target["boxes"][:, 0]
        out["boxes"] = boxes
    return image.flip(-1), out


def rescale(image: torch.Tensor, target: Target, factor: float) -> tuple[torch.Tensor, Target]:
    """Resize by ``factor``: image bilinear (antialiased when shrinking), masks nearest.

    Boxes are recomputed from the resized masks; empty instances are dropped.
    """
    h, w = image.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if size == (h, w):
        return image, target
    out_img = F.interpolate(
        image[None], size=size, mode="bilinear", align_corners=False, antialias=factor < 1
    )[0].clamp_(0.0, 1.0)
    out = dict(target)
    if "masks" in target:
        masks = target["masks"]
        if masks.shape[0] == 0:  # interpolate refuses empty inputs
            out["masks"] = masks.new_zeros((0, *size))
        else:
            out["masks"] = F.interpolate(masks[None], size=size, mode="nearest")[0]
        out["boxes"] = masks_to_boxes(out["masks"])
        out = drop_degenerate(out)
    elif "boxes" in target:
        out["boxes"] = target["boxes"] * torch.tensor([size[1] / w, size[0] / h] * 2)
    return out_img, out


class TrainTransform:
    """Random horizontal flip (probability ``hflip_prob``) then scale jitter.

    The scale factor is drawn uniformly from ``scale_range``; ``(1, 1)`` turns it off.
    """

    def __init__(
        self,
        hflip_prob: float = 0.5,
        scale_range: tuple[float, float] = (0.8, 1.2),
        seed: int | None = None,
    ) -> None:
        lo, hi = scale_range
        if not 0.0 <= hflip_prob <= 1.0:
            raise ConfigError(f"hflip_prob must be in [0, 1], got {hflip_prob}")
        if not 0.0 < lo <= hi:
            raise ConfigError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.hflip_prob = hflip_prob
        self.scale_range = (float(lo), float(hi))
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._stream = -1

    def _rng(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        info = get_worker_info()
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        stream = ((self.seed * 1_000_003 + rank) * 1009 + (0 if info is None else info.id)) % 2**63
        # a generator copied into a worker from its parent would repeat the parent's
        # draws in every worker, so each (rank, worker) makes its own on first use
        if self._generator is None or self._stream != stream:
            self._generator = torch.Generator().manual_seed(stream)
            self._stream = stream
        return self._generator

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        gen = self._rng()
        draws = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        if draws[0] < self.hflip_prob:
            image, target = hflip(image, target)
        lo, hi = self.scale_range
        if hi > lo:
            image, target = rescale(image, target, lo + (hi - lo) * draws[1])
        return image, target
