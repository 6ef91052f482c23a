"""Kernels of the output encoding against scikit-image, the plain reference they replace.

``binary_contours`` must give exactly ``skimage.measure.find_contours(mask, 0.5)`` (same
contours, same order, same start point, same direction) and ``inner_boundaries`` exactly
``skimage.segmentation.find_boundaries(labels, mode="inner")``, on fresh random inputs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter
from skimage.measure import find_contours
from skimage.segmentation import find_boundaries

from clothparse.parse.contours import binary_contours
from clothparse.parse.outputs import inner_boundaries


def same_contours(mask: np.ndarray) -> bool:
    want = find_contours(mask.astype(np.float32), 0.5)
    got = binary_contours(mask)
    return len(want) == len(got) and all(
        g.dtype == np.float64 and g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("kind", ["noise", "blobs", "rectangles"])
def test_contours_match_skimage_on_random_masks(kind: str) -> None:
    rng = np.random.default_rng()  # fresh inputs every run; the seed is in the failure message
    seed = int(rng.integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(2, 60, 2))
        if kind == "noise":
            mask = rng.random((h, w)) < rng.uniform(0.1, 0.9)
        elif kind == "blobs":
            mask = gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 4)) > 0.5
        else:
            mask = np.zeros((h, w), bool)
            for _ in range(int(rng.integers(1, 6))):
                y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
                mask[y : y + int(rng.integers(1, 20)), x : x + int(rng.integers(1, 20))] ^= True
        for m in (mask, np.pad(mask, 1)):  # open contours at the border, and closed ones
            assert same_contours(m), f"seed {seed}, shape {m.shape}"


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_contours_match_skimage_property(mask: np.ndarray) -> None:
    if min(mask.shape) < 2:
        assert binary_contours(mask) == []
        return
    assert same_contours(mask)
    assert same_contours(np.pad(mask, 1))


def test_contours_edge_cases() -> None:
    assert binary_contours(np.zeros((5, 7), bool)) == []
    assert binary_contours(np.ones((5, 7), bool)) == []
    one = np.pad(np.ones((1, 1), bool), 1)
    (c,) = binary_contours(one)
    assert np.array_equal(c[0], c[-1]) and len(c) == 5  # a diamond around the pixel, closed
    with pytest.raises(ValueError, match="2-D"):
        binary_contours(np.zeros((2, 2, 2), bool))


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_inner_boundaries_match_skimage(dtype: type) -> None:
    rng = np.random.default_rng()
    seed = int(rng.integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        labels = rng.integers(0, int(rng.integers(1, 6)), (h, w)).astype(dtype)
        if rng.random() < 0.5:  # regions rather than noise
            labels = np.kron(labels[: h // 4 + 1, : w // 4 + 1], np.ones((4, 4), dtype))[:h, :w]
        np.testing.assert_array_equal(inner_boundaries(labels), find_boundaries(labels, mode="inner"), f"seed {seed}")


def test_kernels_load_from_the_cache_in_a_new_process() -> None:
    # A kernel Numba cannot cache (a closure over another dispatcher, say) recompiles in every
    # process: ~2 s on the first photo of each `cpt parse`. The second process must hit.
    code = (
        "import numpy as np; from clothparse.parse.contours import binary_contours; "
        "from clothparse.parse import contours_kernel as k; "
        "binary_contours(np.pad(np.ones((3, 3), bool), 1)); "
        "print(sum(k.contours.stats.cache_hits.values()), sum(k.contours.stats.cache_misses.values()))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(2)]
    hits, misses = (int(v) for v in runs[1].stdout.split())
    assert hits >= 1 and misses == 0, [r.stdout for r in runs]
