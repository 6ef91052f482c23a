"""Parsing quality ablation: pixel level vs superpixel level (area vote, centroid vote).

Runs the clothing and body models once per image of a dataset split, then builds the
parsing map three ways from the same detections and scores each against the ground-truth
label maps (``DIR/labels/<stem>.png``): per-class IoU, mIoU and pixel accuracy.

    python -m clothparse.bench.parsing_quality --model runs/clothing --body-model runs/body \\
        --data DIR --split val

Prints a Markdown table (for BENCHMARKS.md) and writes a JSON report with ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.data.coco_json import read_coco_json
from clothparse.engines.base import Detections, Engine, TensorSpec
from clothparse.engines.loader import open_engine
from clothparse.errors import CptError
from clothparse.evaluate.parsing_metrics import ParsingMetrics, read_label_map
from clothparse.io.atomic import write_json
from clothparse.io.images import read_rgb
from clothparse.parse.fusion import FusionParams
from clothparse.parse.pipeline import Parser, SlicParams
from clothparse.parse.superpixels import get_backend
from clothparse.taxonomy import PARSING_LABELS


class CachedEngine:
    """Runs an engine once per image object, so several parsers share one detection pass."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.class_names = engine.class_names
        self._cache: dict[int, Detections] = {}

    @property
    def input_specs(self) -> list[TensorSpec]:
        return self.engine.input_specs

    @property
    def output_specs(self) -> list[TensorSpec]:
        return self.engine.output_specs

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        missing = [im for im in images if id(im) not in self._cache]
        if missing:
            for im, det in zip(missing, self.engine.infer(missing), strict=True):
                self._cache[id(im)] = det
        return [self._cache[id(im)] for im in images]

    def forget(self) -> None:
        self._cache.clear()


VARIANTS = ("pixel", "superpixel-area", "superpixel-centroid")


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
) -> dict[str, Any]:
    images = split_images(data, split, max_images)
    clothing = CachedEngine(open_engine(model, device=device, score_thresh=score_thresh))
    body = CachedEngine(open_engine(body_model, device=device))
    backend = get_backend(superpixels)
    parsers = {
        "pixel": Parser(clothing, body, None, body_score_thresh=body_score_thresh),
        "superpixel-area": Parser(
            clothing, body, backend, FusionParams(vote="area"), SlicParams(), body_score_thresh
        ),
        "superpixel-centroid": Parser(
            clothing, body, backend, FusionParams(vote="centroid"), SlicParams(), body_score_thresh
        ),
    }
    metrics = {name: ParsingMetrics() for name in VARIANTS}
    seconds = {name: 0.0 for name in VARIANTS}
    for im in images:
        photo = read_rgb(data / "images" / im["file_name"])
        gt = read_label_map(data / "labels" / f"{Path(im['file_name']).stem}.png")
        for name, parser in parsers.items():
            t0 = time.perf_counter()
            result = parser.parse(photo)
            seconds[name] += time.perf_counter() - t0
            metrics[name].add(gt, result.label_map)
        clothing.forget()
        body.forget()
    return {
        "model": str(model), "body_model": str(body_model), "data": str(data), "split": split,
        "n_images": len(images), "score_thresh": score_thresh, "body_score_thresh": body_score_thresh,
        "superpixels": backend.name,
        "variants": {name: metrics[name].to_dict() for name in VARIANTS},
        "seconds_per_image_after_models": {
            # The first parser pays for the models; the others reuse its detections.
            name: seconds[name] / max(len(images), 1) for name in VARIANTS[1:]
        },
    }


def to_markdown(report: dict[str, Any]) -> str:
    v = report["variants"]
    lines = [
        "| label | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
    ]
    for k, name in enumerate(PARSING_LABELS):
        ious = [v[var]["per_class"][k]["iou"] for var in VARIANTS]
        if all(x is None for x in ious):
            continue
        lines.append(f"| {name} | " + " | ".join("-" if x is None else f"{x:.3f}" for x in ious) + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{v[var]['miou']:.3f}**" for var in VARIANTS) + " |")
    lines.append("| pixel accuracy | " + " | ".join(f"{v[var]['pixel_acc']:.3f}" for var in VARIANTS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="clothing model (checkpoint or export)")
    p.add_argument("--body-model", type=Path, required=True, help="body (person) model")
    p.add_argument("--data", type=Path, required=True, help="dataset folder with labels/")
    p.add_argument("--split", default="val")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--score-thresh", type=float, default=0.5)
    p.add_argument("--body-score-thresh", type=float, default=0.5)
    p.add_argument("--superpixels", default="auto", help="auto, skimage or native")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON report")
    a = p.parse_args(argv)
    try:
        report = run(
            a.model, a.body_model, a.data, a.split, a.max_images, a.score_thresh,
            a.body_score_thresh, a.superpixels, a.device,
        )
    except CptError as exc:  # one line, exit 1, as cpt does
        raise SystemExit(f"error: {exc}") from None
    print(f"{report['n_images']} images of {a.data}/{a.split}.json, score >= {a.score_thresh}, "
          f"superpixels: {report['superpixels']}")
    print(to_markdown(report))
    if a.out:
        write_json(a.out, report)


if __name__ == "__main__":
    main()
