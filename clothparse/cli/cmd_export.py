"""`cpt export` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def export() -> None:
    """Not built yet."""
    raise CptError("cpt export is not built yet")
