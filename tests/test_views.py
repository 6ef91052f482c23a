"""The overlay's views and toggles (``clothparse.parse.views``) on hand-built parse results:
pixel checks of what each view colours, the boxes, and unpredicted-only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers_encode import random_result
from PIL import Image
from skimage.segmentation import find_boundaries

from clothparse.engines.base import Detections
from clothparse.errors import ConfigError
from clothparse.parse.fusion import FusionParams, fuse
from clothparse.parse.outputs import OverlayOptions, encode_result
from clothparse.parse.pipeline import ParseResult
from clothparse.parse.views import MIN_BOX_AREA, class_boxes, instance_colours, render_view
from clothparse.taxonomy import BODY_LABEL, MODANET_CLASSES, PALETTE

PERSON = ("person",)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _dets(boxes: list[list[float]], scores: list[float], classes: list[int], names: tuple[str, ...]) -> Detections:
    n = len(boxes)
    masks = np.ones((n, 28, 28), np.float32)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.array(scores, np.float32), np.array(classes, np.int64), masks, names)


def _result(label_map: np.ndarray, clothing: Detections | None = None, body: Detections | None = None) -> ParseResult:
    h, w = label_map.shape
    clothing = clothing if clothing is not None else Detections.empty(MODANET_CLASSES)
    body = body if body is not None else Detections.empty(PERSON)
    return ParseResult(h, w, clothing, body, label_map, None, None)


def _blend(photo: np.ndarray, rgb: np.ndarray | tuple[int, ...], alpha: float) -> np.ndarray:
    """The overlay's blend of one colour at ``alpha`` (float32, rounded half up)."""
    a = np.float32(alpha)
    x = photo.astype(np.float32) * (1 - a) + np.asarray(rgb, np.float32) * a
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _outline(shape: tuple[int, int], box: list[float]) -> np.ndarray:
    """bool [H, W]: the 1-pixel outline of inclusive box (x1, y1, x2, y2)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    m = np.zeros(shape, bool)
    m[y0 : y1 + 1, [x0, x1]] = True
    m[[y0, y1], x0 : x1 + 1] = True
    return m


# ---------------------------------------------------------------- boxes


def _shapes() -> np.ndarray:
    lab = np.zeros((60, 80), np.uint8)
    lab[10:30, 20:50] = 9  # a block of tops
    lab[35:55, 5:10] = 1  # an L of bags: its box has a corner off the shape
    lab[50:55, 5:25] = 1
    lab[40:50, 60:76] = 9  # a second region of tops
    lab[2:4, 70:72] = 5  # a 4-pixel speck: no box
    lab[5:8, 2:14] = BODY_LABEL  # body: never boxed
    return lab


def test_class_boxes_of_the_label_map() -> None:
    assert MIN_BOX_AREA > 4
    assert class_boxes(_shapes()) == [
        ([5.0, 35.0, 24.0, 54.0], 1),
        ([20.0, 10.0, 49.0, 29.0], 9),
        ([60.0, 40.0, 75.0, 49.0], 9),
    ]
    diag = np.zeros((10, 10), np.uint8)
    diag[np.arange(10), np.arange(10)] = 3  # 8-connected: one region
    assert class_boxes(diag, min_area=1) == [([0.0, 0.0, 9.0, 9.0], 3)]


def test_show_boxes_outlines_the_refined_class_regions() -> None:
    lab = _shapes()
    image = _photo(*lab.shape)
    res = _result(lab)
    plain = render_view(res, image)
    boxed = render_view(res, image, OverlayOptions(show_boxes=True))
    h, w = lab.shape
    outline = np.zeros((h, w), bool)
    for box, c in [([5, 35, 24, 54], 1), ([20, 10, 49, 29], 9), ([60, 40, 75, 49], 9)]:
        edge = _outline((h, w), box)
        assert (boxed[:h, :w][edge] == PALETTE[c]).all(), c
        outline |= edge
    assert (boxed[35, 24] == PALETTE[1]).all() and lab[35, 24] == 0  # the L's corner, off the shape
    # Nothing else changed: no box around the speck or the body, the legend as it was.
    assert (plain[:h, :w][outline] != boxed[:h, :w][outline]).any(axis=-1).all()
    np.testing.assert_array_equal(boxed[:h, :w][~outline], plain[:h, :w][~outline])
    np.testing.assert_array_equal(boxed[:, w:], plain[:, w:])


def test_detector_boxes_in_the_parse_view() -> None:
    lab = np.zeros((50, 60), np.uint8)
    lab[10:30, 10:40] = 9
    clothing = _dets([[8, 6, 44, 33]], [0.9], [9], MODANET_CLASSES)
    image = _photo(50, 60, 1)
    res = _result(lab, clothing)
    got = render_view(res, image, OverlayOptions(detector_boxes=True), captions=False)
    plain = render_view(res, image, captions=False)
    edge = _outline((50, 60), [8, 6, 44, 33])
    assert (got[:50, :60][edge] == PALETTE[9]).all()
    np.testing.assert_array_equal(got[:50, :60][~edge], plain[:50, :60][~edge])
    # --show-boxes alone boxes the region, not the detection.
    region = render_view(res, image, OverlayOptions(show_boxes=True), captions=False)
    assert (region[:50, :60][_outline((50, 60), [10, 10, 39, 29])] == PALETTE[9]).all()
    assert not (region[:50, :60][edge & ~_outline((50, 60), [10, 10, 39, 29])] == PALETTE[9]).all(axis=-1).all()


# ---------------------------------------------------------------- unpredicted only


def _grown_result() -> tuple[ParseResult, np.ndarray]:
    """40 x 40 blue photo, 16 superpixels of 10 x 10, a top over the left half, a body over
    everything and one skin superpixel: growth spreads the top to the right half, the skin
    superpixel stays body (14)."""
    h = w = 40
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = (40, 60, 210)
    image[30:, 30:] = (224, 170, 140)  # skin
    sp = (np.arange(h)[:, None] // 10 * 4 + np.arange(w)[None] // 10).astype(np.int32)
    clothing = _dets([[0, 0, 19, 39]], [0.9], [9], MODANET_CLASSES)
    body = _dets([[0, 0, 39, 39]], [0.95], [1], PERSON)
    f = fuse(image, sp, clothing, body, FusionParams())
    return ParseResult(h, w, clothing, body, np.asarray(f.label_map, np.uint8), f, sp), image


def test_unpredicted_only_colours_exactly_the_grown_superpixels() -> None:
    res, image = _grown_result()
    f = res.fusion
    assert f is not None and f.grown.any() and ((f.sp_instance >= 0) & ~f.grown).any()
    assert (res.label_map == BODY_LABEL).any()  # leftover body, which must stay uncoloured
    grown = np.asarray(f.grown)[res.sp_labels]
    over = render_view(res, image, OverlayOptions(unpredicted_only=True), captions=False)[:40, :40]
    np.testing.assert_array_equal(over[~grown], image[~grown])
    assert (over[grown] != image[grown]).any(axis=-1).all()
    interior = grown & ~find_boundaries(res.label_map, mode="inner")
    np.testing.assert_array_equal(over[interior], _blend(image[interior], PALETTE[9], 0.55))
    # The default parse view colours the body too.
    plain = render_view(res, image, captions=False)[:40, :40]
    body = res.label_map == BODY_LABEL
    assert (plain[body] != image[body]).any(axis=-1).all()


def test_unpredicted_only_at_pixel_level_colours_nothing() -> None:
    lab = np.zeros((20, 20), np.uint8)
    lab[5:15, 5:15] = 9
    image = _photo(20, 20)
    over = render_view(_result(lab), image, OverlayOptions(unpredicted_only=True))
    np.testing.assert_array_equal(over[:20, :20], image)


# ---------------------------------------------------------------- body and clothing views


def test_body_view_colours_the_person_masks_alone() -> None:
    h, w = 60, 50
    image = _photo(h, w, 2)
    lab = np.zeros((h, w), np.uint8)
    lab[20:40, 10:30] = 9
    lab[5:20, 10:30] = BODY_LABEL
    clothing = _dets([[30, 40, 48, 58]], [0.8], [1], MODANET_CLASSES)  # off the body
    body = _dets([[8, 4, 32, 44]], [0.9], [1], PERSON)
    res = _result(lab, clothing, body)
    over = render_view(res, image, OverlayOptions(view="body"))[:h, :w]
    person = res.body_mask(0)
    assert person.any() and not person[45:, 35:].any()
    np.testing.assert_array_equal(over[~person], image[~person])
    edge = find_boundaries(person, mode="inner") & person
    inner = person & ~edge
    np.testing.assert_array_equal(over[inner], _blend(image[inner], PALETTE[BODY_LABEL], 0.55))
    np.testing.assert_array_equal(over[edge], np.broadcast_to(_blend(np.zeros((1, 3), np.uint8), PALETTE[BODY_LABEL], 0.6), over[edge].shape))
    boxed = render_view(res, image, OverlayOptions(view="body", detector_boxes=True))[:h, :w]
    assert (boxed[_outline((h, w), [8, 4, 32, 44])] == PALETTE[BODY_LABEL]).all()


def test_clothing_view_colours_each_instance_and_no_body() -> None:
    h, w = 60, 70
    image = _photo(h, w, 3)
    lab = np.full((h, w), BODY_LABEL, np.uint8)  # all body in the parse result
    # Two tops of the same class, overlapping; the weaker listed first.
    clothing = _dets([[30, 10, 60, 40], [5, 5, 40, 30]], [0.6, 0.9], [9, 9], MODANET_CLASSES)
    body = _dets([[0, 0, 69, 59]], [0.9], [1], PERSON)
    res = _result(lab, clothing, body)
    strong, weak = res.pasted_mask(clothing, 1), res.pasted_mask(clothing, 0)
    over = render_view(res, image, OverlayOptions(view="clothing"), captions=False)[:h, :w]
    either = strong | weak
    np.testing.assert_array_equal(over[~either], image[~either])  # no body layer
    first, second = instance_colours(2)
    assert first != second
    index = np.where(strong, 1, np.where(weak, 2, 0))  # the view's map: rank + 1
    inner = ~find_boundaries(index, mode="thick")
    both, only_weak = strong & weak & inner, weak & ~strong & inner
    assert both.any() and only_weak.any()
    np.testing.assert_array_equal(over[both], _blend(image[both], first, 0.55))  # the strongest on top
    np.testing.assert_array_equal(over[only_weak], _blend(image[only_weak], second, 0.55))
    # Boxes: the detector's, in the instance colours, for --show-boxes and --detector-boxes alike.
    for opts in (OverlayOptions(view="clothing", show_boxes=True), OverlayOptions(view="clothing", detector_boxes=True)):
        boxed = render_view(res, image, opts, captions=False)[:h, :w]
        assert (boxed[5, 5:41] == first).all() and (boxed[40, 30:61] == second).all()
    # Captions: "top 0.90" on the strongest instance's mask, in its colour.
    ys, xs = np.nonzero(strong)
    captioned = render_view(res, image, OverlayOptions(view="clothing"))
    assert tuple(captioned[ys.min(), xs.min()]) == first


def test_instance_colours_are_distinct_and_fixed() -> None:
    colours = instance_colours(255)
    assert len(set(colours)) == 255 and instance_colours(255) == colours
    assert instance_colours(300)[255:] == colours[:45] and instance_colours(3) == colours[:3]


# ---------------------------------------------------------------- the outputs


def test_views_change_the_overlay_only() -> None:
    seed = next(s for s in range(100) if _has_both(s))
    result, image = random_result(seed, 48, 64)
    encoded = {}
    for view in ("parse", "clothing", "body"):
        options = OverlayOptions(view=view, show_superpixels=True, show_boxes=view == "parse")
        enc = encode_result(result, image, "x.jpg", options)
        encoded[view] = enc
        # The renderer alone, as a server would call it on a kept result, draws the same.
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(enc.overlay_png))), render_view(result, image, options))
    records = [{k: v for k, v in e.record.items() if k != "timings_ms"} for e in encoded.values()]
    assert records[0] == records[1] == records[2]
    assert encoded["parse"].labels_png == encoded["clothing"].labels_png == encoded["body"].labels_png
    overlays = [e.overlay_png for e in encoded.values()]
    assert len(set(overlays)) == 3


def _has_both(seed: int) -> bool:
    result, _ = random_result(seed, 48, 64)
    return len(result.clothing) > 0 and len(result.body) > 0 and any(result.body_mask(i).any() for i in range(len(result.body)))


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown overlay view 'skeleton'"):
        OverlayOptions(view="skeleton")
    for view in ("clothing", "body"):
        with pytest.raises(ConfigError, match=f"not the {view} view"):
            OverlayOptions(view=view, unpredicted_only=True)
