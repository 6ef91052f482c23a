"""`cpt data`: the sub-application grouping the data-preparation commands."""

from __future__ import annotations

import typer

from clothparse.cli import cmd_data_lmdb, cmd_data_split, cmd_data_synth

app = typer.Typer(
    help="Prepare datasets: split annotation files, extract Paperdoll LMDB photos, make synthetic data.",
    no_args_is_help=True,
)
app.command("split")(cmd_data_split.split)
app.command("lmdb")(cmd_data_lmdb.lmdb)
app.command("synth")(cmd_data_synth.synth)
