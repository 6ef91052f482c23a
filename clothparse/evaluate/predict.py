"""Run a torchvision Mask R-CNN over images and turn its output into COCO results.

``predict`` takes any iterable of images (RGB uint8 [H, W, 3] numpy or float32
[3, H, W] tensors in [0, 1]) and yields one ``Prediction`` per image, in order,
batched and without gradients. ``prediction_to_coco`` encodes one prediction as COCO
results (RLE masks binarised at 0.5). ``predict_coco`` runs a model over the images of
a COCO ground truth, skipping (and reporting) images that cannot be read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from clothparse.errors import ConfigError, DataError
from clothparse.evaluate.coco_eval import AP_SCORE_THRESH, GroundTruth
from clothparse.io.images import read_rgb

#: Detections below this score still count for AP (precision-recall needs the tail).
MASK_THRESH = 0.5


@dataclass
class Prediction:
    """Detections of one image at full resolution.

    boxes:  float32 [N, 4] xyxy, image pixels.
    scores: float32 [N] in [0, 1].
    labels: int64 [N], 1-based into the model's class names.
    masks:  float32 [N, H, W] pasted mask probabilities in [0, 1].
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


@contextlib.contextmanager
def score_threshold(model: torch.nn.Module, thresh: float | None) -> Iterator[None]:
    """Temporarily set a torchvision detector's ``roi_heads.score_thresh`` (None = leave it)."""
    heads = getattr(model, "roi_heads", None)
    if thresh is None or heads is None:
        yield
        return
    old = heads.score_thresh
    heads.score_thresh = float(thresh)
    try:
        yield
    finally:
        heads.score_thresh = old


def to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 [H, W, 3] -> float32 [3, H, W] in [0, 1]; a [3, H, W] tensor passes through."""
    if isinstance(image, torch.Tensor):
        return image.float()
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict(
    model: torch.nn.Module,
    images: Iterable[np.ndarray | torch.Tensor],
    *,
    batch_size: int = 2,
    device: torch.device | str = "cpu",
    score_thresh: float | None = None,
) -> Iterator[Prediction]:
    """Yield one Prediction per image, in order. The model is put in eval mode on ``device``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    dev = torch.device(device)
    model.eval().to(dev)
    with torch.inference_mode(), score_threshold(model, score_thresh):
        for batch in _batches(images, batch_size):
            outs = model([to_tensor(im).to(dev) for im in batch])
            for out in outs:
                masks = out["masks"]
                if masks.ndim == 4:
                    masks = masks[:, 0]
                yield Prediction(
                    out["boxes"].float().cpu().numpy(),
                    out["scores"].float().cpu().numpy(),
                    out["labels"].cpu().numpy().astype(np.int64),
                    masks.float().cpu().numpy(),
                )


def prediction_to_coco(
    image_id: int, pred: Prediction, label_to_category: dict[int, int], mask_thresh: float = MASK_THRESH
) -> list[dict[str, Any]]:
    """COCO results of one image: bbox xywh, score, category_id, RLE segmentation (str counts).

    Masks are binarised at ``mask_thresh``. Detections whose label is not in
    ``label_to_category`` (classes the ground truth does not evaluate) are dropped.
    """
    out: list[dict[str, Any]] = []
    keep = np.array([int(lab) in label_to_category for lab in pred.labels], dtype=bool)
    if not keep.any():
        return out
    binary = np.asfortranarray((pred.masks[keep] >= mask_thresh).transpose(1, 2, 0).astype(np.uint8))
    rles = mask_utils.encode(binary)
    for k, rle in zip(np.flatnonzero(keep), rles, strict=True):
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[k])
        label = int(pred.labels[k])
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(label_to_category[label]),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(pred.scores[k]),
                "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            }
        )
    return out


def label_mapping(class_names: Sequence[str], gt: GroundTruth, allow_extra: bool = False) -> dict[int, int]:
    """Model label (1-based into class_names) -> ground-truth category id, matched by name.

    Raises ConfigError when the model's class names and the annotation file's
    categories are not the same set of names. With ``allow_extra`` the model may know
    more classes (a COCO model scored on ``person`` only); those labels map to nothing.
    """
    by_name = {name: cid for cid, name in gt.category_names.items()}
    model_names, gt_names = list(class_names), set(by_name)
    only_model = sorted(set(model_names) - gt_names)
    only_gt = sorted(gt_names - set(model_names))
    if only_gt or (only_model and not allow_extra):
        raise ConfigError(
            f"{gt.path}: model classes do not match the annotation categories "
            f"(only in model: {', '.join(only_model) or '-'}; only in annotations: {', '.join(only_gt) or '-'})"
        )
    for n in gt_names:
        if model_names.count(n) > 1:
            raise ConfigError(f"{gt.path}: the model has class {n!r} more than once")
    return {i + 1: by_name[n] for i, n in enumerate(model_names) if n in by_name}


@dataclass
class PredictRun:
    """COCO results of a model over a ground truth, and the images it could not read."""

    results: list[dict[str, Any]] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    #: (image id, one-line error) of unreadable or mismatched images.
    failed: list[tuple[int, str]] = field(default_factory=list)


def predict_coco(
    model: torch.nn.Module,
    gt: GroundTruth,
    image_root: str | Path,
    image_ids: Sequence[int],
    label_to_category: dict[int, int],
    *,
    batch_size: int = 2,
    device: torch.device | str = "cpu",
    score_thresh: float | None = AP_SCORE_THRESH,
    on_image: Callable[[], None] | None = None,
) -> PredictRun:
    """Run ``model`` on ``image_root/<file_name>`` for each image id; collect COCO results.

    An image that is missing, unreadable or whose size differs from the annotation
    (masks would not line up) is recorded in ``failed`` and left out of ``image_ids``.
    """
    run = PredictRun()
    root = Path(image_root)

    def readable() -> Iterator[np.ndarray]:
        for image_id in image_ids:
            info = gt.coco.imgs[int(image_id)]
            path = root / str(info["file_name"])
            try:
                img = read_rgb(path)
                if img.shape[:2] != (int(info["height"]), int(info["width"])):
                    raise DataError(
                        f"image is {img.shape[1]}x{img.shape[0]} but the annotations say "
                        f"{info['width']}x{info['height']}",
                        path,
                    )
            except DataError as exc:
                run.failed.append((int(image_id), str(exc)))
                if on_image:
                    on_image()
                continue
            run.image_ids.append(int(image_id))
            yield img

    # ``predict`` yields in input order, so the k-th prediction belongs to run.image_ids[k].
    for k, pred in enumerate(predict(model, readable(), batch_size=batch_size, device=device, score_thresh=score_thresh)):
        run.results.extend(prediction_to_coco(run.image_ids[k], pred, label_to_category))
        if on_image:
            on_image()
    return run
