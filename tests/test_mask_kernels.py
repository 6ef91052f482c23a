"""The batch kernels of ``mask_codec`` against full-mask references on fresh random inputs.

``instance_crops`` must give each instance's tight crop of ``sp_instance[sp_labels] == i``
(numpy); ``packed_rles`` the pycocotools RLE of each crop's full-size mask, for crops of
any size and placement in one call; ``PackedCrops`` areas and boxes those of the masks;
``threshold_paste`` the numpy paste (``paste_mask_region``) thresholded, bit for bit.
"""

from __future__ import annotations

import numpy as np
from helpers_encode import ref_bbox, ref_rle, smooth_masks, voronoi
from hypothesis import given, settings
from hypothesis import strategies as st

from clothparse.parse.mask_codec import PackedCrops, decode_rle, pack_crops, packed_rles, tight_crop
from clothparse.parse.mask_kernels import instance_crops, threshold_paste
from clothparse.parse.paste import paste_mask_region, region_weights


def test_instance_crops_equal_tight_crops_of_the_masks() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        sp = voronoi(rng, h, w, int(rng.integers(1, 40)))
        n = int(rng.integers(0, 12))
        # -1 and ids past n mean "no instance"; some instances get no superpixel at all.
        sp_instance = rng.integers(-1, n + 2, sp.max() + 1).astype(np.int64)
        packed = PackedCrops(*instance_crops(sp, sp_instance, n))
        assert len(packed) == n, f"seed {seed}"
        for i in range(n):
            full = (sp_instance == i)[sp]
            crop, y0, x0 = packed.crop(i)
            want, wy, wx = tight_crop(full)
            assert (y0, x0) == (wy, wx) and np.array_equal(crop, want), f"seed {seed}, instance {i}"
        assert packed.areas() == [int((sp_instance == i)[sp].sum()) for i in range(n)]
        assert packed.boxes() == [ref_bbox((sp_instance == i)[sp]) for i in range(n)]


def test_packed_rles_equal_pycocotools() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(1, 50, 2))
        crops, fulls = [], []
        for _ in range(int(rng.integers(0, 8))):
            y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
            h, w = int(rng.integers(0, height - y0 + 1)), int(rng.integers(0, width - x0 + 1))
            crop = rng.random((h, w)) < rng.uniform(0, 1)
            if rng.random() < 0.3:
                crop[:] = True  # solid: runs across column ends
            full = np.zeros((height, width), bool)
            full[y0 : y0 + h, x0 : x0 + w] = crop
            crops.append((crop, y0, x0))
            fulls.append(full)
        got = packed_rles(pack_crops(crops), (height, width))
        assert got == [ref_rle(f) for f in fulls], f"seed {seed}"
        for rle, full in zip(got, fulls, strict=True):
            np.testing.assert_array_equal(decode_rle(rle), full)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_packed_rles_property(height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    full = rng.random((height, width)) < rng.uniform(0, 1)
    crop, y0, x0 = tight_crop(full)
    # The same mask three ways: tight, the whole image, and empty beside it.
    packed = pack_crops([(crop, y0, x0), (full, 0, 0), (np.zeros((0, 0), bool), 0, 0)])
    want = ref_rle(full)
    assert packed_rles(packed, (height, width)) == [want, want, ref_rle(np.zeros_like(full))]
    assert packed.areas() == [int(full.sum()), int(full.sum()), 0]


def test_threshold_paste_equals_numpy_paste() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    masks = smooth_masks(rng, 40)
    masks[::7] = 1.0
    h, w = (int(v) for v in rng.integers(1, 120, 2))
    for mask in masks:
        size = rng.uniform(0.5, 1.5, 2) * [w, h] * rng.uniform(0.02, 1.0)
        centre = rng.uniform(-0.2, 1.2, 2) * [w, h]
        box = np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)
        thresh = np.float32(rng.choice([0.5, 0.3, 1.0, rng.uniform(0, 1)]))
        y0, y1, x0, x1, region = paste_mask_region(mask, box, (h, w))
        gy0, gy1, gx0, gx1, m, ys, xs = region_weights(mask, box, (h, w))
        assert (gy0, gy1, gx0, gx1) == (y0, y1, x0, x1), f"seed {seed}"
        if y1 > y0 and x1 > x0:
            np.testing.assert_array_equal(threshold_paste(m, *ys, *xs, thresh), region >= thresh, f"seed {seed}")
