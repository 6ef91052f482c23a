"""Fast polygon rasterisation and the polygon shapes the generator is built from.

Coordinates are image pixels as (x, y) = (column, row); the centre of pixel (r, c)
is at (x=c, y=r). A pixel belongs to a polygon when its centre is inside it
(even-odd rule, half-open on the right/bottom edge so abutting polygons tile).
Rasterised shapes are returned as flat pixel indices ``r * width + c`` (int64,
sorted by row), which the scene uses both to paint its owner map and to evaluate
textures at exactly those pixels. An image size is a side (square) or a (height, width)
pair (``Size``).

skimage.draw.polygon costs ~0.4 ms for a 70x80 px shape; this vectorised scanline
fill costs a few tens of microseconds, which keeps a scene under the time budget.
"""

from __future__ import annotations

import functools
import math

import numpy as np

EMPTY = np.zeros(0, dtype=np.int64)

#: An image size: one side (square) or (height, width) in pixels.
Size = int | tuple[int, int]


def hw(size: Size) -> tuple[int, int]:
    """(height, width) of ``size``."""
    if isinstance(size, tuple):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def fill_polygon(poly: np.ndarray, size: Size) -> np.ndarray:
    """Flat indices of the pixels of an image of ``size`` (side, or (height, width)) inside ``poly``.

    ``poly``: float [N, 2] vertices (x, y) in pixels, N >= 3, any winding, may be
    non-convex (even-odd rule). Returns int64 [K] indices ``r * width + c``, each
    pixel once, sorted; empty when the polygon misses the image.
    """
    return fill_polygons([poly], size)[0]


def fill_polygons(polys: list[np.ndarray], size: Size) -> list[np.ndarray]:
    """``fill_polygon`` for many polygons in one vectorised pass (one result per polygon).

    Every edge emits one crossing per scanline it spans (half-open in y); crossings
    sorted by (polygon, row, x) pair up into runs. The work is linear in the number
    of crossings, and the numpy call overhead is paid once per batch, not per shape.
    """
    if not polys:
        return []
    height, width = hw(size)
    counts = np.array([len(p) for p in polys], dtype=np.int64)
    verts = np.concatenate(polys).astype(np.float64)
    n_poly, n_vert = len(polys), len(verts)
    first = np.cumsum(counts) - counts
    nxt = np.arange(1, n_vert + 1)
    nxt[first + counts - 1] = first  # each polygon closes on its own first vertex
    x0, y0 = verts[:, 0], verts[:, 1]
    x1, y1 = x0[nxt], y0[nxt]
    # Scanline r crosses the edge when min(y0, y1) <= r < max(y0, y1); horizontal
    # edges span no scanline. Rows outside the image are dropped whole, which keeps
    # the crossings of every kept row paired.
    ra = np.clip(np.ceil(np.minimum(y0, y1)), 0, height).astype(np.int64)
    rb = np.clip(np.ceil(np.maximum(y0, y1)), 0, height).astype(np.int64)
    n_cross = np.maximum(rb - ra, 0)
    total = int(n_cross.sum())
    if total == 0:
        return [EMPTY] * n_poly
    edge = np.repeat(np.arange(n_vert), n_cross)
    row = ra[edge] + np.arange(total) - (np.cumsum(n_cross) - n_cross)[edge]
    dy = y1 - y0
    dy = np.where(dy == 0, 1.0, dy)
    # Multiply before dividing (exact at tie points such as integer vertices).
    # Clipping x to [-1, width + 1] changes no pixel (runs are clipped to the image
    # anyway) and bounds the sort key below.
    x = np.clip(x0[edge] + (row - y0[edge]) * (x1 - x0)[edge] / dy[edge], -1.0, width + 1.0)
    pid = np.repeat(np.arange(n_poly), counts)[edge]
    line = pid * height + row
    order = np.argsort(line * (width + 4.0) + (x + 2.0), kind="stable")
    x, line = x[order], line[order]
    # A pixel centre c is inside a crossing pair (a, b) when a <= c < b.
    start = np.clip(np.ceil(x[0::2]), 0, width).astype(np.int64)
    stop = np.clip(np.ceil(x[1::2]), 0, width).astype(np.int64)
    lengths = np.maximum(stop - start, 0)
    line = line[0::2]
    run_first = (line % height) * width + start
    run_offset = np.cumsum(lengths) - lengths
    idx = np.repeat(run_first - run_offset, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
    # Runs are ordered by polygon, so each polygon's pixels are one contiguous slice.
    per_poly = np.bincount(line // height, lengths, n_poly).astype(np.int64)
    return np.split(idx, np.cumsum(per_poly)[:-1])


@functools.lru_cache(maxsize=64)
def _unit_arc(start: float, stop: float, n: int, endpoint: bool) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of ``n`` angles from ``start`` to ``stop`` (cached: shapes reuse a few arcs)."""
    t = np.linspace(start, stop, n, endpoint=endpoint)
    c, s = np.cos(t), np.sin(t)
    c.flags.writeable = False
    s.flags.writeable = False
    return c, s


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 20, angle: float = 0.0
) -> np.ndarray:
    """Polygon float [n, 2] approximating an ellipse rotated by ``angle`` radians."""
    cos_t, sin_t = _unit_arc(0.0, 2.0 * math.pi, n, False)
    ex, ey = rx * cos_t, ry * sin_t
    if angle == 0.0:
        return np.stack([cx + ex, cy + ey], axis=1)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * ex - sa * ey, cy + sa * ex + ca * ey], axis=1)


def half_ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 12) -> np.ndarray:
    """Upper half (smaller y) of an axis-aligned ellipse, closed by its chord; float [n+1, 2]."""
    cos_t, sin_t = _unit_arc(math.pi, 2.0 * math.pi, n + 1, True)
    return np.stack([cx + rx * cos_t, cy + ry * sin_t], axis=1)


def capsule(
    p0: np.ndarray,
    p1: np.ndarray,
    r0: float,
    r1: float,
    round0: bool = True,
    round1: bool = True,
    n_cap: int = 5,
) -> np.ndarray:
    """A tapered limb from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``); float [M, 2].

    Ends are half-discs when ``round*`` is set, otherwise cut flat (hems, sleeve ends).
    """
    dx, dy = float(p1[0] - p0[0]), float(p1[1] - p0[1])
    length = math.hypot(dx, dy)
    dx, dy = (0.0, 1.0) if length < 1e-9 else (dx / length, dy / length)
    d = np.array([dx, dy])
    nrm = np.array([-dy, dx])
    cos_t, sin_t = _unit_arc(-0.5 * math.pi, 0.5 * math.pi, n_cap + 2, True)
    pts: list[np.ndarray] = []
    for p, r, rnd, sign in ((p1, r1, round1, 1.0), (p0, r0, round0, -1.0)):
        if rnd:
            pts.append(
                np.asarray(p) + r * (cos_t[:, None] * (sign * d) - sin_t[:, None] * (sign * nrm))
            )
        else:
            pts.append(np.stack([np.asarray(p) + sign * r * nrm, np.asarray(p) - sign * r * nrm]))
    return np.concatenate(pts, axis=0)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle polygon float [4, 2] with corners (x0, y0), (x1, y1)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def rounded_rect(
    cx: float, cy: float, hw: float, hh: float, radius: float, n_corner: int = 4
) -> np.ndarray:
    """Rectangle centred at (cx, cy), half sizes hw, hh, corners rounded by ``radius``."""
    radius = min(radius, hw, hh)
    pts = []
    for ccx, ccy, a0 in (
        (cx + hw - radius, cy + hh - radius, 0.0),
        (cx - hw + radius, cy + hh - radius, 0.5 * np.pi),
        (cx - hw + radius, cy - hh + radius, np.pi),
        (cx + hw - radius, cy - hh + radius, 1.5 * np.pi),
    ):
        t = np.linspace(a0, a0 + 0.5 * np.pi, n_corner)
        pts.append(np.stack([ccx + radius * np.cos(t), ccy + radius * np.sin(t)], axis=1))
    return np.concatenate(pts, axis=0)


def indices_to_mask(idx: np.ndarray, size: Size) -> np.ndarray:
    """Bool [H, W] mask of flat indices ``idx`` into an image of ``size`` (side, or (H, W))."""
    height, width = hw(size)
    mask = np.zeros(height * width, dtype=bool)
    mask[idx] = True
    return mask.reshape(height, width)
