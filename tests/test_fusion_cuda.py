"""``clothparse.bench.fusion_cuda`` (the numba-cuda fusion kernels of ``gpu_check``) under
Numba's CUDA simulator, against the CPU ``fuse`` and plain numpy.

What this can show: under ``NUMBA_ENABLE_CUDASIM=1`` every GPU thread runs as Python, so
the kernels' *logic* is checked -- the thread-to-pixel mapping and bounds guards (images
that do not fill whole 16 x 16 blocks), the paste geometry taken from the CPU kernel, the
source-index and bilinear-weight arithmetic in the CPU kernel's operation order, the
threshold test, the union count of the body masks, the dense/sparse adjacency switch, the
label lookup, and the host glue (uploads, empty detection sets, result shapes). Each is
compared with ``fuse`` (and ``reference_stats``) on small random inputs and edge cases, and
a planted off-by-one in the paste arithmetic must be caught.

What it cannot show: in the simulator ``_mul``/``_add``/``_div`` are numpy float32
operations, not libdevice's ``fmul_rn``/``fadd_rn``/``fdiv_rn``, so it says nothing about
the float rounding a real GPU produces (FMA contraction, libdevice's division) -- the
"identical to the CPU" claim for real hardware needs ``bench/gpu_check.sh`` on a GPU. The
simulator also runs threads with serialised, locked atomics, so it cannot reveal races,
missing synchronisation or memory-ordering bugs, nor anything about speed, occupancy,
device memory limits or transfer costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def _cases() -> dict[str, tuple[Any, Any, Any, Any, float]]:
    """name -> (image, labels, clothing, bodies, mask_thresh): small random inputs and edge cases."""
    from test_fusion import random_detections, random_image, voronoi_labels

    from clothparse.engines.base import Detections

    def box_det(boxes: list[list[float]], masks: np.ndarray, cls: int = 1) -> Detections:
        n = len(boxes)
        return Detections(np.array(boxes, np.float32), np.linspace(0.9, 0.5, n), np.full(n, cls), masks.astype(np.float32))

    out: dict[str, tuple[Any, Any, Any, Any, float]] = {}
    for seed in range(3):  # sizes that leave partly filled 16 x 16 blocks
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(9, 30)), int(rng.integers(17, 40))
        out[f"random-{seed}"] = (
            random_image(rng, h, w), voronoi_labels(rng, h, w, int(rng.integers(2, 15))),
            random_detections(rng, int(rng.integers(1, 5)), h, w), random_detections(rng, 2, h, w, classes=1),
            float(rng.choice([0.3, 0.5, 0.7])),
        )
    rng = np.random.default_rng(10)
    img, lab = random_image(rng, 20, 24), voronoi_labels(rng, 20, 24, 6)
    empty = Detections.empty()
    out["no-detections"] = (img, lab, empty, empty, 0.5)
    out["one-superpixel"] = (img, np.zeros((20, 24), np.int32), random_detections(rng, 3, 20, 24), empty, 0.5)
    out["outside-and-clipped-boxes"] = (img, lab, box_det(
        [[-30, -30, -5, -5], [30, 25, 50, 40], [-6, -4, 10, 9], [15, 12, 40, 33]], rng.random((4, 28, 28))), empty, 0.5)
    out["sub-pixel-boxes"] = (img, lab, box_det([[3.2, 4.1, 3.6, 4.3], [10.0, 10.0, 10.9, 11.4]], np.ones((2, 28, 28))), empty, 0.5)
    # Probabilities exactly at the threshold count (>=); all-zero masks cover nothing.
    out["at-threshold"] = (img, lab, box_det([[0, 0, 24, 20], [2, 2, 12, 12]], np.stack([np.full((28, 28), 0.5), np.zeros((28, 28))])),
                           box_det([[0, 0, 12, 20], [8, 0, 24, 20]], np.full((2, 28, 28), 0.5)), 0.5)
    strip = random_image(rng, 1, 35)
    out["one-row"] = (strip, voronoi_labels(rng, 1, 35, 5), random_detections(rng, 2, 1, 35), random_detections(rng, 1, 1, 35, classes=1), 0.5)
    return out


def simulate(plant_bug: bool = False, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """In a process with ``NUMBA_ENABLE_CUDASIM=1``: mismatch counts per case and array (cases ``only``, or all)."""
    from clothparse.bench import fusion_cuda as fc
    from numba import cuda

    from clothparse.parse.fusion import FusionParams, fuse

    assert fc.SIMULATOR, "run with NUMBA_ENABLE_CUDASIM=1"
    if plant_bug:  # source index off by one pixel: must be caught
        real = fc._src

        @cuda.jit(device=True)
        def shifted(dst: int, out_size: int, in_size: int) -> Any:
            return real(dst + 1, out_size, in_size)

        fc._src = shifted
    report: dict[str, Any] = {}
    for name, (image, labels, clothing, bodies, thresh) in _cases().items():
        if only and name not in only:
            continue
        res = fc.compare_with_cpu(image, labels, clothing, bodies, FusionParams(mask_thresh=thresh))
        n_sp = res["n_superpixels"]
        fr = fuse(image, labels, clothing, bodies, FusionParams(mask_thresh=thresh))
        # The sparse switch: above dense_max no adjacency matrix, the rest unchanged.
        sparse = fc.gpu_fusion_arrays(image, fr.sp_labels, clothing, bodies, thresh, dense_max=0)
        stats_ref, _ = fc.reference_stats(fr.sp_labels, image, dense=False)
        area = np.maximum(fr.sp_area, 1)
        lut = np.random.default_rng(n_sp).integers(0, 256, n_sp).astype(np.uint8)
        report[name] = {
            **res["mismatches"],
            "sparse_adj_shape": list(sparse["adj"].shape),
            "sparse_rest_equal": bool(
                np.array_equal(sparse["stats"], stats_ref)
                and np.array_equal((sparse["body_count"] / area).astype(np.float32), fr.body_coverage)
                and np.array_equal((sparse["coverage"].T / area[:, None]).astype(np.float32), fr.coverage)
            ),
            "lookup": int(np.count_nonzero(fc.gpu_lookup(fr.sp_labels, lut) != lut[fr.sp_labels])),
            "covered_pixels": int(sparse["coverage"].sum() + sparse["body_count"].sum()),
        }
    return report


def _run(plant_bug: bool, only: tuple[str, ...] = ()) -> dict[str, Any]:
    code = f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import test_fusion_cuda as t; print(json.dumps(t.simulate({plant_bug}, {only!r})))"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    pytest.importorskip("numba.cuda")
    return _run(plant_bug=False)


ARRAYS = ("stats", "adjacency", "sp_area", "mean_rgb", "body_coverage", "coverage", "label_map")


def test_simulated_kernels_equal_the_cpu_fusion(simulated: dict[str, Any]) -> None:
    assert set(simulated) >= {"random-0", "no-detections", "one-superpixel", "outside-and-clipped-boxes", "sub-pixel-boxes", "at-threshold", "one-row"}
    for name, r in simulated.items():
        assert {a: r[a] for a in ARRAYS} == dict.fromkeys(ARRAYS, 0), name  # -1 would be a shape mismatch
        assert r["lookup"] == 0, name
        assert r["sparse_adj_shape"] == [0, 0] and r["sparse_rest_equal"], name
    # The cases exercise the coverage kernel (not only empty inputs).
    assert simulated["at-threshold"]["covered_pixels"] > 0 and simulated["random-0"]["covered_pixels"] > 0
    assert simulated["no-detections"]["covered_pixels"] == 0


def test_the_comparison_catches_a_planted_indexing_bug() -> None:
    pytest.importorskip("numba.cuda")
    broken = _run(plant_bug=True, only=("random-0", "at-threshold", "outside-and-clipped-boxes"))
    assert sum(max(r["coverage"], 0) + max(r["body_coverage"], 0) for r in broken.values()) > 0
