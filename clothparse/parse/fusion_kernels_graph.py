"""Numba kernels of the fusion step's superpixel graph: adjacency (CSR) and region growth.

Split from ``clothparse.parse.fusion_kernels`` (same conventions); these kernels call no
other jitted function, so Numba's per-file cache invalidation is exact for them.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def dense_to_csr(words: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr int64 [S+1], indices int32 [E]) of the undirected graph whose edges are
    the non-zero upper-triangle entries of the uint8 [S, S_pad] adjacency written by
    ``superpixel_stats``, passed as its uint64 [S, S_pad/8] view (n = S); neighbours ascending.

    Rows are scanned in ascending order, so node v first receives its smaller neighbours
    (while rows i < v are scanned) and then its larger ones (row v): lists come out sorted.
    Whole zero words (8 pairs) are skipped at once; the matrix is mostly zeros. Byte j of
    a word is bits 8j..8j+7 (little-endian, as on x86-64 and arm64).
    """
    deg = np.zeros(n, np.int64)
    for i in range(n):
        for k in range((i + 1) // 8, words.shape[1]):
            if words[i, k] == 0:
                continue
            for j in range(max(8 * k, i + 1), min(8 * k + 8, n)):
                if (words[i, k] >> np.uint64(8 * (j - 8 * k))) & np.uint64(0xFF):
                    deg[i] += 1
                    deg[j] += 1
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + deg[i]
    fill = indptr[:n].copy()
    indices = np.empty(indptr[n], np.int32)
    for i in range(n):
        for k in range((i + 1) // 8, words.shape[1]):
            if words[i, k] == 0:
                continue
            for j in range(max(8 * k, i + 1), min(8 * k + 8, n)):
                if (words[i, k] >> np.uint64(8 * (j - 8 * k))) & np.uint64(0xFF):
                    indices[fill[i]] = j
                    fill[i] += 1
                    indices[fill[j]] = i
                    fill[j] += 1
    return indptr, indices


@njit(cache=True)
def boundary_pairs(labels: np.ndarray) -> np.ndarray:
    """int64 [K, 2] (a < b) of 4-connected label pairs, with repeats (deduplicate afterwards)."""
    h, w = labels.shape
    out = np.empty((2 * h * w, 2), np.int64)
    k = 0
    for y in range(h):
        for x in range(w):
            s = labels[y, x]
            if x + 1 < w and labels[y, x + 1] != s:
                r = labels[y, x + 1]
                out[k, 0] = min(s, r)
                out[k, 1] = max(s, r)
                k += 1
            if y + 1 < h and labels[y + 1, x] != s:
                d = labels[y + 1, x]
                out[k, 0] = min(s, d)
                out[k, 1] = max(s, d)
                k += 1
    return out[:k]


@njit(cache=True)
def grow(sp_inst: np.ndarray, candidate: np.ndarray, lab: np.ndarray, inst_rank: np.ndarray, indptr: np.ndarray, indices: np.ndarray, thresh2: float, max_iters: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Synchronous region growth over the adjacency graph.

    Each round, every unassigned ``candidate`` superpixel looks at its neighbours that
    were assigned before the round and takes the instance of the one with the nearest
    mean Lab colour (squared distance ``< thresh2``; ties: better instance rank, then
    lower superpixel id). Rounds repeat until nothing changes or ``max_iters`` rounds.
    Returns (new sp_inst int32 [S], grown bool [S], rounds run).
    """
    n_sp = sp_inst.shape[0]
    cur = sp_inst.copy()
    grown = np.zeros(n_sp, np.bool_)
    nxt = cur.copy()
    rounds = 0
    while rounds < max_iters:
        changed = False
        for s in range(n_sp):
            if cur[s] >= 0 or not candidate[s]:
                continue
            best_d = thresh2
            best_i = -1
            best_r = 0
            for k in range(indptr[s], indptr[s + 1]):
                nb = indices[k]
                i = cur[nb]
                if i < 0:
                    continue
                d = (lab[s, 0] - lab[nb, 0]) ** 2 + (lab[s, 1] - lab[nb, 1]) ** 2 + (lab[s, 2] - lab[nb, 2]) ** 2
                if d < best_d or (best_i >= 0 and d == best_d and inst_rank[i] < best_r):
                    best_d = d
                    best_i = i
                    best_r = inst_rank[i]
            if best_i >= 0:
                nxt[s] = best_i
                grown[s] = True
                changed = True
        rounds += 1
        if not changed:
            break
        cur[:] = nxt
    return cur, grown, rounds
