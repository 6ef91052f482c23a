"""Parsing quality ablation: pixel level vs the superpixel votes, each with both skin rules.

Runs the clothing and body models once per image of a dataset split, computes the SLIC
superpixels once, then builds the parsing map several ways from the same detections and
superpixels and scores each against the ground-truth label maps (``DIR/labels/<stem>.png``):
mIoU, boundary F-score (``--boundary-tol`` px), pixel accuracy and per-class IoU. Rows:

    pixel               the pixel-level map (no superpixels)
    area/growth         area vote (FusionParams default); skin stops growth only
    centroid/growth     the original's centroid rule (centroid pixel or one of its 4 neighbours)
    soft/growth         mean pasted probability >= FusionParams.soft_thresh
    VOTE/all            the same vote with skin_rule "all" (skin superpixels never vote either)

A vote or skin rule the installed ``FusionParams`` does not offer is listed as skipped.
Photos of any size and aspect ratio work (e.g. a set made by ``cpt data synth --size
600x400``, H x W); the report counts the sizes seen.

    python -m clothparse.bench.parsing_quality --model runs/clothing --body-model runs/body \\
        --data DIR --split val

Prints Markdown tables (for BENCHMARKS.md) and writes a JSON report with ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

from clothparse.data.coco_json import read_coco_json
from clothparse.errors import CptError, DataError
from clothparse.evaluate.parsing_metrics import BOUNDARY_TOL, ParsingMetrics, read_label_map
from clothparse.io.atomic import write_json
from clothparse.io.images import read_rgb
from clothparse.parse.fusion import FusionParams, fuse, pixel_level
from clothparse.parse.pipeline import Parser
from clothparse.parse.superpixels import SlicParams, get_backend
from clothparse.taxonomy import PARSING_LABELS

#: (row name, vote, skin rule); vote None is the pixel-level map.
VARIANT_SPECS: tuple[tuple[str, str | None, str | None], ...] = (
    ("pixel", None, None),
    ("area/growth", "area", "growth"),
    ("area/all", "area", "all"),
    ("centroid/growth", "centroid", "growth"),
    ("centroid/all", "centroid", "all"),
    ("soft/growth", "soft", "growth"),
    ("soft/all", "soft", "all"),
)
VARIANTS = tuple(name for name, _, _ in VARIANT_SPECS)


def fusion_params(vote: str, skin_rule: str) -> FusionParams | None:
    """``FusionParams(vote=vote, skin_rule=skin_rule)``, or None when this version of the
    fusion does not offer that vote or skin rule (an older one knows only the skin rule
    "growth", without the field)."""
    fields = {f.name for f in dataclasses.fields(FusionParams)}
    kwargs: dict[str, Any] = {"vote": vote}
    if "skin_rule" in fields:
        kwargs["skin_rule"] = skin_rule
    elif skin_rule != "growth":
        return None
    try:
        return FusionParams(**kwargs)
    except (CptError, ValueError, TypeError):
        return None


def split_images(data: Path, split: str, max_images: int | None = None) -> list[dict[str, Any]]:
    """The image entries of ``DIR/<split>.json`` in id order (the first ``max_images``).

    Read with ``read_coco_json``: a missing or malformed split, or an image without an
    ``id`` or ``file_name``, is a one-line DataError naming the file.
    """
    ann = read_coco_json(data / f"{split}.json", image_fields=("id", "file_name"))
    return sorted(ann["images"], key=lambda im: int(im["id"]))[: max_images or None]


def run(
    model: Path, body_model: Path, data: Path, split: str, max_images: int | None,
    score_thresh: float, body_score_thresh: float, superpixels: str, device: str,
    boundary_tol: float = BOUNDARY_TOL,
) -> dict[str, Any]:
    """Score every variant over the split; the JSON report (see ``to_markdown``)."""
    from clothparse.engines.loader import open_engine

    images = split_images(data, split, max_images)
    params = {
        name: None if vote is None else fusion_params(vote, rule or "growth") for name, vote, rule in VARIANT_SPECS
    }
    built = [name for name, vote, _ in VARIANT_SPECS if vote is None or params[name] is not None]
    skipped = [name for name in VARIANTS if name not in built]
    clothing = open_engine(model, device=device, score_thresh=score_thresh)
    body = open_engine(body_model, device=device)
    parser = Parser(clothing, body, None, body_score_thresh=body_score_thresh)
    backend = get_backend(superpixels)
    slic = SlicParams()
    metrics = {name: ParsingMetrics(boundary_tol=boundary_tol) for name in built}
    seconds = dict.fromkeys(built, 0.0)
    sp_seconds = 0.0
    sizes: Counter[str] = Counter()
    for im in images:
        photo = read_rgb(data / "images" / im["file_name"])
        gt_path = data / "labels" / f"{Path(im['file_name']).stem}.png"
        gt = read_label_map(gt_path)
        h, w = photo.shape[:2]
        if gt.shape != (h, w):
            raise DataError(f"label map is {gt.shape[1]}x{gt.shape[0]}, its photo {w}x{h}", gt_path)
        sizes[f"{w}x{h}"] += 1
        det = parser.detect_batch([photo])[0]
        t0 = time.perf_counter()
        sp = backend.segment(photo, n_segments=slic.n_segments, compactness=slic.compactness, sigma=slic.sigma)
        sp_seconds += time.perf_counter() - t0
        for name in built:
            t0 = time.perf_counter()
            p = params[name]
            if p is None:
                label_map = pixel_level((h, w), det.clothing, det.body, parser.mask_thresh)
            else:
                label_map = fuse(photo, sp, det.clothing, det.body, p).label_map
            seconds[name] += time.perf_counter() - t0
            metrics[name].add(gt, label_map)
    n = max(len(images), 1)
    return {
        "model": str(model), "body_model": str(body_model), "data": str(data), "split": split,
        "n_images": len(images), "image_sizes_wxh": dict(sorted(sizes.items())),
        "score_thresh": score_thresh, "body_score_thresh": body_score_thresh,
        "superpixels": backend.name, "slic": dataclasses.asdict(slic), "boundary_tol_px": boundary_tol,
        "skipped": skipped,
        "variants": {
            name: {
                "vote": spec[1], "skin_rule": spec[2], **metrics[name].to_dict(),
                # Superpixels are computed once and shared; this is the map-building time alone.
                "ms_per_image": 1000.0 * seconds[name] / n,
            }
            for spec in VARIANT_SPECS if (name := spec[0]) in built
        },
        "superpixels_ms_per_image": 1000.0 * sp_seconds / n,
    }


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """A summary table (one row per variant: mIoU, boundary F, pixel accuracy, ms) and a
    per-class IoU table (one column per variant)."""
    v = report["variants"]
    names = list(v)
    tol = report["boundary_tol_px"]
    lines = [
        f"| variant | mIoU | boundary F ({tol:g} px) | pixel accuracy | map ms/image |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        r = v[name]
        lines.append(
            f"| {name} | **{_f(r['miou'])}** | {_f(r['boundary_f'])} | {_f(r['pixel_acc'])} | {r['ms_per_image']:.1f} |"
        )
    lines += ["", "| label | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k, label in enumerate(PARSING_LABELS):
        ious = [v[name]["per_class"][k]["iou"] for name in names]
        if all(x is None for x in ious):
            continue
        lines.append(f"| {label} | " + " | ".join(_f(x) for x in ious) + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{_f(v[name]['miou'])}**" for name in names) + " |")
    lines.append(f"| boundary F ({tol:g} px) | " + " | ".join(_f(v[name]["boundary_f"]) for name in names) + " |")
    lines.append("| pixel accuracy | " + " | ".join(_f(v[name]["pixel_acc"]) for name in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="clothing model (checkpoint or export)")
    p.add_argument("--body-model", type=Path, required=True, help="body (person) model")
    p.add_argument("--data", type=Path, required=True, help="dataset folder with labels/ (any photo size)")
    p.add_argument("--split", default="val")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--score-thresh", type=float, default=0.5)
    p.add_argument("--body-score-thresh", type=float, default=0.5)
    p.add_argument("--superpixels", default="auto", help="auto, skimage or native")
    p.add_argument("--boundary-tol", type=float, default=BOUNDARY_TOL, help="boundary F-score tolerance in pixels")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON report")
    a = p.parse_args(argv)
    try:
        report = run(
            a.model, a.body_model, a.data, a.split, a.max_images, a.score_thresh,
            a.body_score_thresh, a.superpixels, a.device, a.boundary_tol,
        )
    except CptError as exc:  # one line, exit 1, as cpt does
        raise SystemExit(f"error: {exc}") from None
    sizes = ", ".join(f"{s} ({c})" for s, c in report["image_sizes_wxh"].items()) or "none"
    print(f"{report['n_images']} images of {a.data}/{a.split}.json (sizes WxH: {sizes}), score >= {a.score_thresh}, "
          f"superpixels: {report['superpixels']} ({report['superpixels_ms_per_image']:.1f} ms/image, shared)")
    if report["skipped"]:
        print(f"skipped (not offered by this FusionParams): {', '.join(report['skipped'])}")
    print(to_markdown(report))
    if a.out:
        write_json(a.out, report)


if __name__ == "__main__":
    main()
