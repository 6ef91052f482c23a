"""The contour kernels against scikit-image, the plain reference they replace.

``binary_contours`` must give exactly ``skimage.measure.find_contours(mask, 0.5)`` (same
contours, same order, same start point, same direction), and ``contours_batch`` exactly
that of each of many masks padded by one pixel, on fresh random inputs. (The overlay's
label boundaries are checked against ``find_boundaries`` in ``test_outputs_fast``.)
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

from clothparse.parse.contours import binary_contours
from clothparse.parse.contours_kernel import TABLE, contours_batch
from clothparse.parse.mask_codec import pack_crops


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


def _check_batch(masks: list[np.ndarray], msg: str) -> None:
    packed = pack_crops([(m, 0, 0) for m in masks])
    points, offsets, owner = contours_batch(packed.bits, packed.offsets, packed.shapes, TABLE)
    got: list[list[np.ndarray]] = [[] for _ in masks]
    for j, k in enumerate(owner.tolist()):
        got[k].append(points[offsets[j] : offsets[j + 1]])
    assert offsets[-1] == len(points), msg
    for m, g in zip(masks, got, strict=True):
        want = find_contours(np.pad(m, 1).astype(np.float32), 0.5) if m.size else []
        assert len(g) == len(want) and all(np.array_equal(a, b) for a, b in zip(g, want, strict=True)), msg


def test_contours_batch_matches_skimage_on_random_masks() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(80):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            masks.append(rng.random((h, w)) < rng.uniform(0.1, 0.9))
        elif kind == 1:
            masks.append(gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 4)) > 0.5)
        else:  # big and small interleaved: the point tables are reused across sizes
            masks.append(np.ones((h, w), bool) if rng.random() < 0.5 else np.zeros((0, 0), bool))
    _check_batch(masks, f"seed {seed}")


@settings(max_examples=100, deadline=None)
@given(st.lists(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))), min_size=1, max_size=6))
def test_contours_batch_property(masks: list[np.ndarray]) -> None:
    _check_batch(masks, "")


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
