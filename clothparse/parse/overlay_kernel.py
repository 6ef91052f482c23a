"""Numba kernel of ``clothparse.parse.overlay.blend_parsing`` (which documents the blend).

Module-level ``@njit(cache=True, nogil=True)``: a second process loads machine code from
``__pycache__``, and encoding on a worker thread leaves the interpreter to the others.
``overlay`` imports this module on first use so that `cpt` starts fast. Indices are
unsigned (no negative-index wraparound checks): 2.9 ms instead of 6 ms on 1024 x 768.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)


@njit(cache=True, nogil=True)
def blend(image, label_map, only, has_only, sp, has_sp, tab, edge, sp_tab, sp_edge, out):
    """Write the coloured parsing of RGB uint8 [H, W, 3] ``image`` into ``out[:H, :W]``.

    label_map: uint8 [H, W] labels 0-14; only: bool [H, W] (read when ``has_only``);
    sp: int32 [H, W] superpixel ids (read when ``has_sp``); out: uint8 [>= H, >= W, 3],
    rows contiguous. Tables, uint8, already rounded: ``tab`` [L, 256, 3] the blend of
    label l over photo byte v, ``edge`` [L, 3] the parsing-edge colour, ``sp_tab`` /
    ``sp_edge`` the same under a superpixel edge. A parsing edge is a non-zero label
    (inside ``only``) with a 4-neighbour of another label; a superpixel edge a non-zero
    id with a 4-neighbour of another id. Outside ``only`` the blend uses label 0 (the photo).
    """
    h, w = label_map.shape
    tab_f = tab.reshape(-1)
    sp_tab_f = sp_tab.reshape(-1)
    edge_f = edge.reshape(-1)
    sp_edge_f = sp_edge.reshape(-1)
    wu = np.uint64(w)
    for y in range(h):
        # Rows above / below the image stand in as the row itself: no neighbour differs there.
        lrow = label_map[y]
        lup = label_map[y - 1] if y > 0 else lrow
        ldn = label_map[y + 1] if y + 1 < h else lrow
        srow = sp[y] if has_sp else sp[0]
        sup = sp[y - 1] if (has_sp and y > 0) else srow
        sdn = sp[y + 1] if (has_sp and y + 1 < h) else srow
        orow = only[y] if has_only else only[0]
        img = image[y].reshape(-1)
        dst = out[y].reshape(-1)
        for xi in range(w):
            x = np.uint64(xi)
            xl = x - _U1 if xi > 0 else x
            xr = x + _U1 if x + _U1 < wu else x
            lab = lrow[x]
            inside = orow[x] if has_only else True
            on_edge = False
            if lab != 0 and inside:
                on_edge = (lrow[xl] != lab) | (lrow[xr] != lab) | (lup[x] != lab) | (ldn[x] != lab)
            on_sp = False
            if has_sp:
                s = srow[x]
                if s != 0:
                    on_sp = (srow[xl] != s) | (srow[xr] != s) | (sup[x] != s) | (sdn[x] != s)
            p = x * _U3
            if on_edge:
                e = sp_edge_f if on_sp else edge_f
                b = np.uint64(lab) * _U3
                dst[p] = e[b]
                dst[p + _U1] = e[b + _U1]
                dst[p + _U2] = e[b + _U2]
            else:
                t = sp_tab_f if on_sp else tab_f
                base = (np.uint64(lab) if inside else np.uint64(0)) * np.uint64(768)
                dst[p] = t[base + np.uint64(img[p]) * _U3]
                dst[p + _U1] = t[base + np.uint64(img[p + _U1]) * _U3 + _U1]
                dst[p + _U2] = t[base + np.uint64(img[p + _U2]) * _U3 + _U2]


@njit(cache=True, nogil=True)
def label_counts(label_map):
    """int64 [256]: pixels of each value of uint8 [H, W] ``label_map`` (``np.bincount``
    casts the map to intp first: ~1.5 ms at 1024 x 768; this ~0.3 ms)."""
    counts = np.zeros(256, np.int64)
    for y in range(label_map.shape[0]):
        row = label_map[y]
        for x in range(label_map.shape[1]):
            counts[row[x]] += 1
    return counts
