"""Mask encodings of ``cpt parse``: COCO RLE, polygons and boxes, from full masks or crops.

A *crop* is ``(bool [h, w] mask, y0, x0)``: the part of an [H, W] image mask between
rows y0..y0+h-1 and columns x0..x0+w-1, the mask being False everywhere else. A *tight*
crop has a True pixel on each of its four edges (an empty mask: bool [0, 0] at (0, 0)).
Working on crops keeps ``encode_result`` from building 100 full-resolution masks; every
crop function gives exactly the output of its full-mask twin (tests compare them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

#: (bool [h, w] mask, top row y0, left column x0) of an image mask, False outside.
Crop = tuple[np.ndarray, int, int]


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool/uint8 [H, W] mask: ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def crop_rle(crop: np.ndarray, y0: int, x0: int, shape: tuple[int, int]) -> dict[str, Any]:
    """``encode_rle`` of an [H, W] mask (``shape``) that is False outside bool [h, w] ``crop``
    placed with its top-left pixel at (y0, x0), without building the full mask.

    COCO RLE runs column-major (x outer, y inner), starting with a run of zeros.
    """
    height, width = shape
    n = height * width
    h, w = crop.shape
    if crop.size == 0 or not crop.any():
        counts = np.array([n], np.int64)
    else:
        # Columns of the crop with a zero row above and below, concatenated: a change in
        # this stream at (column cx, padded row py) is a change of the full column-major
        # stream at index (x0 + cx) * H + y0 + py - 1 (the pads stand for the zeros above
        # and below the crop).
        col = np.zeros((w, h + 2), np.int8)
        col[:, 1:-1] = crop.T
        flat = col.reshape(-1)
        t = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        cx, py = np.divmod(t, h + 2)
        idx = (x0 + cx) * height + (y0 + py - 1)
        if h == height:
            # A full-height crop has no zeros between columns: an end of run at the foot of
            # one column and a start at the head of the next land on the same index, cancel.
            same = idx[1:] == idx[:-1]
            keep = np.ones(idx.size, bool)
            keep[1:] &= ~same
            keep[:-1] &= ~same
            idx = idx[keep]
        idx = idx[idx < n]  # a run ending at the last pixel: pycocotools has no empty last run
        counts = np.diff(idx, prepend=0, append=n)
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    c = rle["counts"]
    return {"size": [height, width], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of ``encode_rle``: bool [H, W]."""
    r = {"size": rle["size"], "counts": rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]}
    return mask_utils.decode(r).astype(bool)


def mask_polygons(mask: np.ndarray, tolerance: float = 1.0) -> list[list[float]]:
    """Outer and hole contours of a bool [H, W] mask as COCO polygons ``[x1, y1, x2, y2, ...]``.

    Coordinates are pixel coordinates (x right, y down); contours follow the 0.5 level
    between pixel centres, simplified with Douglas-Peucker at ``tolerance`` px (the same
    points as ``skimage.measure.approximate_polygon``). Polygons with fewer than 3 points
    are dropped.
    """
    mask = mask.astype(bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return crop_polygons([(mask[y0:y1, x0:x1], y0, x0)], tolerance)[0]


def crop_polygons(crops: Sequence[Crop], tolerance: float = 1.0) -> list[list[list[float]]]:
    """``mask_polygons`` of several masks given as tight crops: (bool [h, w] crop whose
    first/last rows and columns each hold a True pixel, top row y0, left column x0).

    All contours of all crops are simplified together (one vectorised Douglas-Peucker
    pass per recursion level instead of a Python loop per segment).
    """
    from clothparse.parse.contours import binary_contours

    contours: list[np.ndarray] = []
    owner: list[tuple[int, int, int]] = []
    for k, (crop, y0, x0) in enumerate(crops):
        if crop.size == 0:
            continue
        # Pad by one so contours close around masks touching the border.
        for c in binary_contours(np.pad(crop, 1)):
            contours.append(c)
            owner.append((k, y0, x0))
    polys: list[list[list[float]]] = [[] for _ in crops]
    for contour, (k, y0, x0) in zip(simplify_polygons(contours, tolerance), owner, strict=True):
        if len(contour) < 4:  # closed contour: first point repeated, so 4 rows = 3 corners
            continue
        xy = np.stack([contour[:, 1] - 1 + x0, contour[:, 0] - 1 + y0], axis=1)
        polys[k].append([round(v, 2) for v in xy[:-1].reshape(-1).tolist()])
    return polys


def simplify_polygons(contours: Sequence[np.ndarray], tolerance: float) -> list[np.ndarray]:
    """Douglas-Peucker of each float64 [K, 2] (row, col) chain, point for point the
    output of ``skimage.measure.approximate_polygon(c, tolerance)`` (a subset of rows).

    The chains are split breadth-first: the result does not depend on the order in
    which segments are split. The segment angles go through numpy's own
    ``arctan2``/``sin``/``cos`` (as skimage's do; libm's ``atan2`` differs by an ulp
    on some inputs, which can flip a near-tie); only the per-point distances and the
    arg-max run in the Numba kernel, with skimage's operation order and no FMA.
    """
    if tolerance <= 0 or not contours:
        return list(contours)
    sizes = np.array([len(c) for c in contours], np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    coords = np.ascontiguousarray(np.concatenate(contours).astype(np.float64, copy=False))
    chain = np.zeros(len(coords), bool)
    chain[starts[sizes > 0]] = True
    chain[ends[sizes > 0] - 1] = True
    s, e = starts, ends - 1
    dp_split = _dp_split_kernel()
    while True:
        inner = e - s > 1
        s, e = s[inner], e[inner]
        if s.size == 0:
            break
        r0, c0, r1, c1 = coords[s, 0], coords[s, 1], coords[e, 0], coords[e, 1]
        dr, dc = r1 - r0, c1 - c0
        angle = -np.arctan2(dr, dc)
        sin_a, cos_a = np.sin(angle), np.cos(angle)
        dist0 = c0 * sin_a + r0 * cos_a
        split = dp_split(coords, s, e, cos_a, sin_a, dist0, float(tolerance))
        ok = split >= 0
        chain[split[ok]] = True
        s, e = np.concatenate([s[ok], split[ok]]), np.concatenate([split[ok], e[ok]])
    return [coords[a:b][chain[a:b]] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


@functools.cache
def _dp_split_kernel() -> Any:
    """The compiled Douglas-Peucker split kernel (Numba imported on first use: `cpt` starts fast).

    ``dp_split(coords, s, e, cos_a, sin_a, dist0, tol)``: coords float64 [K, 2] (row, col);
    for each segment k (int64 endpoints s[k] < e[k], float64 angle terms), int64 [n]: the
    first inner point farthest from the segment if that distance > tol, else -1.
    """
    from numba import njit

    @njit(cache=True)
    def dp_split(coords, s, e, cos_a, sin_a, dist0, tol):
        out = np.full(s.shape[0], -1, np.int64)
        for k in range(s.shape[0]):
            r0, c0 = coords[s[k], 0], coords[s[k], 1]
            r1, c1 = coords[e[k], 0], coords[e[k], 1]
            dr, dc = r1 - r0, c1 - c0
            best, arg = -1.0, -1
            for j in range(s[k] + 1, e[k]):
                r, c = coords[j, 0], coords[j, 1]
                dr0, dc0, dr1, dc1 = r - r0, c - c0, r - r1, c - c1
                # skimage's expressions, operation for operation (same rounding).
                if dr0 * dr + dc0 * dc > 0 and (-dr1) * dr - dc1 * dc > 0:
                    d = abs(r * cos_a[k] + c * sin_a[k] - dist0[k])
                else:
                    d = min(np.sqrt(dc0 * dc0 + dr0 * dr0), np.sqrt(dc1 * dc1 + dr1 * dr1))
                if d > best:  # strict: the first maximum wins, like np.argmax
                    best, arg = d, j
            if best > tol:
                out[k] = arg
        return out

    return dp_split


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Tight COCO box ``[x, y, w, h]`` of a bool [H, W] mask ([0, 0, 0, 0] when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])]


def tight_crop(mask: np.ndarray, y0: int = 0, x0: int = 0) -> Crop:
    """The tight crop of bool [h, w] ``mask`` whose top-left pixel sits at (y0, x0) of the
    image: (bool [h', w'] crop, top row, left column); bool [0, 0] at (0, 0) when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), bool), 0, 0
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], y0 + int(rows[0]), x0 + int(cols[0])


def crop_box(crop: np.ndarray, y0: int, x0: int) -> list[float]:
    """``mask_box`` of a tight crop: COCO xywh, [0, 0, 0, 0] when empty."""
    if crop.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(x0), float(y0), float(crop.shape[1]), float(crop.shape[0])]
