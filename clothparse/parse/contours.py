"""Contours of binary masks: point for point ``skimage.measure.find_contours(mask, 0.5)``.

scikit-image finds the contour segments of each 2x2 square in compiled code, then joins them
into contours in a Python loop over dictionaries, which took ~45 ms of the ~120 ms that
encoding 100 items costs at 1024x768. For a binary mask every crossing of the 0.5 level is
the midpoint of a pixel edge, so a point is an edge index and the joining runs in a Numba
kernel over arrays: the same segments in the same order, joined by the same rules (a new
segment extends, closes or merges contours; merged contours keep the number of the one made
first; contours come out in order of that number), hence the same arrays.

Segments per square with corners ul, ur, ll, lr (True above the level; "low" connectivity, so
the two saddles keep the True corners apart), as (from, to) among the edge midpoints
top (r, c+.5), left (r+.5, c), right (r+.5, c+1), bottom (r+1, c+.5):
ul: top->left; ur: right->top; ul+ur: right->left; ll: left->bottom; ul+ll: top->bottom;
ur+ll: right->top, left->bottom; ul+ur+ll: right->bottom; lr: bottom->right;
ul+lr: top->left, bottom->right; ur+lr: bottom->top; ul+ur+lr: bottom->left;
ll+lr: left->right; ul+ll+lr: top->right; ur+ll+lr: left->top.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def binary_contours(mask: np.ndarray) -> list[np.ndarray]:
    """``find_contours(mask.astype(float), 0.5)`` of a bool/uint8 [H, W] mask.

    Returns float64 [K, 2] (row, col) arrays; a closed contour repeats its first point at the
    end. Contours of a mask touching its border stay open (pad the mask to close them).
    """
    m = np.ascontiguousarray(np.asarray(mask) != 0)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    if m.shape[0] < 2 or m.shape[1] < 2:
        return []
    points, offsets = _kernel()(m.view(np.uint8))
    return [points[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


@functools.cache
def _kernel() -> Any:
    """``contours(mask uint8 0/1 [H, W]) -> (float64 [N, 2] points, int64 [C + 1] offsets)``:
    contour i is points[offsets[i]:offsets[i + 1]] (Numba imported on first use)."""
    from clothparse.parse import contours_kernel as k

    return lambda m: k.contours(m, k.TABLE)
