"""Deterministic train/val/test split of a COCO annotation file, by image.

The assignment of an image to a subset depends only on the sorted image ids, the
seed and the ratios, so splitting ``clothing.json`` and ``body.json`` of the same
images with the same seed puts every image in the same subset of both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from clothparse.errors import ConfigError

DEFAULT_NAMES = ("train", "val", "test")


def parse_ratios(text: str) -> tuple[float, ...]:
    """Parse "0.8,0.1,0.1" into a tuple of floats that sum to 1 (within 1e-6)."""
    try:
        ratios = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {text!r}") from None
    return check_ratios(ratios)


def check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    """Return ``ratios`` as floats; ConfigError unless all are finite, >= 0 and sum to 1."""
    ratios = tuple(float(r) for r in ratios)
    # written as "not (r >= 0)" so that NaN, which compares false to everything, is rejected
    if (
        not ratios
        or any(not (r >= 0) or math.isinf(r) for r in ratios)
        or not (abs(sum(ratios) - 1.0) <= 1e-6)
    ):
        raise ConfigError(f"split ratios must be non-negative and sum to 1, got {list(ratios)}")
    return ratios


def assign_split(
    image_ids: Sequence[int],
    ratios: Sequence[float],
    seed: int,
    names: Sequence[str] = DEFAULT_NAMES,
) -> dict[int, str]:
    """Map each image id to a subset name.

    Subset sizes are ``round(cumulative ratio * n)`` boundaries over a seeded
    permutation of the sorted ids, so sizes differ from the ratios by < 1 image.
    """
    ratios = check_ratios(ratios)
    if seed < 0:  # numpy's SeedSequence refuses negative seeds with a less clear message
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if len(names) != len(ratios):
        raise ConfigError(f"{len(ratios)} ratios but {len(names)} subset names")
    ids = np.array(sorted(set(int(i) for i in image_ids)), dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(ids))
    bounds = np.round(np.cumsum(ratios) * len(ids)).astype(int)
    bounds[-1] = len(ids)
    out: dict[int, str] = {}
    start = 0
    for name, stop in zip(names, bounds, strict=True):
        for k in order[start:stop]:
            out[int(ids[k])] = name
        start = stop
    return out


def split_annotations(
    coco: dict[str, Any], ratios: Sequence[float], seed: int, names: Sequence[str] = DEFAULT_NAMES
) -> dict[str, dict[str, Any]]:
    """Split a COCO dict into one COCO dict per subset (images and their annotations).

    Keys other than ``images`` and ``annotations`` (info, licenses, categories) are
    copied to every subset. Annotations whose image is not listed are dropped.
    """
    assignment = assign_split([im["id"] for im in coco.get("images", [])], ratios, seed, names)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        sub = {k: v for k, v in coco.items() if k not in ("images", "annotations")}
        sub["images"] = [im for im in coco.get("images", []) if assignment[int(im["id"])] == name]
        sub["annotations"] = [
            a for a in coco.get("annotations", []) if _subset_of(a, assignment) == name
        ]
        out[name] = sub
    return out


def _subset_of(ann: Any, assignment: dict[int, str]) -> str | None:
    """Subset of the annotation's image; None when its image_id is unusable or unlisted."""
    try:
        return assignment.get(int(ann["image_id"]))
    except (KeyError, TypeError, ValueError):
        return None
