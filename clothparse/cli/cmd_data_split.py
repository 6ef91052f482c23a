"""`cpt data split`: split one COCO annotation file into train/val/test files by image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import OutDir, Seed
from clothparse.data.coco_json import read_coco_json
from clothparse.data.split import DEFAULT_NAMES, parse_ratios, split_annotations
from clothparse.errors import DataError
from clothparse.io.atomic import write_json


def split(
    ann: Annotated[
        Path, typer.Argument(help="COCO instances JSON to split (e.g. ModaNet's train file).")
    ],
    out: OutDir,
    ratios: Annotated[
        str, typer.Option("--ratios", help="Fractions of images for train,val,test; must sum to 1.")
    ] = "0.8,0.1,0.1",
    seed: Seed = 0,
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix",
            help="File-name prefix, e.g. body_ for body_train.json (same seed = same image assignment).",
        ),
    ] = "",
) -> None:
    """Split ANN by image into OUT/{prefix}train.json, val.json and test.json.

    The assignment depends only on the image ids, the seed and the ratios, so files
    describing the same images (clothing and body) split identically.
    """
    with handle_errors():
        fractions = parse_ratios(ratios)
        data = read_coco_json(ann)
        for im in data["images"]:
            try:
                int(im["id"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"image record without an integer id: {im!r:.80}", ann) from None
        subsets = split_annotations(data, fractions, seed, DEFAULT_NAMES)
        for name, sub in subsets.items():
            dest = out / f"{prefix}{name}.json"
            # compact like the ModaNet originals: indenting would double a 100 MB file
            write_json(dest, sub, indent=None)
            typer.echo(
                f"{name:5s} {len(sub['images']):7d} images {len(sub['annotations']):8d} annotations -> {dest}"
            )
