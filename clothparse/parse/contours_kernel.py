"""Numba kernels of ``clothparse.parse.contours`` (which documents the method).

Module-level ``@njit(cache=True, nogil=True)`` functions: a second process loads machine
code from ``__pycache__``, and encoding on a worker thread leaves the interpreter to the
others; ``contours`` imports this module on first use so that `cpt` starts fast.
``contours_batch`` traces many crops in one call, reusing one pair of point tables (the
per-mask tables, 2 x 2HW int64 filled with -1, cost more than the tracing on big crops).
The masks it traces are padded, so every contour closes, and after square row r every
open contour end lies on the horizontal edges of row r + 1: its point tables are rings of
three rows (horizontal edges of rows r and r + 1, vertical edges of row r), O(W) not O(HW).
Each node keeps its table slot and its doubled coordinates, so that no point id is ever
divided back into a row and a column (64-bit divisions were a third of the time).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# (from, to) edge-midpoint codes per square case (bit 0 ul, 1 ur, 2 ll, 3 lr); two rows
# for the saddles, -1 where a case has fewer segments. 0 top, 1 left, 2 right, 3 bottom.
TABLE = np.full((16, 2, 2), -1, np.int64)
for _case, _segs in {
    1: [(0, 1)],
    2: [(2, 0)],
    3: [(2, 1)],
    4: [(1, 3)],
    5: [(0, 3)],
    6: [(2, 0), (1, 3)],
    7: [(2, 3)],
    8: [(3, 2)],
    9: [(0, 1), (3, 2)],
    10: [(3, 0)],
    11: [(3, 1)],
    12: [(1, 2)],
    13: [(0, 2)],
    14: [(1, 0)],
}.items():
    for _j, _seg in enumerate(_segs):
        TABLE[_case, _j] = _seg


@njit(cache=True, nogil=True, inline="always")
def _edge(code: int, r: int, c: int, w: int, ring: bool) -> tuple[int, int, int]:
    """Edge midpoint ``code`` (0 top, 1 left, 2 right, 3 bottom) of square (r, c) in a mask
    W wide: (its slot in the point tables, 2 * row, 2 * column). Point ids: horizontal edge
    (r, c)-(r, c+1) 2 * (r * W + c), vertical (r, c)-(r+1, c) that + 1; ring slots:
    horizontal edges by row parity in [0, 2W), vertical edges of the square row in [2W, 3W)."""
    if code == 0:
        return ((r & 1) * w + c if ring else 2 * (r * w + c)), 2 * r, 2 * c + 1
    if code == 1:
        return (2 * w + c if ring else 2 * (r * w + c) + 1), 2 * r + 1, 2 * c
    if code == 2:
        return (2 * w + c + 1 if ring else 2 * (r * w + c + 1) + 1), 2 * r + 1, 2 * c + 2
    return (((r + 1) & 1) * w + c if ring else 2 * ((r + 1) * w + c)), 2 * r + 2, 2 * c + 1


@njit(cache=True, nogil=True)
def contours(m, table):
    """(float64 [N, 2] points, int64 [C + 1] offsets) of uint8 (0/1) [H, W] ``m``; see the module doc."""
    h, w = m.shape
    starts = np.full(2 * h * w, -1, np.int64)
    ends = np.full(2 * h * w, -1, np.int64)
    return _trace(m, table, starts, ends, False)


@njit(cache=True, nogil=True)
def contours_batch(bits, offsets, shapes, table):
    """Contours of many masks, each padded by one False pixel on every side first.

    bits: bool [sum of h*w], the masks row-major one after another; mask k is
    bits[offsets[k]:offsets[k + 1]] shaped ``shapes[k]`` = (h, w) (int64 [K + 1], [K, 2]).
    Returns (float64 [N, 2] points in the padded mask's (row, col), int64 [C + 1] contour
    offsets, int64 [C] the mask of each contour); per mask, the contours of ``contours``.
    """
    n = shapes.shape[0]
    size = 4
    width = 2
    for k in range(n):
        size = max(size, (shapes[k, 0] + 2) * (shapes[k, 1] + 2))
        width = max(width, shapes[k, 1] + 2)
    starts = np.full(3 * width, -1, np.int64)
    ends = np.full(3 * width, -1, np.int64)
    scratch = np.zeros(size, np.uint8)
    parts = []
    counts = np.zeros(n, np.int64)
    total = 0
    for k in range(n):
        h, w = shapes[k, 0], shapes[k, 1]
        if h == 0 or w == 0:
            parts.append((np.zeros((0, 2), np.float64), np.zeros(1, np.int64)))
            continue
        padded = scratch[: (h + 2) * (w + 2)].reshape(h + 2, w + 2)
        padded[:] = 0
        padded[1 : h + 1, 1 : w + 1] = bits[offsets[k] : offsets[k + 1]].reshape(h, w)
        points, offs = _trace(padded, table, starts, ends, True)
        parts.append((points, offs))
        counts[k] = offs.shape[0] - 1
        total += points.shape[0]
    points_all = np.empty((total, 2), np.float64)
    offsets_all = np.zeros(counts.sum() + 1, np.int64)
    owner = np.empty(counts.sum(), np.int64)
    at = 0
    c = 0
    for k in range(n):
        points, offs = parts[k]
        points_all[at : at + points.shape[0]] = points
        for j in range(offs.shape[0] - 1):
            offsets_all[c + 1] = at + offs[j + 1]
            owner[c] = k
            c += 1
        at += points.shape[0]
    return points_all, offsets_all, owner


@njit(cache=True, nogil=True)
def _grow(nodes, node_next, contours_, alive):
    """``_trace``'s node arrays (int64 [N, 3]: table slot, 2 * row, 2 * column; int64 [N]
    next node, -1 = none) and contour arrays (int64 [C, 2] first and last node; bool [C]
    alive) at twice their size."""
    n, c = nodes.shape[0], contours_.shape[0]
    new_nodes = np.empty((2 * n, 3), np.int64)
    new_next = np.full(2 * n, -1, np.int64)
    new_contours = np.empty((2 * c, 2), np.int64)
    new_alive = np.zeros(2 * c, np.bool_)
    new_nodes[:n] = nodes
    new_next[:n] = node_next
    new_contours[:c] = contours_
    new_alive[:c] = alive
    return new_nodes, new_next, new_contours, new_alive


@njit(cache=True, nogil=True)
def _trace(m, table, starts, ends, ring):
    """``contours`` of uint8 (0/1) [H, W] ``m`` with point tables ``starts`` / ``ends``, all
    -1, which it leaves all -1 again for the next mask: int64 [>= 2HW] indexed by edge
    point, or with ``ring`` (only for masks whose contours all close) int64 [>= 3W] rings.
    starts[s] / ends[s]: the contour that begins / ends at the point of slot s, or -1."""
    h, w = m.shape
    # Node and contour arrays grow by doubling (a counting pass first cost as much as tracing).
    cap = 4 * (h + w) + 16
    nodes = np.empty((2 * cap, 3), np.int64)
    node_next = np.full(2 * cap, -1, np.int64)
    cont = np.empty((cap, 2), np.int64)  # first, last node
    alive = np.zeros(cap, np.bool_)
    nn = 0
    nc = 0
    for r in range(h - 1):
        top, bot = m[r], m[r + 1]
        a, b = top[0], bot[0]  # the square's left corners, carried from the previous square
        for c in range(w - 1):
            cu = np.uint64(c + 1)  # unsigned: no negative-index checks in the hot loop
            a2, b2 = top[cu], bot[cu]
            case = a | (a2 << 1) | (b << 2) | (b2 << 3)
            a, b = a2, b2
            if case == 0 or case == 15:  # inside or outside: no segment
                continue
            if nn + 4 > nodes.shape[0] or nc + 2 > cont.shape[0]:
                nodes, node_next, cont, alive = _grow(nodes, node_next, cont, alive)
            for j in range(2):
                if table[case, j, 0] < 0:
                    break
                fs, fy, fx = _edge(table[case, j, 0], r, c, w, ring)
                ts, ty, tx = _edge(table[case, j, 1], r, c, w, ring)
                tail = starts[ts]  # a contour this segment prepends to
                starts[ts] = -1
                head = ends[fs]  # a contour this segment appends to
                ends[fs] = -1
                if tail >= 0 and head >= 0:
                    if tail == head:  # closes the contour
                        nodes[nn, 0], nodes[nn, 1], nodes[nn, 2] = ts, ty, tx
                        node_next[cont[head, 1]] = nn
                        cont[head, 1] = nn
                        nn += 1
                    elif tail > head:  # head + tail, kept as head (made first)
                        node_next[cont[head, 1]] = cont[tail, 0]
                        cont[head, 1] = cont[tail, 1]
                        alive[tail] = False
                        ends[nodes[cont[head, 1], 0]] = head
                    else:  # head + tail, kept as tail (made first)
                        starts[nodes[cont[head, 0], 0]] = -1
                        node_next[cont[head, 1]] = cont[tail, 0]
                        cont[tail, 0] = cont[head, 0]
                        alive[head] = False
                        starts[nodes[cont[tail, 0], 0]] = tail
                elif tail < 0 and head < 0:  # a new contour
                    nodes[nn, 0], nodes[nn, 1], nodes[nn, 2] = fs, fy, fx
                    nodes[nn + 1, 0], nodes[nn + 1, 1], nodes[nn + 1, 2] = ts, ty, tx
                    node_next[nn] = nn + 1
                    cont[nc, 0] = nn
                    cont[nc, 1] = nn + 1
                    alive[nc] = True
                    starts[fs] = nc
                    ends[ts] = nc
                    nn += 2
                    nc += 1
                elif head < 0:  # prepend to tail
                    nodes[nn, 0], nodes[nn, 1], nodes[nn, 2] = fs, fy, fx
                    node_next[nn] = cont[tail, 0]
                    cont[tail, 0] = nn
                    starts[fs] = tail
                    nn += 1
                else:  # append to head
                    nodes[nn, 0], nodes[nn, 1], nodes[nn, 2] = ts, ty, tx
                    node_next[cont[head, 1]] = nn
                    cont[head, 1] = nn
                    ends[ts] = head
                    nn += 1
    for i in range(nn):  # open contours leave entries behind
        starts[nodes[i, 0]] = -1
        ends[nodes[i, 0]] = -1
    count = 0
    n_alive = 0
    for k in range(nc):
        if alive[k]:
            n_alive += 1
            i = cont[k, 0]
            while i >= 0:
                count += 1
                i = node_next[i]
    points = np.empty((count, 2), np.float64)
    offsets = np.zeros(n_alive + 1, np.int64)
    at = 0
    q = 0
    for k in range(nc):
        if not alive[k]:
            continue
        i = cont[k, 0]
        while i >= 0:
            points[at, 0] = nodes[i, 1] * 0.5  # halves of small integers: exact
            points[at, 1] = nodes[i, 2] * 0.5
            at += 1
            i = node_next[i]
        q += 1
        offsets[q] = at
    return points, offsets
