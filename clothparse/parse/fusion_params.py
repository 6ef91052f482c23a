"""The parameters of the superpixel fusion (``clothparse.parse.fusion.fuse``) and its input
error, apart from the kernels so that the CLI can read their defaults without importing Numba."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clothparse.errors import CptError


class FusionInputError(CptError, ValueError):
    """Detections or superpixels given to the fusion step are malformed (NaN score, bad shape...)."""


@dataclass(frozen=True)
class FusionParams:
    """Parameters of ``fuse``.

    vote: "area" (coverage fraction), "centroid" (the original's centroid + 4-neighbour
        rule) or "soft" (mean pasted probability); see the module docstring.
    cover_thresh: min fraction (0, 1] of a superpixel a detection must cover (area vote).
    mask_thresh: pasted probabilities >= this are inside a mask, (0, 1].
    grow_colour_thresh: max Euclidean CIE76 distance (< , Lab units) between mean colours
        for growth. 12 is about where two patches stop looking like the same fabric under
        the same light (a just-noticeable difference is ~2.3; shading across one garment
        moves adjacent superpixel means by ~3-8; different garments are mostly > 15).
    body_cover_thresh: min body-union fraction (0, 1] for a superpixel to be inside the body.
    max_iters: max growth rounds (each round grows by one ring of superpixels).
    skin_needs_body: skin colour only counts inside the body (see module docstring); only
        matters with skin_rule="all" (growth never reaches outside the body anyway).
    changed_iou: an instance is "changed" when a superpixel grew into it or the IoU of
        its refined mask with its own binarised pixel mask is below this.
    skin_rule: "growth" (skin superpixels are never grown into clothing but keep a class
        the vote gives them) or "all" (skin superpixels never vote either).
    soft_thresh: min mean pasted probability (0, 1] for the soft vote.
    """

    # Defaults: the best row of the parsing ablation (BENCHMARKS.md, issue 13) at 600x400 and
    # at 256 px -- mIoU, boundary F and pixel accuracy all favour centroid + growth.
    vote: Literal["area", "centroid", "soft"] = "centroid"
    cover_thresh: float = 0.5
    mask_thresh: float = 0.5
    grow_colour_thresh: float = 12.0
    body_cover_thresh: float = 0.5
    max_iters: int = 1000
    skin_needs_body: bool = True
    changed_iou: float = 0.9
    skin_rule: Literal["growth", "all"] = "growth"
    soft_thresh: float = 0.5

    def __post_init__(self) -> None:
        if self.vote not in ("area", "centroid", "soft"):
            raise FusionInputError(f"vote must be 'area', 'centroid' or 'soft', got {self.vote!r}")
        if self.skin_rule not in ("growth", "all"):
            raise FusionInputError(f"skin_rule must be 'growth' or 'all', got {self.skin_rule!r}")
        for name in ("cover_thresh", "mask_thresh", "body_cover_thresh", "soft_thresh"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise FusionInputError(f"{name} must be in (0, 1], got {v}")
        if not 0.0 <= self.grow_colour_thresh < float("inf"):
            raise FusionInputError(f"grow_colour_thresh must be >= 0, got {self.grow_colour_thresh}")
        if self.max_iters < 0:
            raise FusionInputError(f"max_iters must be >= 0, got {self.max_iters}")
        if not 0.0 <= self.changed_iou <= 1.0:
            raise FusionInputError(f"changed_iou must be in [0, 1], got {self.changed_iou}")
