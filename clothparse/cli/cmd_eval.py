"""`cpt eval` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def evaluate() -> None:
    """Not built yet."""
    raise CptError("cpt eval is not built yet")
