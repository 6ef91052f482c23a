"""Mask encodings of ``cpt parse``: COCO RLE, polygons and boxes, from full masks or crops.

A *crop* is ``(bool [h, w] mask, y0, x0)``: the part of an [H, W] image mask between
rows y0..y0+h-1 and columns x0..x0+w-1, the mask being False everywhere else. A *tight*
crop has a True pixel on each of its four edges (an empty mask: bool [0, 0] at (0, 0)).
Working on crops keeps ``encode_result`` from building 100 full-resolution masks; every
crop function gives exactly the output of its full-mask twin (tests compare them).
``PackedCrops`` holds many crops in four arrays, so that one Numba call
(``clothparse.parse.mask_kernels``, ``contours_kernel``) encodes all the items of a photo.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

#: (bool [h, w] mask, top row y0, left column x0) of an image mask, False outside.
Crop = tuple[np.ndarray, int, int]


@dataclass(frozen=True)
class PackedCrops:
    """K crops in four arrays, the form the kernels take (and ``outputs.item_crops`` makes).

    bits:    bool [sum of h*w], crop k row-major at bits[offsets[k]:offsets[k + 1]];
    offsets: int64 [K + 1]; shapes: int64 [K, 2] (h, w); origins: int64 [K, 2] (y0, x0).
    """

    bits: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    origins: np.ndarray

    def __len__(self) -> int:
        return len(self.shapes)

    def crop(self, k: int) -> Crop:
        """Crop k as (bool [h, w] view, y0, x0)."""
        h, w = (int(v) for v in self.shapes[k])
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.bits[a:b].reshape(h, w), int(self.origins[k, 0]), int(self.origins[k, 1])

    def areas(self) -> list[int]:
        """True pixels per crop."""
        bounds = self.offsets.tolist()
        return [int(np.count_nonzero(self.bits[a:b])) for a, b in itertools.pairwise(bounds)]

    def boxes(self) -> list[list[float]]:
        """``crop_box`` of every crop (of tight crops: the masks' COCO xywh boxes)."""
        return [crop_box(*self.crop(k)) for k in range(len(self))]


def pack_crops(crops: Sequence[Crop]) -> PackedCrops:
    """``crops`` as one ``PackedCrops`` (one copy of their pixels)."""
    flat = [np.ascontiguousarray(c, dtype=bool).reshape(-1) for c, _, _ in crops]
    sizes = np.array([f.size for f in flat], np.int64)
    return PackedCrops(
        np.concatenate(flat) if flat else np.zeros(0, bool),
        np.concatenate([np.zeros(1, np.int64), np.cumsum(sizes, dtype=np.int64)]),
        np.array([c.shape for c, _, _ in crops], np.int64).reshape(-1, 2),
        np.array([(y0, x0) for _, y0, x0 in crops], np.int64).reshape(-1, 2),
    )


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool/uint8 [H, W] mask: ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def crop_rle(crop: np.ndarray, y0: int, x0: int, shape: tuple[int, int]) -> dict[str, Any]:
    """``encode_rle`` of an [H, W] mask (``shape``) that is False outside bool [h, w] ``crop``
    placed with its top-left pixel at (y0, x0), without building the full mask."""
    return packed_rles(pack_crops([(crop, y0, x0)]), shape)[0]


def packed_rles(packed: PackedCrops, shape: tuple[int, int]) -> list[dict[str, Any]]:
    """``crop_rle`` of every crop of ``packed`` in an image of ``shape`` (H, W): one kernel
    call makes the run lengths of all and pycocotools' string encoding of them."""
    height, width = (int(v) for v in shape)
    chars, offsets = _kernels().rle_batch(packed.bits, packed.offsets, packed.shapes, packed.origins, height, width)
    text = chars.tobytes().decode("ascii")
    bounds = offsets.tolist()
    return [{"size": [height, width], "counts": text[a:b]} for a, b in itertools.pairwise(bounds)]


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
    crop, y0, x0 = tight_crop(mask.astype(bool))
    return crop_polygons([(crop, y0, x0)], tolerance)[0]


def crop_polygons(crops: Sequence[Crop], tolerance: float = 1.0) -> list[list[list[float]]]:
    """``mask_polygons`` of several masks given as tight crops (see ``packed_polygons``)."""
    return packed_polygons(pack_crops(crops), tolerance)


def packed_polygons(packed: PackedCrops, tolerance: float = 1.0) -> list[list[list[float]]]:
    """``mask_polygons`` of every crop of ``packed`` (tight crops: a True pixel on each edge).

    One kernel call traces the contours of all crops (each padded by one pixel, so contours
    close around masks touching the border), then all contours are simplified together
    (one vectorised Douglas-Peucker pass per recursion level instead of a Python loop per
    segment). Contour points are pixel-edge midpoints, so every coordinate is a multiple of
    0.5, exact in float64: rounding to 2 decimals (the JSON's precision) would not change it.
    """
    from clothparse.parse.contours_kernel import TABLE, contours_batch

    points, offsets, owner = contours_batch(packed.bits, packed.offsets, packed.shapes, TABLE)
    starts, ends = offsets[:-1], offsets[1:]
    keep = _simplified(points, starts, ends, tolerance) if tolerance > 0 else np.ones(len(points), bool)
    kept = np.diff(np.concatenate([np.zeros(1, np.int64), np.cumsum(keep, dtype=np.int64)])[offsets])
    point_owner = np.repeat(owner, ends - starts)
    xy = np.empty((len(points), 2), np.float64)
    xy[:, 0] = points[:, 1] - 1 + packed.origins[point_owner, 1]
    xy[:, 1] = points[:, 0] - 1 + packed.origins[point_owner, 0]
    flat = xy[keep].reshape(-1).tolist()
    polys: list[list[list[float]]] = [[] for _ in range(len(packed))]
    at = 0
    for n_kept, k in zip(kept.tolist(), owner.tolist(), strict=True):
        # Closed contours repeat their first point (dropped here): 4 rows are 3 corners.
        if n_kept >= 4:
            polys[k].append(flat[at : at + 2 * (n_kept - 1)])
        at += 2 * n_kept
    return polys


def simplify_polygons(contours: Sequence[np.ndarray], tolerance: float) -> list[np.ndarray]:
    """Douglas-Peucker of each float64 [K, 2] (row, col) chain, point for point the
    output of ``skimage.measure.approximate_polygon(c, tolerance)`` (a subset of rows)."""
    if tolerance <= 0 or not contours:
        return list(contours)
    sizes = np.array([len(c) for c in contours], np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    coords = np.ascontiguousarray(np.concatenate(contours).astype(np.float64, copy=False))
    chain = _simplified(coords, starts, ends, tolerance)
    return [coords[a:b][chain[a:b]] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _simplified(coords: np.ndarray, starts: np.ndarray, ends: np.ndarray, tolerance: float) -> np.ndarray:
    """bool [N]: the points of float64 [N, 2] (row, col) ``coords`` that Douglas-Peucker at
    ``tolerance`` keeps, chain i being coords[starts[i]:ends[i]] (``simplify_polygons``).

    The chains are split breadth-first: the result does not depend on the order in
    which segments are split. The segment angles go through numpy's own
    ``arctan2``/``sin``/``cos`` (as skimage's do; libm's ``atan2`` differs by an ulp
    on some inputs, which can flip a near-tie); only the per-point distances and the
    arg-max run in the Numba kernel, with skimage's operation order and no FMA.
    """
    dp_split = _kernels().dp_split
    sizes = ends - starts
    chain = np.zeros(len(coords), bool)
    chain[starts[sizes > 0]] = True
    chain[ends[sizes > 0] - 1] = True
    s, e = starts, ends - 1
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
    return chain


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


@functools.cache
def _kernels() -> Any:
    """``clothparse.parse.mask_kernels`` (Numba imported on first use: `cpt` starts fast)."""
    from clothparse.parse import mask_kernels

    return mask_kernels
