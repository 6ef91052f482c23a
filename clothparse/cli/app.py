"""The ``cpt`` application: registers the commands, one module per command."""

from __future__ import annotations

import typer

from clothparse import __version__
from clothparse.cli import (
    cmd_bench,
    cmd_data,
    cmd_eval,
    cmd_export,
    cmd_parse,
    cmd_serve,
    cmd_train,
)

app = typer.Typer(
    name="cpt",
    help="clothparse: parse clothing in fashion photographs (Mask R-CNN + superpixels), export and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cmd_data.app, name="data")
app.command("train")(cmd_train.train)
app.command("eval")(cmd_eval.evaluate)
app.command("export")(cmd_export.export)
app.command("parse")(cmd_parse.parse)
app.command("bench")(cmd_bench.bench)
app.command("serve")(cmd_serve.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clothparse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """clothparse (`cpt`)."""


def main() -> None:
    app()
