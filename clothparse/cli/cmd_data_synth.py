"""`cpt data synth` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def synth() -> None:
    """Not built yet."""
    raise CptError("cpt data synth is not built yet")
