"""Numba kernel of ``clothparse.parse.contours`` (which documents the method).

Module-level ``@njit(cache=True)`` functions, so a second process loads machine code from
``__pycache__``; ``contours`` imports this module on first use so that `cpt` starts fast.
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


@njit(cache=True, inline="always")
def _edge_id(code: int, r: int, c: int, width: int) -> int:
    # Horizontal edge (r, c)-(r, c+1): 2 * (r * W + c); vertical (r, c)-(r+1, c): that + 1.
    if code == 0:
        return 2 * (r * width + c)
    if code == 1:
        return 2 * (r * width + c) + 1
    if code == 2:
        return 2 * (r * width + c + 1) + 1
    return 2 * ((r + 1) * width + c)


@njit(cache=True)
def contours(m, table):
    """(float64 [N, 2] points, int64 [C + 1] offsets) of bool [H, W] ``m``; see the module doc."""
    h, w = m.shape
    nseg = 0
    for r in range(h - 1):
        for c in range(w - 1):
            case = m[r, c] | (m[r, c + 1] << 1) | (m[r + 1, c] << 2) | (m[r + 1, c + 1] << 3)
            nseg += (table[case, 0, 0] >= 0) + (table[case, 1, 0] >= 0)
    node_pt = np.empty(2 * nseg + 1, np.int64)
    node_next = np.full(2 * nseg + 1, -1, np.int64)
    first = np.empty(nseg + 1, np.int64)
    last = np.empty(nseg + 1, np.int64)
    alive = np.zeros(nseg + 1, np.bool_)
    # starts[p] / ends[p]: the contour that begins / ends at edge point p, or -1.
    starts = np.full(2 * h * w, -1, np.int64)
    ends = np.full(2 * h * w, -1, np.int64)
    nn = 0
    nc = 0
    for r in range(h - 1):
        for c in range(w - 1):
            case = m[r, c] | (m[r, c + 1] << 1) | (m[r + 1, c] << 2) | (m[r + 1, c + 1] << 3)
            for j in range(2):
                if table[case, j, 0] < 0:
                    break
                f = _edge_id(table[case, j, 0], r, c, w)
                t = _edge_id(table[case, j, 1], r, c, w)
                tail = starts[t]  # a contour this segment prepends to
                starts[t] = -1
                head = ends[f]  # a contour this segment appends to
                ends[f] = -1
                if tail >= 0 and head >= 0:
                    if tail == head:  # closes the contour
                        node_pt[nn] = t
                        node_next[last[head]] = nn
                        last[head] = nn
                        nn += 1
                    elif tail > head:  # head + tail, kept as head (made first)
                        node_next[last[head]] = first[tail]
                        last[head] = last[tail]
                        alive[tail] = False
                        ends[node_pt[last[head]]] = head
                    else:  # head + tail, kept as tail (made first)
                        starts[node_pt[first[head]]] = -1
                        node_next[last[head]] = first[tail]
                        first[tail] = first[head]
                        alive[head] = False
                        starts[node_pt[first[tail]]] = tail
                elif tail < 0 and head < 0:  # a new contour
                    node_pt[nn] = f
                    node_pt[nn + 1] = t
                    node_next[nn] = nn + 1
                    first[nc] = nn
                    last[nc] = nn + 1
                    alive[nc] = True
                    starts[f] = nc
                    ends[t] = nc
                    nn += 2
                    nc += 1
                elif head < 0:  # prepend to tail
                    node_pt[nn] = f
                    node_next[nn] = first[tail]
                    first[tail] = nn
                    starts[f] = tail
                    nn += 1
                else:  # append to head
                    node_pt[nn] = t
                    node_next[last[head]] = nn
                    last[head] = nn
                    ends[t] = head
                    nn += 1
    count = 0
    n_alive = 0
    for k in range(nc):
        if alive[k]:
            n_alive += 1
            i = first[k]
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
        i = first[k]
        while i >= 0:
            p = node_pt[i]
            e = p // 2
            r, c = e // w, e % w
            if p % 2 == 0:
                points[at, 0] = r
                points[at, 1] = c + 0.5
            else:
                points[at, 0] = r + 0.5
                points[at, 1] = c
            at += 1
            i = node_next[i]
        q += 1
        offsets[q] = at
    return points, offsets
