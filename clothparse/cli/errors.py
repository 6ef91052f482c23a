"""The one error formatter of the CLI.

Every command body runs inside ``handle_errors``: a known error (``CptError``, bad
argument, missing file) prints as one line ``error: <file>: <problem>`` on stderr and
exits with code 1; anything unexpected prints one line too, naming the exception type.
``CPT_DEBUG=1`` also prints the traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

import typer

from clothparse.errors import CptError

EXIT_ERROR = 1
EXIT_PARTIAL = 2  # a batch ran, but at least one input failed


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


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn any exception escaping a command into one line and exit code 1."""
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except BaseException as exc:
        report(exc)
        raise typer.Exit(EXIT_ERROR) from None
