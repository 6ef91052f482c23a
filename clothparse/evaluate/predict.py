"""Run any engine over the images of a COCO ground truth and encode COCO results.

``predict_coco`` feeds photos to an ``Engine`` (torch, ONNX Runtime, TensorRT: whatever
``clothparse.engines.loader.open_engine`` opened) and turns its ``Detections`` into COCO
results with ``detections_to_coco``: each 28x28 mask is pasted on its own with
torchvision's geometry (``clothparse.parse.paste``), binarised at 0.5 and run-length
encoded from its crop, so no image ever holds N full-resolution masks. Images that
cannot be read are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.engines.base import Detections, Engine
from clothparse.errors import ConfigError, DataError
from clothparse.evaluate.coco_eval import GroundTruth
from clothparse.io.images import read_rgb
from clothparse.parse.mask_codec import crop_rle
from clothparse.parse.paste import paste_mask_region

#: Pasted mask probabilities at or above this are foreground (torchvision's convention).
MASK_THRESH = 0.5


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def detections_to_coco(
    image_id: int, det: Detections, image_hw: tuple[int, int], label_to_category: dict[int, int],
    mask_thresh: float = MASK_THRESH,
) -> list[dict[str, Any]]:
    """COCO results of one image: bbox xywh, score, category_id, RLE segmentation (str counts).

    det: detections in the pixels of an ``image_hw`` (rows, cols) image. Detections whose
    label is not in ``label_to_category`` (classes the ground truth does not evaluate) are dropped.
    """
    out: list[dict[str, Any]] = []
    for k in range(len(det)):
        label = int(det.classes[k])
        if label not in label_to_category:
            continue
        y0, _, x0, _, region = paste_mask_region(det.masks[k], det.boxes[k], image_hw)
        x1, y1, x2, y2 = (float(v) for v in det.boxes[k])
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(label_to_category[label]),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(det.scores[k]),
                "segmentation": crop_rle(region >= mask_thresh, y0, x0, image_hw),
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
    engine: Engine,
    gt: GroundTruth,
    image_root: str | Path,
    image_ids: Sequence[int],
    label_to_category: dict[int, int],
    *,
    batch_size: int = 2,
    on_image: Callable[[], None] | None = None,
) -> PredictRun:
    """Run ``engine`` on ``image_root/<file_name>`` for each image id; collect COCO results.

    The engine's own score threshold applies (open it with a low one for AP). An image
    that is missing, unreadable or whose size differs from the annotation (masks would
    not line up) is recorded in ``failed`` and left out of ``image_ids``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    run = PredictRun()
    root = Path(image_root)

    def readable() -> Iterator[tuple[int, np.ndarray]]:
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
            yield int(image_id), img

    for batch in _batches(readable(), batch_size):
        dets = engine.infer([img for _, img in batch])
        for (image_id, img), det in zip(batch, dets, strict=True):
            run.image_ids.append(image_id)
            run.results.extend(detections_to_coco(image_id, det, (img.shape[0], img.shape[1]), label_to_category))
            if on_image:
                on_image()
    return run
