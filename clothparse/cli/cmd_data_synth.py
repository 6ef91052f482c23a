"""`cpt data synth`: make the synthetic paper-doll dataset (images, COCO JSONs, label maps, splits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import OutDir, Quiet, Ratios, Seed
from clothparse.data.split import parse_ratios
from clothparse.data.synth.writer import check_settings, parse_size, write_dataset
from clothparse.errors import ConfigError


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder that is not a synthetic dataset, unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", out)
    if out.is_dir() and not overwrite and not (out / "synth.json").exists() and any(out.iterdir()):
        raise ConfigError(
            "folder is not empty and holds no synthetic dataset; pass --overwrite to write into it",
            out,
        )


def summary_table(summary: dict[str, Any]) -> Table:
    """Per-class counts of a dataset summary (as returned by ``write_dataset``)."""
    n = summary["images"]
    table = Table(
        title=f"{n} images, {summary['persons']} persons, {summary['instances']} garments"
    )
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("% images", justify="right")
    table.add_column("instances", justify="right")
    for name, c in summary["classes"].items():
        table.add_row(
            name, str(c["images"]), f"{100.0 * c['images'] / max(n, 1):.1f}", str(c["instances"])
        )
    table.add_row(
        "person",
        str(summary["images_with_people"]),
        f"{100.0 * summary['images_with_people'] / max(n, 1):.1f}",
        str(summary["persons"]),
        style="bold",
    )
    return table


def synth(
    out: OutDir,
    n: Annotated[int, typer.Option("--n", help="Number of images to make.")] = 2000,
    size: Annotated[
        str,
        typer.Option(
            "--size",
            help="Image size in pixels (64-4096 each side): a side for square images (256), or "
            "HEIGHTxWIDTH, e.g. 600x400 for portrait photos like ModaNet's (400 wide, 600 tall). "
            "People scale with the height.",
        ),
    ] = "256",
    seed: Seed = 0,
    ratios: Ratios = "0.8,0.1,0.1",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Also write into a non-empty folder that holds no synthetic dataset.",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Make a synthetic dataset of people wearing ModaNet garments, with full ground truth.

    Writes OUT/images/*.jpg, OUT/labels/*.png (parsing maps: 0 background, 1-13
    clothing, 14 skin/body), clothing.json (ModaNet ids 1-13), body.json (person),
    the train/val/test splits of both, and synth.json (settings and class counts).
    The same seed always gives the same files.
    """
    with handle_errors():
        fractions = parse_ratios(ratios)
        shape = parse_size(size)
        check_settings(n, shape, seed)
        check_out_dir(out, overwrite)
        console = Console()
        if quiet:
            summary = write_dataset(out, n, shape, seed, fractions)
        else:
            columns = (
                TextColumn("synth"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("synth", total=n)
                summary = write_dataset(
                    out,
                    n,
                    shape,
                    seed,
                    fractions,
                    progress=lambda done, _: bar.update(task, completed=done),
                )
        console.print(summary_table(summary))
        splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        console.print(f"wrote {out} ({splits})")
