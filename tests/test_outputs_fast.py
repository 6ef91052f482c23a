"""The crop- and kernel-based ``encode_result`` against the full-mask way it replaced.

References in ``helpers_encode``: one full-resolution mask per item, pycocotools,
scikit-image's contours and polygon simplification, the float32 whole-image blend with
``find_boundaries``, the overlay drawn on a photo-sized canvas. Records must be equal, the
label PNG must decode to the label map with the taxonomy palette, and the overlay's
decoded pixels must be identical.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from helpers_encode import (
    random_result,
    ref_blend,
    ref_encode,
    ref_overlay,
    ref_polygons,
    ref_rle,
    smooth_masks,
    voronoi,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.measure import approximate_polygon, find_contours

from clothparse.engines.base import Detections
from clothparse.parse import overlay
from clothparse.parse.fusion import fuse
from clothparse.parse.mask_codec import crop_rle, mask_polygons, simplify_polygons, tight_crop
from clothparse.parse.outputs import OverlayOptions, encode_result, label_png
from clothparse.parse.overlay import OverlayItem, blend_parsing, render_overlay
from clothparse.parse.pipeline import ParseResult
from clothparse.taxonomy import MODANET_CLASSES, PARSING_LABELS, palette_flat


def check_same(result: ParseResult, image: np.ndarray, options: OverlayOptions = OverlayOptions()) -> None:
    want, want_overlay = ref_encode(result, image, options)
    enc = encode_result(result, image, "x.jpg", options)
    got = {k: v for k, v in enc.record.items() if k != "timings_ms"}
    assert got == want
    labels = Image.open(io.BytesIO(enc.labels_png))
    assert labels.mode == "P" and labels.getpalette()[: 3 * len(PARSING_LABELS)] == palette_flat()[: 3 * len(PARSING_LABELS)]
    np.testing.assert_array_equal(np.asarray(labels), result.label_map)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(enc.overlay_png)).convert("RGB")), want_overlay)
    assert set(enc.record["timings_ms"]) >= {"encode"}


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("case", range(6))
def test_encode_result_equals_full_mask_reference(case: int) -> None:
    seed = int(np.random.default_rng().integers(2**31))  # fresh inputs; the seed is in the report
    h, w = (int(v) for v in np.random.default_rng(seed).integers(8, 96, 2))
    result, image = random_result(seed, h, w)
    options = OverlayOptions(
        show_boxes=case in (1, 4, 5),
        detector_boxes=case in (2, 3, 5),
        show_superpixels=case % 3 == 0,
        unpredicted_only=case % 3 == 1,
    )
    check_same(result, image, options)


@pytest.mark.parametrize("thresh", [0.5, 0.0])
def test_encode_result_pixel_level(thresh: float) -> None:
    for seed in range(3):
        result, image = random_result(seed, 40 + 7 * seed, 56, superpixels=False, thresh=thresh)
        check_same(result, image, OverlayOptions(show_boxes=seed == 1))  # pixel level: specks get no box


def test_edge_cases() -> None:
    # 1x1 image, one superpixel, an instance covering it and one that misses it.
    image = np.full((1, 1, 3), 90, np.uint8)
    masks = np.stack([np.ones((28, 28)), np.zeros((28, 28))]).astype(np.float32)
    cloth = Detections(np.array([[-5, -5, 5, 5], [0, 0, 1, 1]]), np.array([0.9, 0.8]), np.array([3, 4]), masks, MODANET_CLASSES)
    f = fuse(image, np.zeros((1, 1), np.int32), cloth, Detections.empty(("person",)))
    res = ParseResult(1, 1, cloth, Detections.empty(("person",)), np.asarray(f.label_map, np.uint8), f, np.zeros((1, 1), np.int32))
    assert res.item_mask(0).all() and not res.item_mask(1).any()
    check_same(res, image)
    # Full-width and full-height instances touching every border, plus an empty one.
    h, w = 30, 41
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    sp = (np.arange(h)[:, None] // 5 * 9 + np.arange(w)[None] // 5).astype(np.int32)
    masks = np.stack([np.ones((28, 28)), np.ones((28, 28)), np.zeros((28, 28)), smooth_masks(rng, 1)[0]]).astype(np.float32)
    boxes = np.array([[-10, 8, w + 10, 20], [3, -10, 20, h + 10], [5, 5, 9, 9], [-50, -50, w + 50, h + 50]])
    cloth = Detections(boxes, np.array([0.9, 0.8, 0.7, 0.3]), np.array([1, 2, 3, 4]), masks, MODANET_CLASSES)
    f = fuse(image, sp, cloth, Detections.empty(("person",)))
    res = ParseResult(h, w, cloth, Detections.empty(("person",)), np.asarray(f.label_map, np.uint8), f, sp)
    assert res.item_mask(0)[:, 0].any() and res.item_mask(0)[:, -1].any()
    assert not res.item_mask(2).any()
    check_same(res, image, OverlayOptions(show_boxes=True, detector_boxes=True, show_superpixels=True))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_crop_rle_equals_full_mask_rle(h: int, w: int, seed: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < density
    crop, y0, x0 = tight_crop(mask)
    assert crop_rle(crop, y0, x0, (h, w)) == ref_rle(mask)
    # Any (not only tight) crop placement gives the same RLE.
    a, b = int(rng.integers(0, h)), int(rng.integers(0, w))
    sub = np.zeros_like(mask)
    sub[a:, b:] = mask[a:, b:]
    assert crop_rle(mask[a:, b:], a, b, (h, w)) == ref_rle(sub)


def test_simplify_polygons_equals_skimage() -> None:
    rng = np.random.default_rng(3)
    contours = []
    for _ in range(60):
        n = int(rng.integers(3, 90))
        m = gaussian_filter(rng.normal(size=(n, n)), rng.uniform(0.5, 5)) > rng.normal(0, 0.05)
        contours += find_contours(np.pad(m, 1).astype(np.float32), 0.5)
    contours.append(rng.uniform(-50, 50, (200, 2)))  # arbitrary float chain, not from a mask
    contours.append(np.zeros((1, 2)))
    contours.append(np.array([[0.0, 0.0], [1.0, 2.0]]))
    for tol in (1.0, 0.5, 2.5):
        got = simplify_polygons(contours, tol)
        assert len(got) == len(contours)
        for c, g in zip(contours, got, strict=True):
            np.testing.assert_array_equal(g, approximate_polygon(c, tol))
    assert simplify_polygons(contours, 0.0) == contours


def test_mask_polygons_equals_reference() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = gaussian_filter(rng.normal(size=(h, w)), rng.uniform(0.3, 3)) > 0
        assert mask_polygons(mask) == ref_polygons(mask), f"seed {seed}"


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14))))
def test_mask_polygons_property(mask: np.ndarray) -> None:
    polys = mask_polygons(mask)
    assert polys == ref_polygons(mask)
    # Coordinates are pixel-edge midpoints: multiples of 0.5 inside the mask's box +- 0.5.
    for p in polys:
        xy = np.asarray(p).reshape(-1, 2)
        assert np.array_equal(xy * 2, np.round(xy * 2))
        assert xy[:, 0].min() >= -0.5 and xy[:, 0].max() <= mask.shape[1] - 0.5


def _blend_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    h, w = (int(v) for v in rng.integers(1, 70, 2))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[0, 0] = (0, 255, 128)  # the extremes of the table
    label_map = rng.integers(0, len(PARSING_LABELS), (h // 3 + 1, w // 3 + 1), dtype=np.uint8)
    label_map = np.kron(label_map, np.ones((3, 3), np.uint8))[:h, :w]  # blocks: edges and interiors
    sp = voronoi(rng, h, w, int(rng.integers(1, 20)))
    return image, label_map, sp, rng.random((h, w)) < 0.6


@pytest.mark.parametrize("case", range(4))
def test_blend_equals_float_reference(case: int) -> None:
    seed = int(np.random.default_rng().integers(2**31))
    image, label_map, sp, only = _blend_inputs(np.random.default_rng(seed))
    h, w = label_map.shape
    for alpha in (0.55, 0.3):
        for sp_labels, only_ in ((None, None), (sp, None), (None, only), (sp, only)):
            want = ref_blend(image, label_map, sp_labels, only_, alpha)
            np.testing.assert_array_equal(blend_parsing(image, label_map, sp_labels, only_, alpha), want, f"seed {seed}")
            over = render_overlay(image, label_map, sp_labels=sp_labels, only=only_, alpha=alpha)
            np.testing.assert_array_equal(over[:h, :w], want, f"seed {seed}")
            assert (over[h:, :w] == 255).all() and over.shape[1] > w  # below the photo: white


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, len(PARSING_LABELS) - 1)),
    st.integers(0, 2**32 - 1),
)
def test_blend_property(label_map: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = label_map.shape
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    sp = rng.integers(0, 3, (h, w)).astype(np.int32)  # id 0 included: never a boundary
    only = rng.random((h, w)) < 0.5
    got = blend_parsing(image, label_map, sp, only)
    np.testing.assert_array_equal(got, ref_blend(image, label_map, sp, only))
    # Outside ``only`` and off superpixel edges, the photo is untouched.
    np.testing.assert_array_equal(blend_parsing(image, label_map, None, np.zeros((h, w), bool)), image)


def test_label_png_decodes_to_the_label_map() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for h, w in ((1, 1), (3, 200), (57, 31), (256, 300)):
        lab = rng.integers(0, len(PARSING_LABELS), (h, w), dtype=np.uint8)
        lab[: h // 2] = lab[0, 0]  # runs as well as noise
        img = Image.open(io.BytesIO(label_png(lab)))
        assert img.mode == "P", f"seed {seed}"
        np.testing.assert_array_equal(np.asarray(img), lab, f"seed {seed}")


def test_png_level_option() -> None:
    result, image = random_result(4, 48, 64)
    default = encode_result(result, image, "x.jpg")
    pixels = np.asarray(Image.open(io.BytesIO(default.overlay_png)))
    sizes = []
    for level in (0, 1, 6, 9):
        enc = encode_result(result, image, "x.jpg", OverlayOptions(png_level=level))
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(enc.overlay_png))), pixels)
        assert enc.labels_png == default.labels_png and enc.record["items"] == default.record["items"]
        sizes.append(len(enc.overlay_png))
    assert sizes[0] > max(sizes[1:])  # level 0 stores, the others compress
    for bad in (-1, 10, 1.5, True, "1"):
        with pytest.raises(ValueError, match="0-9"):
            OverlayOptions(png_level=bad)  # type: ignore[arg-type]


def test_overlay_captions_equal_pillow_drawing() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    h, w = 120, 160
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label_map = np.kron(rng.integers(0, len(PARSING_LABELS), (12, 16)), np.ones((10, 10), int)).astype(np.uint8)
    items = [
        OverlayItem(int(c), MODANET_CLASSES[int(c) - 1], float(rng.uniform(0.05, 1)), [0, 0, 10, 10], [float(x), float(y), 30.0, 20.0])
        for c, x, y in zip(rng.integers(1, 14, 12), rng.integers(-5, w, 12), rng.integers(-5, h, 12), strict=True)
    ]
    for fractional in (False, True):  # off the pixel grid, Pillow draws the captions itself
        if fractional:
            items[0].mask_box = [3.5, 7.25, 30.0, 20.0]
        want = ref_overlay(image, label_map, items)
        overlay._text_mask.cache_clear()  # rendered now, then from the cache
        for _ in range(2):
            np.testing.assert_array_equal(render_overlay(image, label_map, items), want, f"seed {seed}")


def test_encoding_kernels_load_from_the_cache_in_a_new_process() -> None:
    # A kernel Numba cannot cache recompiles in every process: ~40 s for all of encoding's
    # on the first photo of each `cpt parse`. The second process must load them all.
    code = (
        "import numpy as np; from numba.core.registry import CPUDispatcher; "
        "from clothparse.bench.fusion_bench import make_input; "
        "from clothparse.parse import contours_kernel, deflate_kernel, mask_kernels, overlay_kernel; "
        "from clothparse.parse.outputs import encode_result; from clothparse.parse.fusion import fuse; "
        "from clothparse.parse.pipeline import ParseResult\n"
        "image, labels, cloth, body = make_input(n_det=5)\n"
        "image, labels = image[:64, :80].copy(), labels[:64, :80].copy()\n"
        "f = fuse(image, labels, cloth, body)\n"
        "encode_result(ParseResult(64, 80, cloth, body, np.asarray(f.label_map, np.uint8), f, labels), image, 'x')\n"
        "ds = [getattr(m, n) for m in (contours_kernel, deflate_kernel, mask_kernels, overlay_kernel) for n in dir(m)]\n"
        "ds = [d for d in ds if isinstance(d, CPUDispatcher) and d.signatures]\n"
        "print(len(ds), sum(sum(d.stats.cache_misses.values()) for d in ds))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(2)]
    used, misses = (int(v) for v in runs[1].stdout.split())
    assert used >= 7 and misses == 0, [r.stdout for r in runs]
