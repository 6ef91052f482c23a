"""`cpt bench` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def bench() -> None:
    """Not built yet."""
    raise CptError("cpt bench is not built yet")
