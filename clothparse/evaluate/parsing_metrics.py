"""Parsing-map metrics: confusion matrix over labels 0-14, per-class IoU, mIoU, pixel accuracy.

Label maps are uint8 [H, W] arrays with values 0 (background), 1-13 (ModaNet
clothing) and 14 (skin/body), stored as palette PNGs (``clothparse.taxonomy``).
The confusion matrix accumulates over many images: rows are ground truth, columns
prediction. mIoU averages the IoU of the classes present, i.e. with a non-empty
union (in the ground truth or the prediction of some image): a class only ever
predicted scores IoU 0 and counts; a class absent from both is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clothparse.errors import DataError
from clothparse.taxonomy import NUM_PARSING_LABELS, PARSING_LABELS


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_labels: int = NUM_PARSING_LABELS) -> np.ndarray:
    """Confusion matrix int64 [L, L]: entry [g, p] counts pixels with ground truth g and prediction p.

    gt, pred: integer label maps of the same shape, values in [0, num_labels).
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"label maps differ in shape: ground truth {gt.shape} vs prediction {pred.shape}")
    g = gt.reshape(-1).astype(np.int64)
    p = pred.reshape(-1).astype(np.int64)
    for name, arr in (("ground truth", g), ("prediction", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_labels):
            raise ValueError(f"{name} has labels outside 0-{num_labels - 1}: {int(arr.min())}..{int(arr.max())}")
    return np.bincount(g * num_labels + p, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU float64 [L] from a confusion matrix; NaN where the class's union is empty."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)


@dataclass
class ParsingMetrics:
    """Accumulates a confusion matrix over images; derives IoU, mIoU and pixel accuracy."""

    num_labels: int = NUM_PARSING_LABELS
    cm: np.ndarray = field(default_factory=lambda: np.zeros((NUM_PARSING_LABELS, NUM_PARSING_LABELS), np.int64))
    n_images: int = 0
    #: Ground-truth stems with no prediction file (not added to the matrix).
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cm.shape != (self.num_labels, self.num_labels):
            self.cm = np.zeros((self.num_labels, self.num_labels), np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one image: gt, pred uint8 [H, W] label maps of equal shape."""
        self.cm += confusion_matrix(gt, pred, self.num_labels)
        self.n_images += 1

    @property
    def per_class_iou(self) -> np.ndarray:
        return iou_from_confusion(self.cm)

    @property
    def miou(self) -> float:
        """Mean IoU over the classes present; NaN when nothing was added."""
        iou = self.per_class_iou
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    @property
    def pixel_acc(self) -> float:
        total = self.cm.sum()
        return float(np.trace(self.cm) / total) if total else float("nan")

    def to_dict(self, names: Sequence[str] = PARSING_LABELS) -> dict[str, Any]:
        iou = self.per_class_iou
        gt_pixels = self.cm.sum(axis=1)
        return {
            "n_images": self.n_images,
            "n_missing": len(self.missing),
            "missing": list(self.missing),
            "miou": _none_if_nan(self.miou),
            "pixel_acc": _none_if_nan(self.pixel_acc),
            "per_class": [
                {"label": k, "name": names[k], "iou": _none_if_nan(float(iou[k])), "gt_pixels": int(gt_pixels[k])}
                for k in range(self.num_labels)
            ],
            "confusion": self.cm.tolist(),
        }


def _none_if_nan(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def read_label_map(path: str | Path, num_labels: int = NUM_PARSING_LABELS) -> np.ndarray:
    """Read a label PNG (palette "P" or grayscale "L"; pixel value = label) as uint8 [H, W].

    Raises DataError naming the file when it is missing, not an 8-bit single-channel
    image, or holds values >= num_labels.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise DataError(f"label map must be a palette or grayscale PNG, got mode {img.mode}", path)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError("label map not found", path) from None
    except OSError as exc:
        raise DataError(f"cannot read label map ({exc})", path) from None
    if arr.size and int(arr.max()) >= num_labels:
        raise DataError(f"label map has value {int(arr.max())}, outside 0-{num_labels - 1}", path)
    return arr


def evaluate_parsing_dir(
    pred_dir: str | Path, gt_dir: str | Path, stems: Sequence[str], suffix: str = "_labels.png"
) -> ParsingMetrics:
    """Compare ``pred_dir/<stem><suffix>`` against ``gt_dir/<stem>.png`` for every stem.

    A missing prediction is recorded in ``missing`` and skipped; a missing ground
    truth or a size mismatch raises DataError naming the file.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if not pred_dir.is_dir():
        raise DataError("prediction folder not found", pred_dir)
    metrics = ParsingMetrics()
    for stem in stems:
        pred_path = pred_dir / f"{stem}{suffix}"
        if not pred_path.is_file():
            metrics.missing.append(stem)
            continue
        gt = read_label_map(gt_dir / f"{stem}.png")
        pred = read_label_map(pred_path)
        if gt.shape != pred.shape:
            raise DataError(
                f"size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth "
                f"{gt_dir / f'{stem}.png'} ({gt.shape[1]}x{gt.shape[0]})",
                pred_path,
            )
        metrics.add(gt, pred)
    return metrics
