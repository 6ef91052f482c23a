"""The evaluations behind `cpt eval`, as library calls that return JSON-ready dicts.

``evaluate_detections`` scores COCO results (from a model run or a file) with COCO AP
and the seed's merged-mask metrics; ``evaluate_parsing`` scores folders of predicted
label maps. Both resolve the dataset folder layout of ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clothparse.data.coco_json import read_coco_json, read_json
from clothparse.errors import ConfigError, DataError
from clothparse.evaluate.coco_eval import GroundTruth, check_results, coco_evaluate
from clothparse.evaluate.parsing_metrics import BOUNDARY_TOL, ParsingMetrics, evaluate_parsing_dir
from clothparse.evaluate.seed_metrics import DEFAULT_THRESHOLDS, seed_evaluate

TASKS = ("clothing", "body")
SPLITS = ("train", "val", "test")


def split_annotation_path(data: Path, split: str, task: str = "clothing") -> Path:
    """DIR/<split>.json for clothing, DIR/body_<split>.json for body; DataError when missing."""
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not data.is_dir():
        raise DataError("dataset folder not found", data)
    path = data / (f"{split}.json" if task == "clothing" else f"body_{split}.json")
    if not path.is_file():
        raise DataError("split file not found (make it with `cpt data split` or `cpt data synth`)", path)
    return path


def select_images(gt: GroundTruth, max_images: int | None) -> list[int]:
    """The first ``max_images`` image ids in id order (all when None)."""
    ids = gt.image_ids()
    if max_images is not None:
        if max_images < 1:
            raise ConfigError(f"--max-images must be >= 1, got {max_images}")
        ids = ids[:max_images]
    return ids


def load_results(path: Path, gt: GroundTruth) -> tuple[list[dict[str, Any]], int]:
    """Read a COCO results file and check it against ``gt``.

    Returns (results on images of ``gt``, number of results on other images).
    Raises DataError when the file is malformed, uses unknown categories, has a mask
    whose size differs from its image, or matches no image of the split at all.
    """
    raw = read_json(path, "results file")
    if not isinstance(raw, list):
        raise DataError("not a COCO results file (expected a JSON list of detections)", path)
    check_results(gt, raw, path)
    kept = [r for r in raw if int(r["image_id"]) in gt.coco.imgs]
    if raw and not kept:
        raise DataError(f"none of its {len(raw)} detections is on an image of {gt.path}", path)
    for r in kept:
        im = gt.coco.imgs[int(r["image_id"])]
        size = r["segmentation"].get("size") if isinstance(r["segmentation"], dict) else None
        if size is None or [int(s) for s in size] != [int(im["height"]), int(im["width"])]:
            raise DataError(
                f"detection on image {r['image_id']} has mask size {size}, expected an RLE of "
                f"[{im['height']}, {im['width']}]",
                path,
            )
    return kept, len(raw) - len(kept)


def evaluate_detections(
    gt: GroundTruth,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """COCO bbox/segm AP, per-class AP, seed merged-mask metrics (summary and per image)."""
    coco = coco_evaluate(gt, results, image_ids)
    seed = seed_evaluate(gt, results, image_ids, thresholds)
    per_image: dict[int, dict[str, Any]] = {
        i: {"image_id": i, "file_name": gt.coco.imgs[i].get("file_name")} for i in image_ids
    }
    for t, acc in seed.items():
        for row in acc.per_image:
            per_image[row["image_id"]][f"pixel_acc@{t:g}"] = row["pixel_acc"]
            per_image[row["image_id"]][f"iou@{t:g}"] = None if row["iou"] != row["iou"] else row["iou"]
    return {
        **coco.to_dict(),
        "seed": {f"{t:g}": acc.summary() for t, acc in seed.items()},
        "seed_per_image": list(per_image.values()),
        "dropped_annotations": dict(gt.dropped),
    }


def parsing_stems(data: Path, split: str) -> tuple[list[str], Path]:
    """Stems of the images of a split and the ground-truth label folder DIR/labels."""
    ann = read_coco_json(split_annotation_path(data, split, "clothing"), image_fields=("id", "file_name"))
    labels = data / "labels"
    if not labels.is_dir():
        raise DataError("no parsing ground truth folder (written by `cpt data synth`)", labels)
    by_id = {int(im["id"]): str(im["file_name"]) for im in ann["images"]}
    stems = [Path(by_id[i]).stem for i in sorted(by_id)]
    return stems, labels


def evaluate_parsing(
    pred_dirs: Sequence[Path], data: Path, split: str, max_images: int | None = None,
    boundary_tol: float = BOUNDARY_TOL,
) -> list[tuple[str, ParsingMetrics]]:
    """Parsing metrics of each prediction folder against DIR/labels, over the split's images
    (boundary F-score at ``boundary_tol`` pixels).

    Column names are the folder names, or the full paths when two folders share a name.
    """
    if not pred_dirs:
        raise ConfigError("--parsing needs at least one --pred folder of NAME_labels.png maps")
    stems, labels = parsing_stems(data, split)
    if max_images is not None:
        stems = stems[:max_images]
    names = [p.name for p in pred_dirs]
    if len(set(names)) != len(names):
        names = [str(p) for p in pred_dirs]
    return [
        (n, evaluate_parsing_dir(p, labels, stems, boundary_tol=boundary_tol))
        for n, p in zip(names, pred_dirs, strict=True)
    ]
