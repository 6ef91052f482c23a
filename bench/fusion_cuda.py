"""A numba-cuda version of the pixel-parallel part of the fusion kernel, for ``gpu_check``.

The per-pixel work of ``clothparse.parse.fusion.fuse`` -- superpixel statistics and
4-adjacency, the body-union count, the on-the-fly pasted coverage of every detection
per superpixel, and the final label lookup -- runs here with one GPU thread per pixel
and integer atomics (so the sums are exact and order-independent). The per-superpixel
glue (votes, growth) stays on the CPU. ``compare_with_cpu`` checks every array against
the CPU kernel's ``FusionResult`` on the same inputs: they must be identical.

Bit-identity of the pasted probabilities: box geometry comes from the CPU kernel's own
``_paste_box``; the bilinear weights and blends use libdevice's round-to-nearest
``fmul_rn``/``fadd_rn``/``fdiv_rn``, which the compiler may not contract into FMAs, in
the same operation order as ``clothparse.parse.fusion_kernels``. Under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, for tests without a GPU) plain numpy float32
arithmetic is used instead (the simulator's libdevice is not executable), so a simulator
run checks the kernels' logic and indexing only, not GPU rounding, races or speed
(``tests/test_fusion_cuda.py`` says what it can and cannot show); bit-identity on a GPU
is what ``bench/gpu_check.sh`` measures.

Arrays: labels int32 [H, W] ids 0..S-1; image uint8 [H, W, 3] RGB; boxes float32
[N, 4] xyxy; masks float32 [N, 28, 28] probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import config, cuda

from clothparse.engines.base import Detections
from clothparse.parse import fusion_kernels as K
from clothparse.parse.paste import expand_scale

SIMULATOR = bool(getattr(config, "ENABLE_CUDASIM", 0))
#: numba.cuda typed loosely: its stubs do not describe kernel-side intrinsics such as grid(2).
_cu: Any = cuda
BLOCK = (16, 16)
_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_FH = np.float32(0.5)
_FMH = np.float32(-0.5)

if SIMULATOR:

    @cuda.jit(device=True)
    def _mul(a: Any, b: Any) -> Any:
        return np.float32(a) * np.float32(b)

    @cuda.jit(device=True)
    def _add(a: Any, b: Any) -> Any:
        return np.float32(a) + np.float32(b)

    @cuda.jit(device=True)
    def _div(a: Any, b: Any) -> Any:
        return np.float32(a) / np.float32(b)

else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _mul(a: Any, b: Any) -> Any:
        return libdevice.fmul_rn(a, b)

    @cuda.jit(device=True)
    def _add(a: Any, b: Any) -> Any:
        return libdevice.fadd_rn(a, b)

    @cuda.jit(device=True)
    def _div(a: Any, b: Any) -> Any:
        return libdevice.fdiv_rn(a, b)


@cuda.jit(device=True)
def _src(dst: int, out_size: int, in_size: int) -> tuple[int, int, Any, Any]:
    """``fusion_kernels._src_index`` with non-contractible float32 operations."""
    scale = _div(np.float32(in_size), np.float32(out_size))
    src = _add(_mul(scale, _add(np.float32(dst), _FH)), _FMH)
    if src < _F0:
        src = _F0
    i0 = min(int(src), in_size - 1)
    l1 = _add(src, -np.float32(i0))
    if l1 < _F0:
        l1 = _F0
    if l1 > _F1:
        l1 = _F1
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    return i0, i1, _add(_F1, -l1), l1


@cuda.jit(device=True)
def _prob(pm: Any, geo: Any, n: int, x: int, y: int) -> Any:
    """Pasted probability of detection n at pixel (y, x), inside its visible box (horizontal blend first)."""
    m2 = pm.shape[1]
    xi0, xi1, xl0, xl1 = _src(x - geo[n, 0], geo[n, 2], m2)
    yi0, yi1, yl0, yl1 = _src(y - geo[n, 1], geo[n, 3], m2)
    h0 = _add(_mul(pm[n, yi0, xi0], xl0), _mul(pm[n, yi0, xi1], xl1))
    h1 = _add(_mul(pm[n, yi1, xi0], xl0), _mul(pm[n, yi1, xi1], xl1))
    return _add(_mul(h0, yl0), _mul(h1, yl1))


@cuda.jit
def _k_stats(labels: Any, image: Any, acc: Any, adj: Any, dense: bool) -> None:
    x, y = _cu.grid(2)
    h, w = labels.shape
    if y >= h or x >= w:
        return
    s = labels[y, x]
    _cu.atomic.add(acc, (s, 0), np.int64(1))
    _cu.atomic.add(acc, (s, 1), np.int64(y))
    _cu.atomic.add(acc, (s, 2), np.int64(x))
    for c in range(3):
        _cu.atomic.add(acc, (s, 3 + c), np.int64(image[y, x, c]))
    if dense:
        if x + 1 < w and labels[y, x + 1] != s:
            adj[s, labels[y, x + 1]] = 1
            adj[labels[y, x + 1], s] = 1
        if y + 1 < h and labels[y + 1, x] != s:
            adj[s, labels[y + 1, x]] = 1
            adj[labels[y + 1, x], s] = 1


@cuda.jit
def _k_coverage(labels: Any, geo: Any, pm: Any, thresh: Any, cov: Any, union: bool) -> None:
    """cov[n, s] += 1 per pixel inside detection n; with ``union`` only cov[0, s], once per pixel (any detection)."""
    x, y = _cu.grid(2)
    h, w = labels.shape
    if y >= h or x >= w:
        return
    s = labels[y, x]
    for n in range(geo.shape[0]):
        if geo[n, 4] <= x < geo[n, 5] and geo[n, 6] <= y < geo[n, 7] and _prob(pm, geo, n, x, y) >= thresh:
            if union:
                _cu.atomic.add(cov, (0, s), 1)
                return
            _cu.atomic.add(cov, (n, s), 1)


@cuda.jit
def _k_lookup(labels: Any, lut: Any, out: Any) -> None:
    x, y = _cu.grid(2)
    h, w = labels.shape
    if y < h and x < w:
        out[y, x] = lut[labels[y, x]]


def _geometry(det: Detections, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [N, 8] bx1, by1, out_w, out_h, x0, x1, y0, y1 from the CPU kernel; padded masks float32 [N, M+2, M+2])."""
    scale = expand_scale(det.masks.shape[-1])
    geo = np.zeros((max(len(det), 1), 8), np.int32)
    for n in range(len(det)):
        geo[n] = K._paste_box(det.boxes, n, scale, h, w)
    pm = np.ascontiguousarray(np.pad(det.masks, ((0, 0), (1, 1), (1, 1))), dtype=np.float32)
    if len(det) == 0:
        pm = np.zeros((1, det.masks.shape[-1] + 2, det.masks.shape[-1] + 2), np.float32)
    return geo[: len(det)] if len(det) else geo[:0], pm


def _grid(h: int, w: int) -> tuple[int, int]:
    return (w + BLOCK[0] - 1) // BLOCK[0], (h + BLOCK[1] - 1) // BLOCK[1]


def gpu_fusion_arrays(image: np.ndarray, labels: np.ndarray, clothing: Detections, bodies: Detections, mask_thresh: float, dense_max: int = 4096) -> dict[str, np.ndarray]:
    """The pixel-parallel fusion arrays computed on the GPU (inputs uploaded, results copied back).

    Returns stats int64 [S, 6] (count, sum row, sum col, sum R, G, B), adj uint8 [S, S]
    (0 x 0 when S > dense_max), body_count int64 [S], coverage int32 [N, S].
    """
    h, w = labels.shape
    n_sp = int(labels.max()) + 1
    grid = _grid(h, w)
    thresh = np.float32(mask_thresh)
    d_labels = cuda.to_device(np.ascontiguousarray(labels, np.int32))
    d_image = cuda.to_device(np.ascontiguousarray(image))
    acc = cuda.to_device(np.zeros((n_sp, 6), np.int64))
    dense = n_sp <= dense_max
    adj = cuda.to_device(np.zeros((n_sp, n_sp) if dense else (1, 1), np.uint8))
    _k_stats[grid, BLOCK](d_labels, d_image, acc, adj, dense)
    out: dict[str, np.ndarray] = {"stats": acc.copy_to_host(), "adj": adj.copy_to_host() if dense else np.zeros((0, 0), np.uint8)}
    for key, det, union in (("body_count", bodies, True), ("coverage", clothing, False)):
        rows = 1 if union else len(det)
        cov = cuda.to_device(np.zeros((max(rows, 1), n_sp), np.int32))
        if len(det):
            geo, pm = _geometry(det, h, w)
            _k_coverage[grid, BLOCK](d_labels, cuda.to_device(geo), cuda.to_device(pm), thresh, cov, union)
        host = cov.copy_to_host()
        out[key] = host[0].astype(np.int64) if union else host[:rows]
    cuda.synchronize()
    return out


def gpu_lookup(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 [H, W] = lut[labels] on the GPU."""
    h, w = labels.shape
    d_out = cuda.device_array((h, w), np.uint8)
    _k_lookup[_grid(h, w), BLOCK](cuda.to_device(np.ascontiguousarray(labels, np.int32)), cuda.to_device(np.ascontiguousarray(lut, np.uint8)), d_out)
    return d_out.copy_to_host()


def reference_stats(labels: np.ndarray, image: np.ndarray, dense: bool) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy reference: stats int64 [S, 6] as ``gpu_fusion_arrays`` and the uint8 [S, S] 4-adjacency (0 x 0 unless dense)."""
    lab = labels.astype(np.int64)
    n_sp = int(lab.max()) + 1
    rows, cols = np.indices(lab.shape)
    stats = np.stack(
        [np.bincount(lab.ravel(), weights=v.ravel(), minlength=n_sp) for v in (np.ones_like(lab), rows, cols, *np.moveaxis(image.astype(np.int64), -1, 0))],
        axis=1,
    ).astype(np.int64)
    adj = np.zeros((n_sp, n_sp) if dense else (0, 0), np.uint8)
    if dense:
        for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1], lab[1:])):
            diff = a != b
            adj[a[diff], b[diff]] = 1
            adj[b[diff], a[diff]] = 1
    return stats, adj


def compare_with_cpu(image: np.ndarray, labels: np.ndarray, clothing: Detections, bodies: Detections, params: Any = None) -> dict[str, Any]:
    """Run ``fuse`` (CPU) and the GPU kernels on the same inputs; count differing elements per array.

    Returns {"identical": bool, "mismatches": {array: count}, "n_superpixels", "n_detections"}.
    """
    from clothparse.parse.fusion import DENSE_ADJ_MAX, FusionParams, fuse

    p = params or FusionParams()
    fr = fuse(image, labels, clothing, bodies, p)
    lab = fr.sp_labels
    n_sp = int(lab.max()) + 1
    g = gpu_fusion_arrays(image, lab, clothing, bodies, p.mask_thresh, DENSE_ADJ_MAX)
    stats_ref, adj_ref = reference_stats(lab, image, n_sp <= DENSE_ADJ_MAX)
    safe = np.maximum(g["stats"][:, 0], 1).astype(np.float64)
    checks = {
        "stats": (g["stats"], stats_ref),
        "adjacency": (g["adj"], adj_ref),
        "sp_area": (g["stats"][:, 0], fr.sp_area),
        "mean_rgb": ((g["stats"][:, 3:6] / safe[:, None]).astype(np.float32), fr.mean_rgb),
        "body_coverage": ((g["body_count"] / safe).astype(np.float32), fr.body_coverage),
        "coverage": ((g["coverage"].T / safe[:, None]).astype(np.float32), fr.coverage),
        "label_map": (gpu_lookup(lab, fr.sp_class.astype(np.uint8)), fr.label_map),
    }
    mismatches = {k: (int(np.count_nonzero(a != b)) if a.shape == b.shape else -1) for k, (a, b) in checks.items()}
    return {
        "identical": all(v == 0 for v in mismatches.values()),
        "mismatches": mismatches,
        "n_superpixels": n_sp,
        "n_detections": len(clothing),
    }
