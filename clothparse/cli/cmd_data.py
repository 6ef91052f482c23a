"""`cpt data`: dataset preparation (split, lmdb, synth). Under construction."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prepare datasets: split annotation files, extract LMDB photos, make synthetic data.", no_args_is_help=True)
