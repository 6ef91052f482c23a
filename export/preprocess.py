"""Letterboxing photos to the export size, and mapping results back to the photo.

Every engine that runs an exported model (ONNX Runtime, TensorRT, INT8 calibration,
the parity check) prepares images here, so they all see identical pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from clothparse.engines.base import Detections

#: Padding colour: the ImageNet mean in uint8 RGB, i.e. zero after the in-graph normalisation,
#: which is what torchvision's own batch padding gives.
PAD_RGB: tuple[int, int, int] = (124, 116, 104)


@dataclass(frozen=True)
class Letterbox:
    """How one photo was placed in the export canvas: canvas = photo * scale + offset."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    photo_hw: tuple[int, int]


def letterbox(
    image: np.ndarray, height: int, width: int, pad_rgb: Sequence[int] = PAD_RGB
) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 [h, w, 3] -> RGB uint8 [height, width, 3], aspect kept, placed top-left.

    The photo is resized (bilinear, PIL) by the largest factor that fits and the rest of
    the canvas is filled with ``pad_rgb``; the returned ``Letterbox`` maps back.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    s = min(height / h, width / w)
    new_h, new_w = min(height, max(1, round(h * s))), min(width, max(1, round(w * s)))
    resized = image if (new_h, new_w) == (h, w) else np.asarray(
        Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    )
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = np.asarray(pad_rgb, np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, Letterbox(new_w / w, new_h / h, 0.0, 0.0, (h, w))


def prepare_batch(
    images: Sequence[np.ndarray], height: int, width: int, batch: int | None = None
) -> tuple[np.ndarray, list[Letterbox]]:
    """Photos -> uint8 [B, 3, height, width] RGB (NCHW) + one Letterbox per photo.

    With ``batch`` given, the array is filled up to that size with padding-colour
    images (an export has a fixed batch); their results are to be ignored.
    """
    boxes_list = [letterbox(im, height, width) for im in images]
    arrays = [a for a, _ in boxes_list]
    n = batch if batch is not None else len(arrays)
    if len(arrays) > n:
        raise ValueError(f"{len(arrays)} images for a batch of {n}")
    if len(arrays) < n:
        filler = np.empty((height, width, 3), np.uint8)
        filler[:] = np.asarray(PAD_RGB, np.uint8)
        arrays += [filler] * (n - len(arrays))
    nchw = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
    return nchw, [lb for _, lb in boxes_list]


def boxes_to_photo(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """float32 [N, 4] xyxy in canvas pixels -> float32 [N, 4] xyxy in photo pixels."""
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    out[:, 0::2] = (out[:, 0::2] - lb.offset_x) / lb.scale_x
    out[:, 1::2] = (out[:, 1::2] - lb.offset_y) / lb.scale_y
    return out


def outputs_to_detections(
    outputs: Sequence[np.ndarray],
    letterboxes: Sequence[Letterbox] | None,
    class_names: Sequence[str],
    score_thresh: float = 0.0,
) -> list[Detections]:
    """Export outputs (boxes, scores, classes, masks, num_detections) -> Detections per image.

    outputs: float32 [B,K,4], float32 [B,K], int [B,K], float32 [B,K,M,M], int [B].
    With ``letterboxes`` the boxes go back to photo pixels (one per real image; padding
    images of a fixed batch beyond ``len(letterboxes)`` are dropped), else they stay in
    canvas pixels. Rows past num_detections and below ``score_thresh`` are dropped.
    """
    boxes, scores, classes, masks, num = outputs
    count = len(letterboxes) if letterboxes is not None else boxes.shape[0]
    dets = []
    for i in range(count):
        n = int(num[i])
        keep = np.asarray(scores[i, :n]) >= score_thresh
        b = np.asarray(boxes[i, :n])[keep]
        if letterboxes is not None:
            b = boxes_to_photo(b, letterboxes[i])
        dets.append(
            Detections(b, scores[i, :n][keep], classes[i, :n][keep], masks[i, :n][keep], tuple(class_names))
        )
    return dets
