"""The one error formatter of the CLI, and the exit codes of every command.

Every command body runs inside ``handle_errors``. A known error (``CptError``, a file the
system could not read or write, memory) prints as one line ``error: <file>: <problem>`` on
stderr and exits with ``EXIT_ERROR``; anything else is a bug in cpt and prints one line
``internal error: <Type>: <message> ...`` naming how to see the traceback (``CPT_DEBUG=1``,
which prints it) and exits with ``EXIT_INTERNAL``. Click's own usage errors keep Click's
code (2).

Exit codes (ARCHITECTURE.md, "Conventions"):
  0 success; 1 ``EXIT_ERROR`` an error the user can fix; 2 ``EXIT_USAGE`` a command-line usage
  error (Click's code); 3 ``EXIT_PARTIAL`` a batch ran to the end but some inputs (photos,
  images, benchmark configurations) failed; 4 ``EXIT_INTERNAL`` an unexpected exception (a bug);
  130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

import click
import typer

from clothparse.errors import CptError, is_expected

EXIT_ERROR = 1
EXIT_USAGE = 2  # Click's code for a usage error (bad option, missing argument); never used by cpt itself
EXIT_PARTIAL = 3  # a batch ran to the end, but at least one input failed
EXIT_INTERNAL = 4  # an unexpected exception: a bug in cpt
EXIT_INTERRUPTED = 130

DEBUG_HINT = "run again with CPT_DEBUG=1 to see the traceback"


def debug_enabled() -> bool:
    return os.environ.get("CPT_DEBUG", "").strip() not in ("", "0", "false", "no")


def format_error(exc: BaseException) -> str:
    """One line describing ``exc`` for a user (no traceback)."""
    if isinstance(exc, CptError):
        msg = str(exc)
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        msg = f"{exc.filename}: no such file or directory"
    elif isinstance(exc, PermissionError) and exc.filename:
        msg = f"{exc.filename}: permission denied"
    elif isinstance(exc, OSError) and getattr(exc, "filename", None):
        msg = f"{exc.filename}: {exc.strerror or exc}"
    else:
        msg = f"{type(exc).__name__}: {exc}"
    return " ".join(msg.split())  # one line, whatever the exception put in it


def report(exc: BaseException, prefix: str = "error") -> None:
    """Print ``exc`` on stderr as one line (plus traceback when CPT_DEBUG=1)."""
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"{prefix}: {format_error(exc)}", file=sys.stderr)


def report_internal(exc: BaseException) -> None:
    """Print an unexpected exception as one ``internal error`` line saying how to see the traceback."""
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print(f"internal error: {format_error(exc)} (a bug in cpt; traceback above)", file=sys.stderr)
    else:
        print(f"internal error: {format_error(exc)} (a bug in cpt; {DEBUG_HINT})", file=sys.stderr)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn any exception escaping a command into one line and its exit code (see the module doc)."""
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit, click.ClickException):
        raise  # Click prints its own usage errors and exits EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BaseException as exc:
        if is_expected(exc):
            report(exc)
            raise typer.Exit(EXIT_ERROR) from None
        report_internal(exc)
        raise typer.Exit(EXIT_INTERNAL) from None
