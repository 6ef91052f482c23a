"""Numba kernels of the fusion step (``clothparse.parse.fusion`` is the public API).

Every kernel is ``@njit(cache=True)`` so a second process loads machine code from
``__pycache__`` instead of recompiling. Numba invalidates a cached kernel only when its
own file changes, so every kernel that calls the paste helpers below lives in this file;
the graph kernels (which call nothing) are in ``fusion_kernels_graph``. Masks are pasted on the fly with the float32
arithmetic of ``clothparse.parse.paste`` (same operations, same order, so results are
bit-identical to that numpy port); no full-resolution per-detection mask is ever made.

Conventions: ``labels`` int32 [H, W] superpixel ids 0..S-1; ``image`` uint8 [H, W, 3]
RGB; ``boxes`` float32 [N, 4] xyxy image pixels; ``pmasks`` float32 [N, M+2, M+2]
mask probabilities already padded by one zero pixel; ``scale`` float32 (M+2)/M;
``thresh`` float32 binarisation threshold (pasted probability >= thresh is "in").
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_FH = np.float32(0.5)


@njit(cache=True, inline="always")
def _paste_box(boxes: np.ndarray, n: int, scale: np.float32, im_h: int, im_w: int) -> tuple[int, int, int, int, int, int, int, int]:
    """Expanded integer box of detection n and its visible part.

    Returns (bx1, by1, out_w, out_h, x0, x1, y0, y1): box origin, resized mask size,
    and the visible image columns x0..x1-1 / rows y0..y1-1 (x1 <= x0 means empty).
    """
    x1 = boxes[n, 0]
    y1 = boxes[n, 1]
    x2 = boxes[n, 2]
    y2 = boxes[n, 3]
    w_half = (x2 - x1) * _FH * scale
    h_half = (y2 - y1) * _FH * scale
    xc = (x2 + x1) * _FH
    yc = (y2 + y1) * _FH
    bx1 = int(xc - w_half)  # int() truncates toward zero, as Tensor.to(int64)
    by1 = int(yc - h_half)
    bx2 = int(xc + w_half)
    by2 = int(yc + h_half)
    out_w = max(bx2 - bx1 + 1, 1)
    out_h = max(by2 - by1 + 1, 1)
    return bx1, by1, out_w, out_h, max(bx1, 0), min(bx2 + 1, im_w), max(by1, 0), min(by2 + 1, im_h)


@njit(cache=True, inline="always")
def _src_index(dst: int, out_size: int, in_size: int) -> tuple[int, int, np.float32, np.float32]:
    """Bilinear (align_corners=False) source indices and weights of one output position."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = scale * (np.float32(dst) + _FH) - _FH
    if src < _F0:
        src = _F0
    i0 = min(int(src), in_size - 1)
    l1 = src - np.float32(i0)
    if l1 < _F0:
        l1 = _F0
    if l1 > _F1:
        l1 = _F1
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    return i0, i1, _F1 - l1, l1


@njit(cache=True)
def _hrows(pm: np.ndarray, out_w: int, c0: int, c1: int, thresh: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Every padded-mask row resized horizontally (output columns c0..c1-1) and its live span.

    Returns (hr float32 [M+2, c1-c0], span int64 [M+2, 2]): span[r] = first and one past
    the last column with hr[r, j] >= thresh * (1 - 1e-6) (empty: (n, 0)). A vertical blend
    v = a*l0 + b*l1 exceeds max(a, b) by at most ~3 float32 ulps (l0 + l1 may round
    above 1), so columns outside both rows' spans have v < thresh and can be skipped
    without changing any result.
    """
    m2 = pm.shape[0]
    n = c1 - c0
    hr = np.empty((m2, n), np.float32)
    for j in range(n):
        i0, i1, l0, l1 = _src_index(c0 + j, out_w, m2)
        for r in range(m2):
            hr[r, j] = pm[r, i0] * l0 + pm[r, i1] * l1
    low = np.float64(thresh) * (1.0 - 1e-6)
    span = np.empty((m2, 2), np.int64)
    for r in range(m2):
        lo = n
        hi = 0
        for j in range(n):
            if hr[r, j] >= low:
                lo = min(lo, j)
                hi = j + 1
        span[r, 0] = lo
        span[r, 1] = hi
    return hr, span


@njit(cache=True, parallel=True)
def superpixel_stats(labels: np.ndarray, image: np.ndarray, body: np.ndarray, n_sp: int, n_chunks: int, adj: np.ndarray) -> np.ndarray:
    """int64 [S, 7]: per superpixel (pixel count, sum of rows, sum of cols, sum R, sum G,
    sum B, pixels where uint8 [H, W] ``body`` is non-zero).

    Also marks 4-connected superpixel pairs (a, b) in ``adj`` (uint8 [S, S]) when it is
    S x S, at [min(a, b), max(a, b)] only (upper triangle; ``dense_to_csr`` symmetrises);
    pass a 0 x 0 array to skip. Concurrent writes to ``adj`` all store 1.
    """
    h, w = labels.shape
    acc = np.zeros((n_chunks, n_sp, 7), np.int64)
    dense = adj.shape[0] == n_sp
    rows_per = (h + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        a = acc[t]
        for y in range(t * rows_per, min(h, (t + 1) * rows_per)):
            # Sums over runs of equal labels stay in registers: consecutive increments
            # of one memory cell would serialise on store-to-load forwarding.
            cur = labels[y, 0]
            n = 0
            sx = 0
            sr = 0
            sg = 0
            sb = 0
            sm = 0
            for x in range(w):
                s = labels[y, x]
                if s != cur:
                    a[cur, 0] += n
                    a[cur, 1] += n * y
                    a[cur, 2] += sx
                    a[cur, 3] += sr
                    a[cur, 4] += sg
                    a[cur, 5] += sb
                    a[cur, 6] += sm
                    if dense:
                        adj[min(s, cur), max(s, cur)] = 1
                    cur = s
                    n = 0
                    sx = 0
                    sr = 0
                    sg = 0
                    sb = 0
                    sm = 0
                n += 1
                sx += x
                sr += image[y, x, 0]
                sg += image[y, x, 1]
                sb += image[y, x, 2]
                sm += body[y, x] != 0
            a[cur, 0] += n
            a[cur, 1] += n * y
            a[cur, 2] += sx
            a[cur, 3] += sr
            a[cur, 4] += sg
            a[cur, 5] += sb
            a[cur, 6] += sm
            if dense and y + 1 < h:
                last = -1
                for x in range(w):
                    s = labels[y, x]
                    d = labels[y + 1, x]
                    if s != d:
                        code = s * n_sp + d
                        if code != last:  # a boundary repeats the same pair along its length
                            adj[min(s, d), max(s, d)] = 1
                            last = code
    out = np.zeros((n_sp, 7), np.int64)
    for t in range(n_chunks):
        out += acc[t]
    return out


@njit(cache=True, parallel=True)
def paste_coverage(labels: np.ndarray, boxes: np.ndarray, pmasks: np.ndarray, scale: np.float32, thresh: np.float32, n_sp: int, order: np.ndarray, bin_ptr: np.ndarray) -> np.ndarray:
    """int32 [N, S]: pixels of superpixel s where detection n's pasted probability >= thresh.

    Work is split into len(bin_ptr)-1 bins of detections (``order[bin_ptr[t]:bin_ptr[t+1]]``),
    balanced by box area by the caller; each detection writes only its own row.
    """
    h, w = labels.shape
    n_det = boxes.shape[0]
    cov = np.zeros((n_det, n_sp), np.int32)
    for t in prange(bin_ptr.shape[0] - 1):
        for k in range(bin_ptr[t], bin_ptr[t + 1]):
            n = order[k]
            bx1, by1, out_w, out_h, x0, x1, y0, y1 = _paste_box(boxes, n, scale, h, w)
            if x1 <= x0 or y1 <= y0:
                continue
            pm = pmasks[n]
            m2 = pm.shape[0]
            hr, span = _hrows(pm, out_w, x0 - bx1, x1 - bx1, thresh)
            row = cov[n]
            for y in range(y0, y1):
                i0, i1, l0, l1 = _src_index(y - by1, out_h, m2)
                j0 = min(span[i0, 0], span[i1, 0])
                j1 = max(span[i0, 1], span[i1, 1])
                if j1 <= j0:
                    continue
                # Count runs of equal labels in a register: consecutive increments of
                # the same memory cell would serialise on store-to-load forwarding.
                cur = labels[y, x0 + j0]
                c = 0
                for j in range(j0, j1):
                    lab = labels[y, x0 + j]
                    if lab != cur:
                        row[cur] += c
                        cur = lab
                        c = 0
                    if hr[i0, j] * l0 + hr[i1, j] * l1 >= thresh:
                        c += 1
                row[cur] += c
    return cov


@njit(cache=True, parallel=True)
def paste_coverage_soft(
    labels: np.ndarray, boxes: np.ndarray, pmasks: np.ndarray, scale: np.float32, thresh: np.float32, n_sp: int, order: np.ndarray, bin_ptr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [N, S] pixels of superpixel s where detection n's pasted probability >= thresh,
    float64 [N, S] sum of detection n's pasted probabilities over superpixel s), in one paste.

    Pixels outside a detection's pasted region add 0. Probabilities are float32 (as pasted)
    added one by one in float64 in row-major pixel order, so each sum equals
    ``np.bincount(labels.ravel(), weights=pasted.ravel())`` bit for bit (adding the zeros
    outside the region changes nothing). Work is split into len(bin_ptr)-1 bins of
    detections (``order[bin_ptr[t]:bin_ptr[t+1]]``), balanced by box area by the caller;
    each detection writes only its own rows.
    """
    h, w = labels.shape
    n_det = boxes.shape[0]
    cov = np.zeros((n_det, n_sp), np.int32)
    psum = np.zeros((n_det, n_sp), np.float64)
    for t in prange(bin_ptr.shape[0] - 1):
        for k in range(bin_ptr[t], bin_ptr[t + 1]):
            n = order[k]
            bx1, by1, out_w, out_h, x0, x1, y0, y1 = _paste_box(boxes, n, scale, h, w)
            if x1 <= x0 or y1 <= y0:
                continue
            pm = pmasks[n]
            m2 = pm.shape[0]
            hr, _span = _hrows(pm, out_w, x0 - bx1, x1 - bx1, thresh)
            crow = cov[n]
            prow = psum[n]
            for y in range(y0, y1):
                i0, i1, l0, l1 = _src_index(y - by1, out_h, m2)
                # Runs of equal labels accumulate in registers (count and sum), written back
                # when the label changes; the sum continues from the stored value, so the
                # float64 additions happen in the same order as one pixel at a time.
                cur = labels[y, x0]
                c = 0
                acc = prow[cur]
                for j in range(x1 - x0):
                    lab = labels[y, x0 + j]
                    if lab != cur:
                        crow[cur] += c
                        prow[cur] = acc
                        cur = lab
                        c = 0
                        acc = prow[cur]
                    v = hr[i0, j] * l0 + hr[i1, j] * l1
                    acc += np.float64(v)
                    if v >= thresh:
                        c += 1
                crow[cur] += c
                prow[cur] = acc
    return cov, psum


@njit(cache=True, parallel=True)
def paint_masks(out: np.ndarray, value: np.ndarray, boxes: np.ndarray, pmasks: np.ndarray, scale: np.float32, thresh: np.float32, order: np.ndarray, n_chunks: int) -> None:
    """Paint detections into uint8 [H, W] ``out`` in ``order``: a pixel still 0 with pasted
    probability >= thresh takes ``value[n]`` (so earlier detections in ``order`` win).

    One parallel region over horizontal bands of the image (a region per detection would
    pay a thread barrier each); a band recomputes the horizontal pass of the detections
    that reach it.
    """
    h, w = out.shape
    rows_per = (h + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        r0 = t * rows_per
        r1 = min(h, r0 + rows_per)
        for k in range(order.shape[0]):
            n = order[k]
            bx1, by1, out_w, out_h, x0, x1, y0, y1 = _paste_box(boxes, n, scale, h, w)
            y0 = max(y0, r0)
            y1 = min(y1, r1)
            if x1 <= x0 or y1 <= y0:
                continue
            pm = pmasks[n]
            m2 = pm.shape[0]
            hr, span = _hrows(pm, out_w, x0 - bx1, x1 - bx1, thresh)
            val = value[n]
            for y in range(y0, y1):
                i0, i1, l0, l1 = _src_index(y - by1, out_h, m2)
                for j in range(min(span[i0, 0], span[i1, 0]), max(span[i0, 1], span[i1, 1])):
                    if out[y, x0 + j] == 0 and hr[i0, j] * l0 + hr[i1, j] * l1 >= thresh:
                        out[y, x0 + j] = val


@njit(cache=True)
def probs_at(points: np.ndarray, boxes: np.ndarray, pmasks: np.ndarray, scale: np.float32, im_h: int, im_w: int) -> np.ndarray:
    """float32 [N, P]: pasted probability of every detection at int64 [P, 2] (row, col) points (0 outside)."""
    n_det = boxes.shape[0]
    n_pts = points.shape[0]
    out = np.zeros((n_det, n_pts), np.float32)
    for n in range(n_det):
        bx1, by1, out_w, out_h, x0, x1, y0, y1 = _paste_box(boxes, n, scale, im_h, im_w)
        pm = pmasks[n]
        m2 = pm.shape[0]
        for p in range(n_pts):
            y = points[p, 0]
            x = points[p, 1]
            if y0 <= y < y1 and x0 <= x < x1:
                xi0, xi1, xl0, xl1 = _src_index(x - bx1, out_w, m2)
                yi0, yi1, yl0, yl1 = _src_index(y - by1, out_h, m2)
                t0 = pm[yi0, xi0] * xl0 + pm[yi0, xi1] * xl1
                t1 = pm[yi1, xi0] * xl0 + pm[yi1, xi1] * xl1
                out[n, p] = t0 * yl0 + t1 * yl1
    return out


@njit(cache=True, parallel=True)
def lookup(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 [H, W]: ``lut[labels]``."""
    h, w = labels.shape
    out = np.empty((h, w), np.uint8)
    for y in prange(h):
        for x in range(w):
            out[y, x] = lut[labels[y, x]]
    return out
