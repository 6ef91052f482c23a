"""COCO bbox and segm AP with pycocotools, plus the per-class AP table.

Ground truth is a COCO instances dict (ModaNet clothing or ``person`` body);
detections are a COCO results list (``image_id``, ``category_id``, ``bbox`` xywh,
``score``, ``segmentation`` as RLE). pycocotools' own printing is silenced; numbers
come back as plain dicts so the CLI can render and serialise them.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from clothparse.data.coco import to_rle
from clothparse.data.coco_json import check_coco, int_field, read_coco_json
from clothparse.errors import DataError

IOU_TYPES = ("bbox", "segm")
#: Names of ``COCOeval.stats`` entries, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


#: Default score threshold for AP: low on purpose, AP needs the low-score tail of detections.
AP_SCORE_THRESH = 0.05


@dataclass
class GroundTruth:
    """A loaded, sanitised COCO ground truth and what was dropped while loading it."""

    coco: COCO
    path: Path | None = None
    #: Problems that were skipped, e.g. {"annotation without image": 3}.
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def category_names(self) -> dict[int, str]:
        """Category id -> name."""
        return {int(c["id"]): str(c["name"]) for c in self.coco.dataset.get("categories", [])}

    def image_ids(self) -> list[int]:
        return sorted(int(i) for i in self.coco.getImgIds())


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """Swallow pycocotools' prints (it writes progress to stdout unconditionally)."""
    return contextlib.redirect_stdout(io.StringIO())


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


#: What evaluation needs of every ground-truth image (pycocotools and mask sizes).
GT_IMAGE_FIELDS = ("id", "height", "width")


def sanitize_gt(dataset: dict[str, Any], path: str | Path | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """Make a COCO instances dict safe for pycocotools; count what was dropped or fixed.

    The dict is first checked as ``read_coco_json`` checks a file (categories needed,
    every image with an integer id, height and width). Then drops annotations whose image
    is not listed and polygons with fewer than three points; fills a missing ``iscrowd``
    (0) and ``area`` (mask area), since COCOeval needs both. Returns (clean copy, counts).
    """
    check_coco(dataset, path, categories=True, image_fields=GT_IMAGE_FIELDS)
    return _sanitize(dataset, path)


def _sanitize(dataset: dict[str, Any], path: str | Path | None) -> tuple[dict[str, Any], dict[str, int]]:
    """``sanitize_gt`` on a dict already checked by ``check_coco`` (categories, GT_IMAGE_FIELDS)."""
    out = {k: v for k, v in dataset.items() if k != "annotations"}
    images = {int(im["id"]): im for im in dataset["images"]}
    dropped: dict[str, int] = {}
    anns: list[dict[str, Any]] = []
    for k, ann in enumerate(dataset.get("annotations", [])):
        # pycocotools indexes annotations by id: without one it raises a bare KeyError.
        ann_id = int_field(ann, "id", f"annotation #{k}", path)
        im = images.get(int(ann.get("image_id", -1)))
        if im is None:
            _bump(dropped, "annotation without image")
            continue
        ann = copy.copy(ann)
        seg = ann.get("segmentation")
        if isinstance(seg, list):
            seg = [p for p in seg if isinstance(p, list) and len(p) >= 6]
            if not seg:
                _bump(dropped, "degenerate polygon")
                continue
            ann["segmentation"] = seg
        elif not isinstance(seg, dict):
            _bump(dropped, "annotation without segmentation")
            continue
        ann.setdefault("iscrowd", 0)
        if "area" not in ann or isinstance(seg, dict):  # an RLE is checked against its image's size
            try:
                rle = to_rle(seg, int(im["height"]), int(im["width"]))
            except DataError as exc:
                raise DataError(f"annotation {ann_id}: {exc}", path) from None
            except (KeyError, TypeError, ValueError):
                raise DataError(f"annotation {ann_id}: malformed segmentation", path) from None
            ann.setdefault("area", float(mask_utils.area(rle)))
        anns.append(ann)
    out["annotations"] = anns
    return out, dropped


def load_gt(path: str | Path) -> GroundTruth:
    """Read a COCO instances file with ``read_coco_json``, sanitise it (``sanitize_gt``), index it."""
    path = Path(path)
    data = read_coco_json(path, categories=True, image_fields=GT_IMAGE_FIELDS)
    clean, dropped = _sanitize(data, path)
    return gt_from_dict(clean, path, dropped)


def gt_from_dict(dataset: dict[str, Any], path: Path | None = None, dropped: dict[str, int] | None = None) -> GroundTruth:
    """Wrap an already clean COCO dict as a GroundTruth (indexes it)."""
    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    return GroundTruth(coco, path, dict(dropped or {}))


def gt_mask(gt: GroundTruth, image_id: int) -> np.ndarray:
    """Union of every ground-truth mask of an image: bool [H, W] (crowd regions included)."""
    im = gt.coco.imgs[image_id]
    h, w = int(im["height"]), int(im["width"])
    anns = gt.coco.imgToAnns.get(image_id, [])
    if not anns:
        return np.zeros((h, w), dtype=bool)
    rle = mask_utils.merge([to_rle(a["segmentation"], h, w) for a in anns])
    return mask_utils.decode(rle).astype(bool)


def check_results(gt: GroundTruth, results: Sequence[dict[str, Any]], path: str | Path | None = None) -> None:
    """Raise DataError when a result uses a category the ground truth does not have or lacks a key."""
    cats = set(gt.category_names)
    for k, r in enumerate(results):
        missing = [key for key in ("image_id", "category_id", "score", "bbox", "segmentation") if key not in r]
        if missing:
            raise DataError(f"result #{k} lacks {', '.join(missing)} (need a COCO results list)", path)
        if int(r["category_id"]) not in cats:
            raise DataError(
                f"result #{k} has category_id {r['category_id']}, not a category of the ground truth "
                f"({sorted(cats)})",
                path,
            )


def _results_coco(gt: GroundTruth, results: list[dict[str, Any]], iou_type: str) -> COCO:
    """pycocotools ``loadRes`` without its crash on an empty list.

    For segm the boxes are dropped first, so that ``loadRes`` takes each detection's
    area (used by the small/medium/large ranges) from its mask, not its box, as the
    ground truth does.
    """
    if results:
        if iou_type == "segm":
            results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        with _quiet():
            return gt.coco.loadRes(copy.deepcopy(results))
    dt = COCO()
    dt.dataset = {
        "images": list(gt.coco.dataset["images"]),
        "categories": copy.deepcopy(gt.coco.dataset["categories"]),
        "annotations": [],
    }
    with _quiet():
        dt.createIndex()
    return dt


def _nan_to_none(x: float) -> float | None:
    """pycocotools marks undefined values with -1; JSON and tables want None."""
    return None if x < 0 or not np.isfinite(x) else float(x)


def _per_class(E: COCOeval) -> dict[int, dict[str, float | None]]:
    """AP (IoU .50:.95) and AP50 per category, area "all", maxDets 100."""
    prec = E.eval["precision"]  # [T, R, K, A, M]; -1 where a category has no ground truth
    a = list(E.params.areaRngLbl).index("all")
    m = list(E.params.maxDets).index(max(E.params.maxDets))
    i50 = int(np.argmin(np.abs(np.asarray(E.params.iouThrs) - 0.5)))
    out: dict[int, dict[str, float | None]] = {}
    for k, cat in enumerate(E.params.catIds):
        p = prec[:, :, k, a, m]
        p50 = prec[i50, :, k, a, m]
        out[int(cat)] = {
            "AP": float(p[p > -1].mean()) if (p > -1).any() else None,
            "AP50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else None,
        }
    return out


@dataclass
class CocoMetrics:
    """Summary stats per IoU type and the per-class table."""

    #: {"bbox": {"AP": .., "AP50": .., ...}, "segm": {...}}; None where undefined.
    summary: dict[str, dict[str, float | None]]
    #: One row per category: id, name, n_gt, bbox_AP, bbox_AP50, segm_AP, segm_AP50.
    per_class: list[dict[str, Any]]
    n_images: int
    n_detections: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "n_detections": self.n_detections,
            **self.summary,
            "per_class": self.per_class,
        }


def coco_evaluate(
    gt: GroundTruth,
    results: list[dict[str, Any]],
    image_ids: Iterable[int] | None = None,
    iou_types: Sequence[str] = IOU_TYPES,
) -> CocoMetrics:
    """COCO AP of ``results`` against ``gt`` over ``image_ids`` (default: all GT images).

    Results on images outside ``image_ids`` are ignored. Segm needs an RLE
    ``segmentation`` in every result; bbox uses ``bbox`` (xywh, pixels).
    """
    ids = sorted(int(i) for i in (gt.image_ids() if image_ids is None else image_ids))
    idset = set(ids)
    results = [r for r in results if int(r["image_id"]) in idset]
    names = gt.category_names
    n_gt = {c: 0 for c in names}
    for ann in gt.coco.dataset["annotations"]:
        if int(ann["image_id"]) in idset and not ann.get("iscrowd", 0):
            n_gt[int(ann["category_id"])] = n_gt.get(int(ann["category_id"]), 0) + 1
    summary: dict[str, dict[str, float | None]] = {}
    rows: dict[int, dict[str, Any]] = {
        c: {"id": c, "name": names[c], "n_gt": n_gt.get(c, 0)} for c in sorted(names)
    }
    for iou_type in iou_types:
        E = COCOeval(gt.coco, _results_coco(gt, results, iou_type), iouType=iou_type)
        E.params.imgIds = ids
        with _quiet():
            E.evaluate()
            E.accumulate()
            E.summarize()
        summary[iou_type] = {n: _nan_to_none(float(v)) for n, v in zip(STAT_NAMES, E.stats, strict=True)}
        for cat, vals in _per_class(E).items():
            rows[cat][f"{iou_type}_AP"] = vals["AP"]
            rows[cat][f"{iou_type}_AP50"] = vals["AP50"]
    return CocoMetrics(summary, list(rows.values()), len(ids), len(results))
