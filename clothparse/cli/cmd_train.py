"""`cpt train` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def train() -> None:
    """Not built yet."""
    raise CptError("cpt train is not built yet")
