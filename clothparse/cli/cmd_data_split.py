"""`cpt data split` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def split() -> None:
    """Not built yet."""
    raise CptError("cpt data split is not built yet")
