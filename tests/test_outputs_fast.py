"""The crop-based ``encode_result`` against the full-mask way it replaced.

The reference below is the previous implementation, kept verbatim in spirit: one
full-resolution mask per item (``result.item_mask``), pycocotools on the Fortran-order
mask, skimage's ``find_contours`` + ``approximate_polygon``, ``mask.sum()``,
``np.unique`` label counts, and Pillow's PNG writer. Records must be equal, the label
PNG byte-identical and the overlay's decoded pixels identical.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.ndimage import gaussian_filter
from skimage.measure import approximate_polygon, find_contours

from clothparse.engines.base import Detections
from clothparse.parse.fusion import FusionParams, fuse, pixel_level
from clothparse.parse.mask_codec import crop_rle, mask_polygons, simplify_polygons, tight_crop
from clothparse.parse.outputs import (
    OverlayItem,
    OverlayOptions,
    blend_parsing,
    encode_result,
    label_png,
    png_bytes,
    render_overlay,
    unpredicted_pixels,
)
from clothparse.parse.pipeline import ParseResult
from clothparse.taxonomy import MODANET_CLASSES, PALETTE, PARSING_LABELS

# ---------------------------------------------------------------- reference (full masks)


def ref_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def ref_polygons(mask: np.ndarray) -> list[list[float]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.pad(mask[y0:y1, x0:x1], 1).astype(np.float32)
    polys = []
    for contour in find_contours(crop, 0.5):
        contour = approximate_polygon(contour, 1.0)
        if len(contour) < 4:
            continue
        xy = np.stack([contour[:, 1] - 1 + x0, contour[:, 0] - 1 + y0], axis=1)
        polys.append([round(float(v), 2) for v in xy[:-1].reshape(-1)])
    return polys


def ref_bbox(mask: np.ndarray) -> list[float]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])]


def ref_encode(result: ParseResult, image: np.ndarray, options: OverlayOptions) -> tuple[dict[str, Any], bytes, np.ndarray]:
    """(record without timings, label PNG bytes, overlay pixels) the old way."""
    items, captions = [], []
    for item in result.items:
        mask = result.item_mask(item.index)
        mbox = ref_bbox(mask)
        items.append(
            {
                "id": item.index,
                "class_id": item.label,
                "class": item.name,
                "score": round(item.score, 6),
                "box": [round(float(v), 3) for v in item.box],
                "mask": ref_rle(mask),
                "polygons": ref_polygons(mask),
                "area": int(mask.sum()),
                "mask_box": mbox,
                "changed_by_superpixels": item.changed,
            }
        )
        captions.append(OverlayItem(item.label, item.name, item.score, item.box.tolist(), mbox))
    body = {
        "boxes": [[round(float(v), 3) for v in b] for b in result.body.boxes],
        "scores": [round(float(s), 6) for s in result.body.scores],
        "masks": [ref_rle(result.body_mask(i)) for i in range(len(result.body))],
    }
    overlay = render_overlay(
        image,
        result.label_map,
        captions,
        show_boxes=options.show_boxes,
        sp_labels=result.sp_labels if options.show_superpixels else None,
        only=unpredicted_pixels(result) if options.unpredicted_only else None,
    )
    img = Image.fromarray(result.label_map, mode="P")
    img.putpalette(label_palette())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    record = {
        "image": {"file": "x.jpg", "width": result.width, "height": result.height},
        "superpixels": result.fusion is not None,
        "items": items,
        "body": body,
        "label_counts": {
            PARSING_LABELS[int(v)]: int(c) for v, c in zip(*np.unique(result.label_map, return_counts=True), strict=True)
        },
    }
    return record, buf.getvalue(), overlay


def ref_blend(
    image: np.ndarray, label_map: np.ndarray, sp_labels: np.ndarray | None, only: np.ndarray | None, alpha: float = 0.55
) -> np.ndarray:
    """The overlay's colouring, evaluated in float32 over the whole image (the old way)."""
    from skimage.segmentation import find_boundaries

    colour = PALETTE[label_map].astype(np.float32)
    a = np.where(label_map == 0, 0.0, alpha).astype(np.float32)
    a[label_map == len(PARSING_LABELS) - 1] = alpha * 0.5
    if only is not None:
        a = a * only
    out = image.astype(np.float32) * (1 - a[..., None]) + colour * a[..., None]
    edges = find_boundaries(label_map, mode="inner") & (label_map > 0)
    if only is not None:
        edges &= only
    out[edges] = colour[edges] * 0.6
    if sp_labels is not None:
        b = find_boundaries(sp_labels, mode="inner")
        out[b] = out[b] * 0.4 + np.array((255.0, 255.0, 0.0), np.float32) * 0.6
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def label_palette() -> list[int]:
    from clothparse.taxonomy import palette_flat

    return list(palette_flat())


# ---------------------------------------------------------------- random results


def smooth_masks(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 [n, 28, 28] smooth blobs in [0, 1]."""
    if n == 0:
        return np.zeros((0, 28, 28), np.float32)
    raw = np.stack([gaussian_filter(rng.normal(size=(28, 28)), rng.uniform(1, 4)) for _ in range(n)])
    return (1.0 / (1.0 + np.exp(-raw / (raw.std() + 1e-9) * 4 - 0.5))).astype(np.float32).reshape(n, 28, 28)


def random_dets(rng: np.random.Generator, n: int, h: int, w: int, names: tuple[str, ...], n_cls: int) -> Detections:
    """Boxes of any size, some past the image borders; some masks all zero or all one."""
    size = rng.uniform(1, 1.3, (n, 2)) * [w, h] * rng.uniform(0.05, 1.0, (n, 1))
    centre = rng.uniform(-0.1, 1.1, (n, 2)) * [w, h]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    masks = smooth_masks(rng, n)
    kind = rng.integers(0, 8, n)
    masks[kind == 0] = 0.0  # empty instance
    masks[kind == 1] = 1.0  # solid: spans its whole box (full width when the box does)
    return Detections(boxes, rng.uniform(0.05, 1.0, n), rng.integers(1, n_cls + 1, n), masks, names)


def voronoi(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    pts = rng.uniform(0, 1, (k, 2)) * [h, w]
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    lab = d.argmin(-1)
    return np.unique(lab, return_inverse=True)[1].reshape(h, w).astype(np.int32)


def random_result(seed: int, h: int, w: int, superpixels: bool = True, thresh: float = 0.5) -> tuple[ParseResult, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cloth = random_dets(rng, int(rng.integers(0, 25)), h, w, MODANET_CLASSES, 13)
    body = random_dets(rng, int(rng.integers(0, 3)), h, w, ("person",), 1)
    if superpixels:
        sp = voronoi(rng, h, w, int(rng.integers(1, 60)))
        f = fuse(image, sp, cloth, body, FusionParams(mask_thresh=thresh))
        return ParseResult(h, w, cloth, body, np.asarray(f.label_map, np.uint8), f, sp, thresh, {}), image
    lab = np.asarray(pixel_level((h, w), cloth, body, max(thresh, 1e-6)), np.uint8)
    return ParseResult(h, w, cloth, body, lab, None, None, thresh, {}), image


def check_same(result: ParseResult, image: np.ndarray, options: OverlayOptions = OverlayOptions()) -> None:
    want, want_labels, want_overlay = ref_encode(result, image, options)
    enc = encode_result(result, image, "x.jpg", options)
    got = {k: v for k, v in enc.record.items() if k != "timings_ms"}
    assert got == want
    assert enc.labels_png == want_labels == label_png(result.label_map)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(enc.overlay_png)).convert("RGB")), want_overlay)
    assert set(enc.record["timings_ms"]) >= {"encode"}


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", range(6))
def test_encode_result_equals_full_mask_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    h, w = (int(v) for v in rng.integers(8, 96, 2))
    result, image = random_result(seed, h, w)
    check_same(result, image, OverlayOptions(show_boxes=bool(seed % 2), show_superpixels=seed % 3 == 0, unpredicted_only=seed % 3 == 1))


@pytest.mark.parametrize("thresh", [0.5, 0.0])
def test_encode_result_pixel_level(thresh: float) -> None:
    for seed in range(3):
        result, image = random_result(seed, 40 + 7 * seed, 56, superpixels=False, thresh=thresh)
        check_same(result, image)


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
    check_same(res, image)


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
    rng = np.random.default_rng(5)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = gaussian_filter(rng.normal(size=(h, w)), rng.uniform(0.3, 3)) > 0
        assert mask_polygons(mask) == ref_polygons(mask)


@pytest.mark.parametrize("seed", range(4))
def test_blend_equals_float_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 70, 2))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[0, 0] = (0, 255, 128)  # the extremes of the table
    label_map = rng.integers(0, len(PARSING_LABELS), (h // 3 + 1, w // 3 + 1), dtype=np.uint8)
    label_map = np.kron(label_map, np.ones((3, 3), np.uint8))[:h, :w]  # blocks: edges and interiors
    sp = voronoi(rng, h, w, int(rng.integers(1, 20)))
    only = rng.random((h, w)) < 0.6
    for alpha in (0.55, 0.3):
        for sp_labels, only_ in ((None, None), (sp, None), (None, only), (sp, only)):
            want = ref_blend(image, label_map, sp_labels, only_, alpha)
            np.testing.assert_array_equal(blend_parsing(image, label_map, sp_labels, only_, alpha), want)
            assert render_overlay(image, label_map, sp_labels=sp_labels, only=only_, alpha=alpha)[:h, :w].shape == want.shape


def test_fast_png_is_lossless() -> None:
    rng = np.random.default_rng(9)
    for h, w in ((1, 1), (3, 200), (57, 31)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for fast in (False, True):
            back = Image.open(io.BytesIO(png_bytes(img, fast=fast)))
            assert back.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(back), img)
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4), np.uint8), fast=True)
