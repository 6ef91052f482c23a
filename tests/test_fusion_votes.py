"""Hand-built cases and properties of the fusion votes and skin rules (issue 13): the
centroid + 4-neighbour rule, the soft (mean probability) vote, and skin_rule
"growth" vs "all". Each hand case also checks the numpy reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fusion import _full_box_det, _stripes, assert_same, random_image, voronoi_labels

from clothparse.engines.base import Detections
from clothparse.parse import fusion_vote
from clothparse.parse.colour import is_skin
from clothparse.parse.fusion import FusionParams, FusionResult, detection_rank, fuse
from clothparse.parse.fusion_kernels import paste_coverage_soft
from clothparse.parse.fusion_reference import fuse_reference
from clothparse.parse.paste import paste_mask, paste_masks

BEIGE = (224, 172, 140)
BLUE = (40, 60, 200)
EMPTY = Detections.empty()


def both(img: np.ndarray, labels: np.ndarray, clothing: Detections, bodies: Detections, p: FusionParams) -> FusionResult:
    """``fuse``, checked against the reference."""
    got = fuse(img, labels, clothing, bodies, p)
    assert_same(got, fuse_reference(img, labels, clothing, bodies, p))
    return got


def _binarised(det: Detections, shape: tuple[int, int]) -> np.ndarray:
    return paste_mask(det.masks[0], det.boxes[0], shape) >= np.float32(0.5)


# ---- centroid + 4 neighbours ------------------------------------------------------------


def _centre_block() -> tuple[np.ndarray, np.ndarray]:
    """9 x 14 grey image; superpixel 0 is the 3 x 3 block rows 3-5, cols 3-5 (centroid (4, 4))."""
    labels = np.ones((9, 14), np.int32)
    labels[3:6, 3:6] = 0
    return np.full((9, 14, 3), 90, np.uint8), labels


@pytest.mark.parametrize(
    "box, neighbour",
    [([5.5, -0.5, 13.5, 8.5], (4, 5)),  # right neighbour
     ([-0.5, -0.5, 13.5, 3.5], (3, 4)),  # upper neighbour
     ([-0.5, 5.5, 13.5, 8.5], (5, 4))],  # lower neighbour
)
def test_centroid_vote_accepts_a_four_neighbour(box: list[float], neighbour: tuple[int, int]) -> None:
    img, labels = _centre_block()
    det = _full_box_det([box], [7])
    m = _binarised(det, labels.shape)
    assert not m[4, 4] and m[neighbour]  # the premise: centroid out, one 4-neighbour in
    res = both(img, labels, det, EMPTY, FusionParams(vote="centroid"))
    assert res.sp_instance[0] == 0 and res.sp_class[0] == 7
    # The same test decides "inside the body" under the centroid vote ...
    assert both(img, labels, EMPTY, det, FusionParams(vote="centroid")).in_body[0]
    # ... while the area vote wants half the block covered (at most 3 of 9 pixels here).
    assert both(img, labels, det, EMPTY, FusionParams(vote="area")).sp_instance[0] == -1


def test_centroid_vote_ignores_a_diagonal_neighbour() -> None:
    img, labels = _centre_block()
    det = _full_box_det([[5.5, 5.5, 13.5, 8.5]], [7])
    m = _binarised(det, labels.shape)
    assert m[5, 5] and not m[3:6, 3:6][[1, 0, 2, 1, 1], [1, 1, 1, 0, 2]].any()  # only the diagonal (5, 5)
    for p in (FusionParams(vote="centroid"), FusionParams(vote="centroid", skin_rule="all")):
        res = both(img, labels, det, det, p)
        assert res.sp_instance[0] == -1 and not res.in_body[0] and res.sp_class[0] == 0


def test_centroid_neighbours_outside_the_image_are_skipped() -> None:
    """A one-pixel superpixel in a corner: its centroid's neighbours off the image never hit."""
    img = np.full((4, 4, 3), 90, np.uint8)
    labels = np.ones((4, 4), np.int32)
    labels[0, 0] = 0
    det = _full_box_det([[1.5, -0.5, 3.5, 3.5]], [2])  # columns 1-3
    assert _binarised(det, (4, 4))[0, 1] and not _binarised(det, (4, 4))[0, 0]
    assert both(img, labels, det, EMPTY, FusionParams(vote="centroid")).sp_instance[0] == 0
    far = _full_box_det([[1.5, 1.5, 3.5, 3.5]], [2])
    assert both(img, labels, far, EMPTY, FusionParams(vote="centroid")).sp_instance[0] == -1


# ---- soft vote ----------------------------------------------------------------------------

# A 28 x 28 mask pasted into box [10.5, 10.5, 37.5, 37.5] lands unscaled: mask cell (i, j)
# at pixel (10 + i, 10 + j) (the resize is 30 -> 30 with zero bilinear weights).
SOFT_BOX = [10.5, 10.5, 37.5, 37.5]


def _soft_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, labels, mask): mask 0.3 on a 4-cell border, 0.6 inside (pixels 14-33).
    Superpixel 1: rows 14-33 x cols 14-23 (interior only); 2: rows 10-37 x cols 24-37
    (200 interior pixels + 192 border pixels); 0: everything else."""
    mask = np.full((28, 28), 0.3, np.float32)
    mask[4:24, 4:24] = 0.6
    labels = np.zeros((48, 48), np.int32)
    labels[14:34, 14:24] = 1
    labels[10:38, 24:38] = 2
    return np.full((48, 48, 3), BLUE, np.uint8), labels, mask


def _soft_det(masks: list[np.ndarray], classes: list[int], scores: list[float]) -> Detections:
    return Detections(np.array([SOFT_BOX] * len(masks), np.float32), np.array(scores), np.array(classes), np.stack(masks))


def test_soft_vote_against_a_hand_computation() -> None:
    img, labels, mask = _soft_scene()
    pasted = paste_mask(mask, np.array(SOFT_BOX, np.float32), labels.shape)
    outside = np.ones(labels.shape, bool)
    outside[10:38, 10:38] = False
    assert np.array_equal(pasted[10:38, 10:38], mask) and not pasted[outside].any()  # the premise
    det = _soft_det([mask], [4], [0.9])
    area = np.bincount(labels.ravel())
    assert area.tolist() == [48 * 48 - 200 - 392, 200, 392]
    want_mean = np.array([(400 * 0.6 + 384 * 0.3 - 200 * 0.6 - (200 * 0.6 + 192 * 0.3)) / area[0], 0.6, (200 * 0.6 + 192 * 0.3) / 392])
    pm, scale = fusion_vote.padded(det)
    cov, psum = paste_coverage_soft(labels, det.boxes, pm, scale, np.float32(0.5), 3, np.zeros(1, np.int64), np.array([0, 1]))
    np.testing.assert_allclose(psum[0] / area, want_mean, rtol=1e-6)
    assert cov[0].tolist() == [0, 200, 200]
    # Superpixel 2 is half confident interior, half uncertain border: mean 0.453.
    soft = both(img, labels, det, EMPTY, FusionParams(vote="soft"))
    assert soft.sp_instance.tolist() == [-1, 0, -1] and soft.sp_class.tolist() == [0, 4, 0]
    assert both(img, labels, det, EMPTY, FusionParams(vote="soft", soft_thresh=0.45)).sp_instance.tolist() == [-1, 0, 0]
    assert both(img, labels, det, EMPTY, FusionParams(vote="soft", soft_thresh=0.61)).sp_instance.tolist() == [-1, -1, -1]
    # The binarised area vote counts 200/392 >= 0.5 of superpixel 2 inside: it takes it.
    assert both(img, labels, det, EMPTY, FusionParams(vote="area")).sp_instance.tolist() == [-1, 0, 0]
    # coverage stays the binarised fraction under the soft vote.
    np.testing.assert_allclose(soft.coverage[:, 0], [0, 1, 200 / 392], rtol=1e-6)


def test_soft_vote_highest_mean_wins_then_rank() -> None:
    img, labels, mask = _soft_scene()
    flat = np.full((28, 28), 0.55, np.float32)
    # Detection 1 ranks first (score), but superpixel 1 has a higher mean under detection 0.
    det = _soft_det([mask, flat], [4, 6], [0.5, 0.9])
    for order in ([0, 1], [1, 0]):
        d = det.select(np.array(order))
        res = both(img, labels, d, EMPTY, FusionParams(vote="soft"))
        assert res.sp_class.tolist() == [0, 4, 6]
    # Equal means: the best-ranked detection (higher score, then lower class) wins.
    for scores, want in (([0.5, 0.9], 8), ([0.7, 0.7], 3)):
        tie = _soft_det([mask, mask], [3, 8], scores)
        for order in ([0, 1], [1, 0]):
            res = both(img, labels, tie.select(np.array(order)), EMPTY, FusionParams(vote="soft", soft_thresh=0.4))
            assert res.sp_class.tolist() == [0, want, want]
    # Body membership under the soft vote is the body coverage fraction (as the area vote).
    body = _soft_det([np.ones((28, 28), np.float32)], [1], [0.9])
    res = both(img, labels, EMPTY, body, FusionParams(vote="soft", body_cover_thresh=0.3))
    assert res.in_body.tolist() == [False, True, True]


# ---- skin rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("vote", ["area", "centroid", "soft"])
def test_beige_garment_keeps_its_class_with_the_default_skin_rule(vote: str) -> None:
    """Issue 13: a beige garment (mean colour inside the YCrCb skin box) on the body and
    covered by a clothing mask stays clothing by default; skin_rule="all" makes it 14."""
    assert is_skin(np.array(BEIGE, np.float64))
    img, labels = _stripes(3, [BEIGE, BLUE, BEIGE])
    body = _full_box_det([[-0.5, -0.5, 23.5, 7.5]], [1])
    trousers = _full_box_det([[-0.5, -0.5, 7.5, 7.5]], [10])  # exactly stripe 0
    res = both(img, labels, trousers, body, FusionParams(vote=vote))  # type: ignore[arg-type]
    assert res.is_skin.tolist() == [True, False, True] and res.in_body.all()
    assert res.sp_class.tolist() == [10, 14, 14]
    assert res.label_map[:, :8].tolist() == [[10] * 8] * 8
    res = both(img, labels, trousers, body, FusionParams(vote=vote, skin_rule="all"))  # type: ignore[arg-type]
    assert res.sp_class.tolist() == [14, 14, 14]
    # Off the body: the skin rule needs the body unless skin_needs_body=False.
    off = FusionParams(vote=vote, skin_rule="all")  # type: ignore[arg-type]
    assert both(img, labels, trousers, EMPTY, off).sp_class.tolist() == [10, 0, 0]
    assert both(img, labels, trousers, EMPTY, dataclasses.replace(off, skin_needs_body=False)).sp_class.tolist() == [0, 0, 0]


@pytest.mark.parametrize("skin_rule", ["growth", "all"])
def test_growth_never_enters_skin(skin_rule: str) -> None:
    img, labels = _stripes(4, [BLUE, BEIGE, (45, 62, 205), BLUE])
    body = _full_box_det([[-0.5, -0.5, 31.5, 7.5]], [1])
    shirt = _full_box_det([[-0.5, -0.5, 7.5, 7.5]], [9])
    p = FusionParams(grow_colour_thresh=500.0, skin_rule=skin_rule)  # type: ignore[arg-type]
    res = both(img, labels, shirt, body, p)
    assert res.sp_class.tolist() == [9, 14, 14, 14] and not res.grown.any()
    # A beige superpixel the vote gave to the shirt (skin_rule="growth") seeds growth.
    wide = _full_box_det([[-0.5, -0.5, 15.5, 7.5]], [9])
    res = both(img, labels, wide, body, p)
    assert res.sp_class.tolist() == ([9, 9, 9, 9] if skin_rule == "growth" else [9, 14, 14, 14])


# ---- properties -------------------------------------------------------------------------------


@st.composite
def soft_scenes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, Detections, Detections, FusionParams]:
    """Scenes whose masks are all ones (so some superpixels lie wholly where a mask pastes to 1)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    n = draw(st.integers(0, 6))
    centre = rng.uniform([0, 0], [w, h], (n, 2))
    size = rng.uniform([2, 2], [1.5 * w + 3, 1.5 * h + 3], (n, 2))
    clothing = Detections(np.concatenate([centre - size / 2, centre + size / 2], axis=1), rng.random(n),
                          rng.integers(1, 14, n), np.ones((n, 28, 28), np.float32))
    bodies = Detections(np.array([[-1, -1, w, h]], np.float32), np.array([0.9]), np.array([1]), np.ones((1, 28, 28), np.float32)) if draw(st.booleans()) else EMPTY
    params = FusionParams(vote="soft", soft_thresh=draw(st.sampled_from([1e-6, 0.3, 0.5, 0.99, 1.0])),
                          skin_rule=draw(st.sampled_from(["growth", "all"])), grow_colour_thresh=draw(st.sampled_from([0.0, 50.0])))
    return random_image(rng, h, w), voronoi_labels(rng, h, w, draw(st.integers(1, 20))), clothing, bodies, params


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soft_scenes())
def test_soft_vote_assigns_superpixels_wholly_inside_a_certain_mask(scene: tuple) -> None:
    img, labels, clothing, bodies, params = scene
    res = fuse(img, labels, clothing, bodies, params)
    pasted = paste_masks(clothing.masks, clothing.boxes, labels.shape)
    full = np.zeros((len(clothing), res.sp_area.size), bool)  # detection i pastes exactly 1 on all of s
    for i in range(len(clothing)):
        full[i] = [bool((pasted[i][labels == s] == 1.0).all()) for s in range(res.sp_area.size)]
    excluded = res.is_skin & (res.in_body | (not params.skin_needs_body)) if params.skin_rule == "all" else np.zeros_like(res.is_skin)
    rank = detection_rank(clothing)
    for s in np.flatnonzero(full.any(axis=0) & (res.sp_area > 0) & ~excluded).tolist():
        i = int(res.sp_instance[s])
        assert i >= 0 and not res.grown[s] and full[i, s]
        assert rank[i] == rank[full[:, s]].min()  # among certain masks, the best-ranked wins
    # A higher soft_thresh only removes vote assignments; the winners do not change.
    stricter = fuse(img, labels, clothing, bodies, dataclasses.replace(params, soft_thresh=1.0))
    voted, voted_strict = np.where(res.grown, -1, res.sp_instance), np.where(stricter.grown, -1, stricter.sp_instance)
    assert ((voted_strict == -1) | (voted_strict == voted)).all()
