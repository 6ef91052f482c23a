"""The preprocessing contract: how a photo becomes the pixels every engine sees.

One rule for the torch engine, the export wrapper, ONNX Runtime, TensorRT, int8
calibration and parity, so that the same photo reaches every engine as the same array:

1. **Scale** as torchvision's ``GeneralizedRCNNTransform`` does at inference: the short
   side goes to ``min_size`` unless that would push the long side past ``max_size``
   (``scale = min(min_size / short, max_size / long)``, output size
   ``int(side * scale)``, as torchvision computes them), so the model sees photos at the scale it was trained at.
   If the canvas is smaller than that (an export made for one orientation), the photo
   is shrunk further until it fits.
2. **Resize** with bilinear interpolation (``align_corners=False``, no antialiasing:
   torchvision's own resize, also used in training), rounded to uint8.
3. **Place** the resized photo at the top-left of a fixed ``height x width`` canvas and
   fill the rest with the ImageNet mean (zero after the in-model normalisation, which is
   what torchvision's batch padding gives).
4. **Tell** the model the photo's region: ``image_sizes`` int32 ``[B, 2]`` (rows, cols of
   the resized photo), which bounds box clipping exactly as torchvision's ``image_sizes``.

The default canvas is square, ``max_size`` rounded up to the stride (32), so photos of
every aspect ratio fit at torchvision's scale. This module imports torch lazily and
depends on neither ``clothparse.engines`` nor ``clothparse.export``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Padding colour: the ImageNet mean in uint8 RGB, i.e. ~0 after the in-model normalisation.
PAD_RGB: tuple[int, int, int] = (124, 116, 104)
#: Canvas sides are multiples of this (the coarsest FPN stride before P6's max-pool).
STRIDE = 32


def round_up(value: int, multiple: int = STRIDE) -> int:
    return int(math.ceil(value / multiple) * multiple)


@dataclass(frozen=True)
class CanvasSpec:
    """The fixed input size of a model and the resize rule it was trained with.

    height, width: canvas size in pixels (multiples of ``STRIDE``).
    min_size, max_size: torchvision's ``transform.min_size[-1]`` and ``max_size``.
    """

    height: int
    width: int
    min_size: int
    max_size: int

    def __post_init__(self) -> None:
        if self.height % STRIDE or self.width % STRIDE or min(self.height, self.width) < 2 * STRIDE:
            raise ValueError(f"canvas must be multiples of {STRIDE} and >= {2 * STRIDE}, got {self.height}x{self.width}")
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {self.min_size}/{self.max_size}")

    @classmethod
    def for_model(cls, min_size: int, max_size: int, height: int | None = None, width: int | None = None) -> CanvasSpec:
        """The default canvas of a model trained at ``min_size``/``max_size``: square,
        ``max_size`` rounded up to the stride, unless ``height``/``width`` are given."""
        side = round_up(max_size)
        return cls(int(height or side), int(width or side), int(min_size), int(max_size))

    @property
    def fits_all(self) -> bool:
        """True when every photo gets exactly torchvision's scale (no extra shrinking)."""
        return min(self.height, self.width) >= self.max_size

    def resized_size(self, h: int, w: int) -> tuple[int, int]:
        """(rows, cols) of an ``h x w`` photo after step 1 of the module docstring."""
        if h < 1 or w < 1:
            raise ValueError(f"empty image {h}x{w}")
        # Python floats and int() truncation, as torchvision's eager resize and
        # F.interpolate(recompute_scale_factor=True) compute the output size.
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w))
        nh, nw = int(h * scale), int(w * scale)
        if nh > self.height or nw > self.width:
            fit = min(self.height / h, self.width / w)
            nh, nw = min(self.height, math.floor(h * fit)), min(self.width, math.floor(w * fit))
        return max(nh, 1), max(nw, 1)


@dataclass(frozen=True)
class Placement:
    """Where one photo sits in the canvas: canvas pixel = photo pixel * scale (top-left)."""

    photo_hw: tuple[int, int]
    resized_hw: tuple[int, int]

    @property
    def scale_y(self) -> float:
        return self.resized_hw[0] / self.photo_hw[0]

    @property
    def scale_x(self) -> float:
        return self.resized_hw[1] / self.photo_hw[1]


def resize_bilinear(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """RGB uint8 [h, w, 3] -> RGB uint8 [rows, cols, 3], torchvision's bilinear resize.

    ``F.interpolate(..., mode="bilinear", align_corners=False)`` with the output size
    given (what torchvision's ``recompute_scale_factor=True`` amounts to), rounded to uint8.
    """
    if image.shape[:2] == (rows, cols):
        return image
    import torch
    import torch.nn.functional as F

    # PIL-backed arrays are read-only; torch warns on those, so copy only when needed.
    t = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)[None].float()
    out = F.interpolate(t, size=(rows, cols), mode="bilinear", align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def to_canvas(image: np.ndarray, spec: CanvasSpec, out: np.ndarray | None = None) -> tuple[np.ndarray, Placement]:
    """RGB uint8 [h, w, 3] photo -> (RGB uint8 [H, W, 3] canvas, Placement); steps 1-3.

    ``out``: an existing uint8 [H, W, 3] array to fill (no allocation).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {got}")
    h, w = image.shape[:2]
    nh, nw = spec.resized_size(h, w)
    canvas = np.empty((spec.height, spec.width, 3), np.uint8) if out is None else out
    canvas[:nh, :nw] = resize_bilinear(image, nh, nw)
    canvas[nh:, :] = PAD_RGB
    canvas[:nh, nw:] = PAD_RGB
    return canvas, Placement((h, w), (nh, nw))


def prepare_batch(
    images: Sequence[np.ndarray], spec: CanvasSpec, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[Placement]]:
    """Photos -> (uint8 [B, 3, H, W] RGB canvases, int32 [B, 2] image_sizes, placements).

    With ``batch`` given the arrays are filled up to that size with padding-colour canvases
    (an export has a fixed batch) whose results are to be ignored; ``placements`` has one
    entry per real photo.
    """
    n = len(images) if batch is None else int(batch)
    if len(images) > n:
        raise ValueError(f"{len(images)} images for a batch of {n}")
    nhwc = np.empty((n, spec.height, spec.width, 3), np.uint8)
    sizes = np.empty((n, 2), np.int32)
    placements = []
    for i, im in enumerate(images):
        _, pl = to_canvas(im, spec, out=nhwc[i])
        placements.append(pl)
        sizes[i] = pl.resized_hw
    nhwc[len(images) :] = PAD_RGB
    sizes[len(images) :] = (spec.height, spec.width)
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), sizes, placements


def boxes_to_photo(boxes: np.ndarray, placement: Placement) -> np.ndarray:
    """float32 [N, 4] xyxy in canvas pixels -> float32 [N, 4] xyxy in photo pixels.

    Multiplies by original / resized size per axis in float32, as torchvision's
    ``resize_boxes`` does.
    """
    (h, w), (nh, nw) = placement.photo_hw, placement.resized_hw
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    out[:, 0::2] *= np.float32(w) / np.float32(nw)
    out[:, 1::2] *= np.float32(h) / np.float32(nh)
    return out
