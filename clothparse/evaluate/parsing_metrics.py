"""Parsing-map metrics: confusion matrix over labels 0-14, per-class IoU, mIoU, pixel accuracy,
and the boundary F-score.

Label maps are uint8 [H, W] arrays with values 0 (background), 1-13 (ModaNet
clothing) and 14 (skin/body), stored as palette PNGs (``clothparse.taxonomy``).
The confusion matrix accumulates over many images: rows are ground truth, columns
prediction. mIoU averages the IoU of the classes present, i.e. with a non-empty
union (in the ground truth or the prediction of some image): a class only ever
predicted scores IoU 0 and counts; a class absent from both is left out.

Boundary F-score (as the DAVIS / BSDS boundary measure, at a tolerance of ``tol``
pixels, 2 by default): the boundary of class k in a map is the set of its pixels with a
4-neighbour of another label (the image edge is no boundary). A predicted boundary pixel
is a hit when some ground-truth boundary pixel of the same class lies within Euclidean
distance ``tol`` (precision), and a ground-truth boundary pixel is found when some
predicted one lies within ``tol`` (recall). Counts pool over images like the confusion
matrix; F = 2PR / (P + R) per class. A class with boundary pixels on one side only scores
F 0; a class with none on either side (absent, or filling every image it is in) is left
out of the mean boundary F, which averages the classes present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from clothparse.errors import DataError
from clothparse.taxonomy import NUM_PARSING_LABELS, PARSING_LABELS

#: Default boundary tolerance in pixels.
BOUNDARY_TOL = 2.0


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


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels of an integer label map [H, W] with a 4-neighbour of another label.

    Each side of an edge between two regions is marked (the pixels of both labels); the
    image edge is not a boundary. The boundary of class k is ``b & (labels == k)``.
    """
    labels = np.asarray(labels)
    b = np.zeros(labels.shape, dtype=bool)
    dv = labels[1:, :] != labels[:-1, :]
    b[1:, :] |= dv
    b[:-1, :] |= dv
    dh = labels[:, 1:] != labels[:, :-1]
    b[:, 1:] |= dh
    b[:, :-1] |= dh
    return b


def _matched(src: np.ndarray, dst: np.ndarray, tol: float) -> int:
    """Pixels of bool [h, w] ``src`` within Euclidean distance ``tol`` of a pixel of ``dst`` (non-empty)."""
    dist = ndimage.distance_transform_edt(~dst)
    return int(np.count_nonzero(dist[src] <= tol))


def boundary_counts(
    gt: np.ndarray, pred: np.ndarray, num_labels: int = NUM_PARSING_LABELS, tol: float = BOUNDARY_TOL
) -> np.ndarray:
    """Boundary match counts int64 [L, 4] of one image: per class (hit predicted boundary
    pixels, predicted boundary pixels, found ground-truth boundary pixels, ground-truth
    boundary pixels); see the module docstring.

    gt, pred: integer label maps [H, W] of the same shape, values in [0, num_labels).
    tol: tolerance in pixels (>= 0). Distances come from an exact Euclidean distance
    transform over the bounding box of the class's two boundaries.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"label maps differ in shape: ground truth {gt.shape} vs prediction {pred.shape}")
    if tol < 0:
        raise ValueError(f"boundary tolerance must be >= 0, got {tol}")
    out = np.zeros((num_labels, 4), np.int64)
    bg, bp = label_boundaries(gt), label_boundaries(pred)
    classes = np.union1d(np.unique(gt[bg]), np.unique(pred[bp])).astype(np.int64)
    for k in classes:
        if not 0 <= k < num_labels:
            raise ValueError(f"label {k} outside 0-{num_labels - 1}")
        g, p = bg & (gt == k), bp & (pred == k)
        n_g, n_p = int(np.count_nonzero(g)), int(np.count_nonzero(p))
        out[k, 1], out[k, 3] = n_p, n_g
        if n_g and n_p:
            rows = np.flatnonzero((g | p).any(axis=1))
            cols = np.flatnonzero((g | p).any(axis=0))
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            out[k, 0] = _matched(p[box], g[box], tol)
            out[k, 2] = _matched(g[box], p[box], tol)
    return out


def boundary_prf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F) float64 [L] each from pooled ``boundary_counts`` [L, 4].

    NaN for a class with no boundary pixel on either side. With boundary pixels on one
    side only: precision 0 (predicted only) or recall 0 (ground truth only), F 0.
    """
    c = np.asarray(counts, dtype=np.float64)
    hit_p, n_p, hit_g, n_g = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    present = (n_p + n_g) > 0
    prec = np.where(n_p > 0, hit_p / np.maximum(n_p, 1.0), 1.0)
    rec = np.where(n_g > 0, hit_g / np.maximum(n_g, 1.0), 1.0)
    denom = prec + rec
    f = np.where(denom > 0, 2.0 * prec * rec / np.where(denom > 0, denom, 1.0), 0.0)
    nan = np.full_like(f, np.nan)
    return np.where(present, prec, nan), np.where(present, rec, nan), np.where(present, f, nan)


@dataclass
class ParsingMetrics:
    """Accumulates a confusion matrix and boundary counts over images; derives IoU, mIoU,
    pixel accuracy and the boundary F-score at ``boundary_tol`` pixels."""

    num_labels: int = NUM_PARSING_LABELS
    cm: np.ndarray = field(default_factory=lambda: np.zeros((NUM_PARSING_LABELS, NUM_PARSING_LABELS), np.int64))
    n_images: int = 0
    #: Ground-truth stems with no prediction file (not added to the matrix).
    missing: list[str] = field(default_factory=list)
    #: Boundary tolerance in pixels.
    boundary_tol: float = BOUNDARY_TOL
    #: Pooled ``boundary_counts``, int64 [L, 4].
    bcounts: np.ndarray = field(default_factory=lambda: np.zeros((NUM_PARSING_LABELS, 4), np.int64))

    def __post_init__(self) -> None:
        if self.cm.shape != (self.num_labels, self.num_labels):
            self.cm = np.zeros((self.num_labels, self.num_labels), np.int64)
        if self.bcounts.shape != (self.num_labels, 4):
            self.bcounts = np.zeros((self.num_labels, 4), np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one image: gt, pred uint8 [H, W] label maps of equal shape."""
        self.cm += confusion_matrix(gt, pred, self.num_labels)
        self.bcounts += boundary_counts(gt, pred, self.num_labels, self.boundary_tol)
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

    @property
    def per_class_boundary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boundary (precision, recall, F) float64 [L] each; NaN for a class without boundaries."""
        return boundary_prf(self.bcounts)

    @property
    def boundary_f(self) -> float:
        """Mean boundary F over the classes present; NaN when none is."""
        f = self.per_class_boundary[2]
        return float(np.nanmean(f)) if np.isfinite(f).any() else float("nan")

    def to_dict(self, names: Sequence[str] = PARSING_LABELS) -> dict[str, Any]:
        iou = self.per_class_iou
        bp, br, bf = self.per_class_boundary
        gt_pixels = self.cm.sum(axis=1)
        return {
            "n_images": self.n_images,
            "n_missing": len(self.missing),
            "missing": list(self.missing),
            "miou": _none_if_nan(self.miou),
            "pixel_acc": _none_if_nan(self.pixel_acc),
            "boundary_f": _none_if_nan(self.boundary_f),
            "boundary_tol_px": self.boundary_tol,
            "per_class": [
                {
                    "label": k, "name": names[k], "iou": _none_if_nan(float(iou[k])), "gt_pixels": int(gt_pixels[k]),
                    "boundary_f": _none_if_nan(float(bf[k])),
                    "boundary_precision": _none_if_nan(float(bp[k])),
                    "boundary_recall": _none_if_nan(float(br[k])),
                }
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
    pred_dir: str | Path, gt_dir: str | Path, stems: Sequence[str], suffix: str = "_labels.png",
    boundary_tol: float = BOUNDARY_TOL,
) -> ParsingMetrics:
    """Compare ``pred_dir/<stem><suffix>`` against ``gt_dir/<stem>.png`` for every stem
    (boundary F-score at ``boundary_tol`` pixels).

    A missing prediction is recorded in ``missing`` and skipped; a missing ground
    truth or a size mismatch raises DataError naming the file.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if not pred_dir.is_dir():
        raise DataError("prediction folder not found", pred_dir)
    metrics = ParsingMetrics(boundary_tol=boundary_tol)
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
