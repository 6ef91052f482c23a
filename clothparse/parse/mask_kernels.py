"""Numba kernels of ``clothparse.parse.mask_codec`` (which documents crops and packed crops).

Module-level ``@njit(cache=True, nogil=True)`` functions: a second process loads machine
code from ``__pycache__``, and encoding on a worker thread leaves the interpreter to the
others. ``mask_codec`` imports this module on first use so that `cpt` starts fast.

Packed crops: ``bits`` bool [sum of h*w], crop k row-major at bits[offsets[k]:offsets[k+1]],
``shapes`` int64 [K, 2] (h, w), ``origins`` int64 [K, 2] (y0, x0) in the image.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def instance_crops(sp_labels, sp_instance, n):
    """Tight packed crops of instances 0..n-1 of a superpixel assignment.

    sp_labels: int [H, W] superpixel ids; sp_instance: int [S] instance of each superpixel
    (< 0 or >= n: none). Instance i's mask is ``sp_instance[sp_labels] == i``. Returns
    (bits, offsets, shapes, origins); an empty instance is a (0, 0) crop at (0, 0). Both
    passes (boxes, then pixels) walk each row in runs of one superpixel.
    """
    h, w = sp_labels.shape
    box = np.empty((n, 4), np.int64)  # y0, y1 (exclusive), x0, x1 (exclusive)
    box[:, 0] = h
    box[:, 1] = 0
    box[:, 2] = w
    box[:, 3] = 0
    for y in range(h):
        row = sp_labels[y]
        x = 0
        while x < w:
            sp = row[x]
            stop = x + 1
            while stop < w and row[stop] == sp:
                stop += 1
            i = sp_instance[sp]
            if 0 <= i < n:
                box[i, 0] = min(box[i, 0], y)
                box[i, 1] = max(box[i, 1], y + 1)
                box[i, 2] = min(box[i, 2], x)
                box[i, 3] = max(box[i, 3], stop)
            x = stop
    shapes = np.zeros((n, 2), np.int64)
    origins = np.zeros((n, 2), np.int64)
    offsets = np.zeros(n + 1, np.int64)
    for i in range(n):
        if box[i, 1] > box[i, 0]:
            shapes[i, 0] = box[i, 1] - box[i, 0]
            shapes[i, 1] = box[i, 3] - box[i, 2]
            origins[i, 0] = box[i, 0]
            origins[i, 1] = box[i, 2]
        offsets[i + 1] = offsets[i] + shapes[i, 0] * shapes[i, 1]
    bits = np.zeros(offsets[n], np.bool_)
    for y in range(h):
        row = sp_labels[y]
        x = 0
        while x < w:
            sp = row[x]
            stop = x + 1
            while stop < w and row[stop] == sp:
                stop += 1
            i = sp_instance[sp]
            if 0 <= i < n:
                at = offsets[i] + (y - origins[i, 0]) * shapes[i, 1] - origins[i, 1]
                bits[at + x : at + stop] = True
            x = stop
    return bits, offsets, shapes, origins


@njit(cache=True, nogil=True)
def rle_batch(bits, offsets, shapes, origins, height, width):
    """COCO compressed RLE ``counts`` strings of packed crops placed in a height x width image
    (False outside them): (uint8 [total] ASCII characters, int64 [K + 1] string offsets).

    Runs go column-major (x outer, y inner) and start with a run of zeros, possibly empty,
    as ``pycocotools.mask.encode``; the string is pycocotools' ``rleToString`` of them.
    The run ends are found row-major (sequential reads, unlike walking the crop's columns)
    between each row and the one above, the crop having a row of zeros above and below;
    a stable counting sort by column then puts them in column-major order.
    """
    n_img = height * width
    k_all = shapes.shape[0]
    size = 1024  # run ends; grows by doubling (the worst case, (h + 1) * w, is rare and big)
    tx = np.empty(size, np.int64)  # run ends in scan order: column, padded row
    ty = np.empty(size, np.int64)
    parts = []
    str_offsets = np.zeros(k_all + 1, np.int64)
    for k in range(k_all):
        h, w = shapes[k, 0], shapes[k, 1]
        y0, x0 = origins[k, 0], origins[k, 1]
        crop = bits[offsets[k] : offsets[k + 1]]
        t = 0
        for y in range(h + 1 if h > 0 else 0):  # the change between rows y - 1 and y (zeros past the ends)
            if t + w > size:
                size = 2 * (t + w)
                tx2, ty2 = np.empty(size, np.int64), np.empty(size, np.int64)
                tx2[:t] = tx[:t]
                ty2[:t] = ty[:t]
                tx, ty = tx2, ty2
            if y == 0 or y == h:
                edge = crop[:w] if y == 0 else crop[(h - 1) * w : h * w]
                for x in range(w):
                    if edge[x]:
                        tx[t] = x
                        ty[t] = y
                        t += 1
            else:
                above = crop[(y - 1) * w : y * w]
                below = crop[y * w : (y + 1) * w]
                for x in range(w):
                    if above[x] != below[x]:
                        tx[t] = x
                        ty[t] = y
                        t += 1
        idx = np.empty(t, np.int64)  # run ends in stream order: column-major pixel index
        counts = np.empty(t + 1, np.int64)
        start = np.zeros(w + 1, np.int64)
        for j in range(t):
            start[tx[j] + 1] += 1
        for x in range(w):
            start[x + 1] += start[x]
        for j in range(t):  # stable: rows stay in order within a column
            x = tx[j]
            idx[start[x]] = (x0 + x) * height + y0 + ty[j]
            start[x] += 1
        # A crop of full height has no zeros between its columns: the end of a run at the
        # foot of one column and a start at the head of the next fall on one index, cancel.
        m = 0
        last = 0
        j = 0
        while j < t:
            if j + 1 < t and idx[j + 1] == idx[j]:
                j += 2
                continue
            if idx[j] >= n_img:  # a run ending at the image's last pixel: no empty last run
                break
            counts[m] = idx[j] - last
            last = idx[j]
            m += 1
            j += 1
        counts[m] = n_img - last  # the last run is never empty
        m += 1
        chars = _rle_string(counts[:m])
        parts.append(chars)
        str_offsets[k + 1] = str_offsets[k] + chars.shape[0]
    out = np.empty(str_offsets[k_all], np.uint8)
    for k in range(k_all):
        out[str_offsets[k] : str_offsets[k + 1]] = parts[k]
    return out, str_offsets


@njit(cache=True, nogil=True)
def _rle_string(counts):
    """pycocotools' ``rleToString``: each count (less the one two before it, from the
    fourth on) in 5-bit groups, low first, 0x20 = more follow, +48 to printable ASCII."""
    out = np.empty(counts.shape[0] * 13, np.uint8)  # 64 bits / 5 per group, rounded up
    p = 0
    for i in range(counts.shape[0]):
        x = counts[i]
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic: negative differences end in -1
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out[p] = c + 48
            p += 1
    return out[:p]


@njit(cache=True, nogil=True)
def dp_split(coords, s, e, cos_a, sin_a, dist0, tol):
    """One Douglas-Peucker level: coords float64 [K, 2] (row, col); for each segment k
    (int64 endpoints s[k] < e[k], float64 angle terms), int64 [n]: the first inner point
    farthest from the segment if that distance > tol, else -1."""
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


@njit(cache=True, nogil=True)
def threshold_paste(m, yi0, yi1, yl0, yl1, xi0, xi1, xl0, xl1, thresh):
    """bool [R, C]: ``paste.paste_mask_region``'s region >= ``thresh``, pixel by pixel.

    m: float32 [M+2, M+2] padded mask; per output row r / column c the bilinear source
    indices (int64) and weights (float32) of ``paste.axis_weights``; thresh: float32.
    The same float32 operations in the same order as the numpy version (horizontal pass,
    then vertical), so the same bits; no [R, C] float array is made.
    """
    rows, cols = yi0.shape[0], xi0.shape[0]
    out = np.empty((rows, cols), np.bool_)
    for r in range(rows):
        a, b = yi0[r], yi1[r]
        wa, wb = yl0[r], yl1[r]
        for c in range(cols):
            t0 = m[a, xi0[c]] * xl0[c] + m[a, xi1[c]] * xl1[c]
            t1 = m[b, xi0[c]] * xl0[c] + m[b, xi1[c]] * xl1[c]
            out[r, c] = t0 * wa + t1 * wb >= thresh
    return out
