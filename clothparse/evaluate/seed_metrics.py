"""The seed's own metrics: pixel accuracy and IoU of the merged masks.

The original evaluation merged every predicted mask of an image into one
foreground mask (class ignored), did the same for the ground truth, and compared
the two: pixel accuracy = fraction of pixels where they agree; IoU = |P ∩ G| / |P ∪ G|.
We compute both per image and average them over images, at a detection score
threshold (the seed displayed detections with score >= 0.9).

An image where both merged masks are empty has no defined IoU; it is left out of the
IoU mean (and counted), while its pixel accuracy (1.0) is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from clothparse.evaluate.coco_eval import GroundTruth, gt_mask

#: Score thresholds reported by default: the seed's display threshold and 0.5.
DEFAULT_THRESHOLDS = (0.9, 0.5)


def merged_mask_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Pixel accuracy and IoU of two merged masks.

    pred, gt: bool (or 0/1) arrays of the same shape [H, W].
    Returns (pixel_accuracy in [0, 1], IoU in [0, 1] or NaN when both masks are empty).
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape} vs ground truth {gt.shape}")
    if pred.size == 0:
        raise ValueError("empty masks")
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    acc = 1.0 - np.count_nonzero(pred ^ gt) / pred.size
    iou = inter / union if union else float("nan")
    return float(acc), float(iou)


def merged_prediction_mask(
    results: Iterable[dict[str, Any]], height: int, width: int, score_thresh: float
) -> np.ndarray:
    """Union of the RLE masks of the results with score >= score_thresh: bool [height, width]."""
    rles = [r["segmentation"] for r in results if float(r["score"]) >= score_thresh]
    if not rles:
        return np.zeros((height, width), dtype=bool)
    rles = [dict(r, counts=r["counts"].encode("ascii")) if isinstance(r["counts"], str) else r for r in rles]
    for r in rles:
        if tuple(r["size"]) != (height, width):
            raise ValueError(f"result mask size {tuple(r['size'])} differs from the image ({height}, {width})")
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


@dataclass
class SeedMetrics:
    """Accumulates per-image merged-mask metrics at one score threshold."""

    score_thresh: float
    per_image: list[dict[str, Any]] = field(default_factory=list)

    def add(self, image_id: int, pred: np.ndarray, gt: np.ndarray) -> None:
        acc, iou = merged_mask_metrics(pred, gt)
        inter = int(np.count_nonzero(pred & gt))
        union = int(np.count_nonzero(pred | gt))
        self.per_image.append(
            {"image_id": int(image_id), "pixel_acc": acc, "iou": iou, "inter": inter, "union": union}
        )

    def summary(self) -> dict[str, Any]:
        """Means over images; ``pooled_iou`` = total intersection / total union over all images."""
        accs = np.array([p["pixel_acc"] for p in self.per_image], dtype=np.float64)
        ious = np.array([p["iou"] for p in self.per_image], dtype=np.float64)
        defined = ious[np.isfinite(ious)]
        union = sum(p["union"] for p in self.per_image)
        return {
            "score_thresh": self.score_thresh,
            "n_images": len(self.per_image),
            "pixel_acc": float(accs.mean()) if accs.size else None,
            "iou": float(defined.mean()) if defined.size else None,
            "n_iou_undefined": int(ious.size - defined.size),
            "pooled_iou": sum(p["inter"] for p in self.per_image) / union if union else None,
        }


def seed_evaluate(
    gt: GroundTruth,
    results: Sequence[dict[str, Any]],
    image_ids: Iterable[int],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[float, SeedMetrics]:
    """Merged-mask metrics of COCO ``results`` (RLE segm) per image, for each score threshold."""
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(r)
    out = {float(t): SeedMetrics(float(t)) for t in thresholds}
    for image_id in image_ids:
        im = gt.coco.imgs[int(image_id)]
        h, w = int(im["height"]), int(im["width"])
        truth = gt_mask(gt, int(image_id))
        for t, acc in out.items():
            pred = merged_prediction_mask(by_image.get(int(image_id), []), h, w, t)
            acc.add(int(image_id), pred, truth)
    return out
