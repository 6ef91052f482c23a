"""Load a COCO-format instance annotation file (ModaNet, synthetic, body) with its images.

ModaNet's files have known quirks: annotations that point at no image, images with no
annotations, degenerate polygons, missing or corrupt photos, boxes outside the image.
``load_coco`` never crashes on those: it drops what cannot be used, counts every case in
a ``LoadReport`` and keeps the rest. Only a file that is not a COCO instance file at all
(not JSON, no ``images`` list, no categories) raises ``DataError`` naming the file.

The file itself is read by ``clothparse.data.coco_json.read_coco_json``, the one reader of
COCO annotation files.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from clothparse.data.coco_json import read_coco_json
from clothparse.errors import DataError

#: Tolerance (pixels) before a box counts as reaching outside its image.
BBOX_TOLERANCE = 1.0
#: How many example ids/names each report category keeps for the message.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ImageRecord:
    """One image entry: COCO ``id``, ``file_name``, size in pixels, and its path on disk."""

    id: int
    file_name: str
    width: int
    height: int
    path: Path | None


@dataclass(frozen=True)
class AnnotationRecord:
    """One usable instance annotation.

    ``bbox`` is COCO ``[x, y, w, h]`` in pixels, clipped to the image. ``segmentation``
    is either a list of polygons (each a flat ``[x0, y0, x1, y1, ...]`` list, degenerate
    ones removed) or an RLE dict ``{"size": [h, w], "counts": str | bytes | list[int]}``.
    """

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    segmentation: list[list[float]] | dict[str, Any]
    area: float
    iscrowd: bool


@dataclass
class LoadReport:
    """Counts of every data problem met while loading; nothing here stops the load."""

    source: str = ""
    images: int = 0
    annotations: int = 0
    crowd: int = 0
    missing_files: int = 0
    bad_image_records: int = 0
    duplicate_image_ids: int = 0
    duplicate_annotation_ids: int = 0
    unknown_image: int = 0
    unknown_category: int = 0
    degenerate_polygons: int = 0
    degenerate_annotations: int = 0
    size_mismatch: int = 0
    bbox_outside: int = 0
    empty_images: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    _LABELS = (
        ("missing_files", "images missing on disk (dropped)"),
        ("bad_image_records", "image records without a usable id/file_name/size (dropped)"),
        ("duplicate_image_ids", "duplicate image ids (later ones dropped)"),
        ("duplicate_annotation_ids", "duplicate annotation ids (later ones dropped)"),
        ("unknown_image", "annotations whose image_id is not a listed image (dropped)"),
        ("unknown_category", "annotations with an unknown category_id (dropped)"),
        ("degenerate_polygons", "degenerate polygons (< 3 points or zero area, removed)"),
        ("degenerate_annotations", "annotations with no usable segmentation (dropped)"),
        ("size_mismatch", "RLE masks whose size differs from their image (dropped)"),
        ("bbox_outside", "boxes reaching outside their image (clipped)"),
        ("empty_images", "images with no annotations"),
    )

    def note(self, what: str, example: object) -> None:
        """Count one occurrence of problem ``what`` and remember a few examples."""
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples[what]) < MAX_EXAMPLES:
            self.examples[what].append(str(example))

    @property
    def problems(self) -> int:
        """Total count of problems (images without annotations included)."""
        return sum(getattr(self, key) for key, _ in self._LABELS)

    def lines(self) -> list[str]:
        """Human-readable summary: one line of totals, then one line per problem seen."""
        out = [
            f"{self.source}: {self.images} images, {self.annotations} annotations"
            f" ({self.crowd} crowd)"
        ]
        for key, label in self._LABELS:
            n = getattr(self, key)
            if n:
                ex = ", ".join(self.examples.get(key, []))
                out.append(f"  {n} {label}" + (f"; e.g. {ex}" if ex else ""))
        return out


@dataclass
class CocoIndex:
    """A loaded annotation file: usable images, their annotations, categories, report."""

    path: Path
    images: list[ImageRecord]
    categories: list[dict[str, Any]]
    report: LoadReport
    _by_image: dict[int, list[AnnotationRecord]]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Category names ordered by category id."""
        return tuple(str(c["name"]) for c in self.categories)

    @property
    def category_ids(self) -> tuple[int, ...]:
        return tuple(int(c["id"]) for c in self.categories)

    def annotations_for(self, image_id: int, include_crowd: bool = False) -> list[AnnotationRecord]:
        """Usable annotations of one image; crowd regions only when ``include_crowd``."""
        anns = self._by_image.get(int(image_id), [])
        return anns if include_crowd else [a for a in anns if not a.iscrowd]


def _categories(
    data: Mapping[str, Any], given: Sequence[str] | Sequence[Mapping[str, Any]] | None, path: Path
) -> list[dict[str, Any]]:
    """Normalise categories to ``[{"id", "name"}]`` sorted by id (given ones win over the file's)."""
    raw: Sequence[Any] = given if given is not None else data.get("categories") or []
    cats: list[dict[str, Any]] = []
    for i, c in enumerate(raw):
        if isinstance(c, str):
            cats.append({"id": i + 1, "name": c})
        elif isinstance(c, Mapping) and "id" in c and "name" in c:
            cats.append({**c, "id": int(c["id"]), "name": str(c["name"])})
        else:
            raise DataError(f"category entry {c!r} has no id/name", path)
    if not cats:
        raise DataError("no categories (the file has no 'categories' list)", path)
    ids = [c["id"] for c in cats]
    if len(set(ids)) != len(ids):
        raise DataError(f"duplicate category ids {sorted(ids)}", path)
    return sorted(cats, key=lambda c: c["id"])


def polygon_area(poly: Sequence[float] | np.ndarray) -> float:
    """Shoelace area (pixels²) of a flat ``[x0, y0, x1, y1, ...]`` polygon."""
    a = np.asarray(poly, dtype=np.float64)
    x, y = a[0::2], a[1::2]
    # the wrap-around term is written out: np.roll costs more than the rest on short polygons
    twice = x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1]
    return float(abs(twice) / 2.0)


def _clean_polygons(
    seg: list[Any], report: LoadReport, ann_id: int
) -> tuple[list[list[float]], float]:
    """Keep polygons with >= 3 finite points and non-zero area; count the rest.

    Returns the kept polygons (flat float lists) and their summed area.
    """
    good: list[list[float]] = []
    total = 0.0
    for poly in seg:
        try:
            a = np.asarray(poly, dtype=np.float64)
        except (TypeError, ValueError):
            a = np.zeros(0)
        area = 0.0
        if a.ndim == 1 and a.size >= 6 and a.size % 2 == 0 and np.isfinite(a).all():
            area = polygon_area(a)
        if area <= 0:
            report.note("degenerate_polygons", f"ann {ann_id}")
            continue
        good.append(a.tolist())
        total += area
    return good, total


def _rle_area(rle: Mapping[str, Any]) -> float:
    counts = rle["counts"]
    if isinstance(counts, list):
        return float(sum(int(c) for c in counts[1::2]))  # odd runs are foreground
    return float(mask_utils.area({"size": list(rle["size"]), "counts": counts}))


def _image_record(im: Mapping[str, Any], image_root: Path | None) -> ImageRecord | None:
    try:
        rec = ImageRecord(
            id=int(im["id"]),
            file_name=str(im["file_name"]),
            width=int(im["width"]),
            height=int(im["height"]),
            path=None if image_root is None else image_root / str(im["file_name"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return rec if rec.width > 0 and rec.height > 0 and rec.file_name else None


def _annotation_record(
    a: Mapping[str, Any], img: ImageRecord, report: LoadReport
) -> AnnotationRecord | None:
    """Validate one annotation against its image; None (and counted) if unusable."""
    ann_id = int(a["id"])
    seg = a.get("segmentation")
    segmentation: list[list[float]] | dict[str, Any]
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        try:
            h, w = (int(v) for v in seg["size"])
            if (h, w) != (img.height, img.width):
                report.note("size_mismatch", f"ann {ann_id}")
                return None
            segmentation = dict(seg)
            area = _rle_area(segmentation)
        except (TypeError, ValueError, KeyError):  # malformed size or counts
            segmentation, area = [], 0.0
    elif isinstance(seg, list):
        segmentation, area = _clean_polygons(seg, report, ann_id)
    else:
        segmentation, area = [], 0.0
    if area <= 0:
        report.note("degenerate_annotations", f"ann {ann_id}")
        return None
    box = a.get("bbox")
    if isinstance(box, list | tuple) and len(box) == 4:
        x, y, bw, bh = (float(v) for v in box)
    else:  # no box in the file: take the segmentation's
        x, y, bw, bh = (
            float(v) for v in mask_utils.toBbox(to_rle(segmentation, img.height, img.width))
        )
    tol = BBOX_TOLERANCE
    if x < -tol or y < -tol or x + bw > img.width + tol or y + bh > img.height + tol:
        report.note("bbox_outside", f"ann {ann_id}")
    x0, y0 = min(max(x, 0.0), img.width), min(max(y, 0.0), img.height)
    x1, y1 = min(max(x + bw, 0.0), img.width), min(max(y + bh, 0.0), img.height)
    return AnnotationRecord(
        id=ann_id,
        image_id=img.id,
        category_id=int(a["category_id"]),
        bbox=(x0, y0, x1 - x0, y1 - y0),
        segmentation=segmentation,
        area=float(a.get("area") or area),
        iscrowd=bool(a.get("iscrowd", 0)),
    )


def load_coco(
    ann_path: str | Path,
    image_root: str | Path | None = None,
    categories: Sequence[str] | Sequence[Mapping[str, Any]] | None = None,
) -> CocoIndex:
    """Load ``ann_path`` (COCO instances JSON); check images under ``image_root`` exist.

    ``categories`` (names for ids 1..C, or COCO category dicts) replaces the file's own.
    Images missing on disk are dropped from ``.images`` (only checked when
    ``image_root`` is given); every dropped or repaired item is counted in ``.report``.
    """
    path = Path(ann_path)
    data = read_coco_json(path, categories=categories is None)  # given categories replace the file's
    cats = _categories(data, categories, path)
    cat_ids = {c["id"] for c in cats}
    root = None if image_root is None else Path(image_root)
    report = LoadReport(source=str(path))

    images: dict[int, ImageRecord] = {}
    missing: set[int] = set()
    for im in data["images"]:
        rec = _image_record(im, root)
        if rec is None:
            report.note("bad_image_records", im.get("id", im.get("file_name", "?")))
        elif rec.id in images:
            report.note("duplicate_image_ids", rec.id)
        else:
            images[rec.id] = rec  # known even when missing: its annotations are not "unknown image"
            if rec.path is not None and not rec.path.is_file():
                report.note("missing_files", rec.file_name)
                missing.add(rec.id)
    usable = {i: r for i, r in images.items() if i not in missing}

    by_image: dict[int, list[AnnotationRecord]] = defaultdict(list)
    seen_ann: set[int] = set()
    for a in data.get("annotations", []):
        try:
            ann_id, image_id, cat = int(a["id"]), int(a["image_id"]), int(a["category_id"])
        except (KeyError, TypeError, ValueError):
            report.note("degenerate_annotations", a.get("id", "?") if isinstance(a, dict) else "?")
            continue
        if ann_id in seen_ann:
            report.note("duplicate_annotation_ids", ann_id)
            continue
        seen_ann.add(ann_id)
        if image_id not in images:
            report.note("unknown_image", f"ann {ann_id} -> image {image_id}")
            continue
        if cat not in cat_ids:
            report.note("unknown_category", f"ann {ann_id} -> category {cat}")
            continue
        if image_id not in usable:
            continue  # its image is missing on disk: already counted there
        try:
            ann = _annotation_record(a, usable[image_id], report)
        except (TypeError, ValueError):  # non-numeric bbox/area/polygon values
            report.note("degenerate_annotations", f"ann {ann_id}")
            continue
        if ann is not None:
            by_image[image_id].append(ann)

    for rec in usable.values():
        if not by_image.get(rec.id):
            report.note("empty_images", rec.file_name)
    all_anns = [a for anns in by_image.values() for a in anns]
    report.images = len(usable)
    report.annotations = len(all_anns)
    report.crowd = sum(a.iscrowd for a in all_anns)
    return CocoIndex(
        path=path,
        images=list(usable.values()),
        categories=cats,
        report=report,
        _by_image=dict(by_image),
    )


def to_rle(seg: list[list[float]] | Mapping[str, Any], height: int, width: int) -> dict[str, Any]:
    """One compressed RLE for a segmentation (polygons merged; RLE checked against the size)."""
    if isinstance(seg, Mapping):
        h, w = (int(v) for v in seg["size"])
        if (h, w) != (height, width):
            raise DataError(f"RLE size {w}x{h} does not match the image size {width}x{height}")
        counts = seg["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            rle: dict[str, Any] = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
            return rle
        return {
            "size": [h, w],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    polys = [list(map(float, p)) for p in seg if len(p) >= 6]
    if not polys:
        return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    merged: dict[str, Any] = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    return merged


def annotation_mask(
    ann: AnnotationRecord | Mapping[str, Any], height: int, width: int
) -> np.ndarray:
    """Rasterise an annotation's segmentation to a bool mask ``[height, width]``.

    Accepts polygons (pycocotools' rasterisation: a pixel is in when its centre is)
    and RLE, compressed (``counts`` str/bytes) or uncompressed (``counts`` list).
    Raises DataError when an RLE's ``size`` differs from ``(height, width)``.
    """
    seg = ann.segmentation if isinstance(ann, AnnotationRecord) else ann.get("segmentation", [])
    rle = to_rle(seg, height, width)
    return np.asarray(mask_utils.decode(rle), dtype=bool)
