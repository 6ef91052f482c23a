"""`cpt data lmdb` (under construction)."""

from __future__ import annotations

from clothparse.errors import CptError


def lmdb() -> None:
    """Not built yet."""
    raise CptError("cpt data lmdb is not built yet")
