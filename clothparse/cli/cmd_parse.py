"""`cpt parse` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def parse() -> None:
    """Not built yet."""
    raise CptError("cpt parse is not built yet")
