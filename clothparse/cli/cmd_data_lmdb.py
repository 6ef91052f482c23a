"""`cpt data lmdb`: extract the photos an annotation file names from the Paperdoll LMDB."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from clothparse.cli.errors import EXIT_PARTIAL, handle_errors
from clothparse.cli.options import OutDir, Quiet
from clothparse.data.lmdb_extract import extract_images


def lmdb(
    lmdb_path: Annotated[
        Path, typer.Argument(help="Paperdoll photos.lmdb (folder with data.mdb, or the .mdb file).")
    ],
    ann: Annotated[Path, typer.Argument(help="COCO annotation JSON naming the images to extract.")],
    out: OutDir,
    quiet: Quiet = False,
) -> None:
    """Write each image of ANN (key = its id as ASCII) to OUT/<file_name>.

    Resumable: files already complete in OUT are skipped. Exits 2 when some images
    could not be extracted (missing keys, undecodable values), after extracting the rest.
    """
    with handle_errors():
        with Progress(
            TextColumn("extracting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout keeps only the summary
            disable=quiet or not sys.stderr.isatty(),
            transient=True,
        ) as bar:
            task = bar.add_task("extract", total=None)
            report = extract_images(
                lmdb_path,
                ann,
                out,
                progress=lambda n, total: bar.update(task, advance=n, total=total),
            )
        for line in report.lines():
            typer.echo(line)
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)
