"""The fusion kernel: golden tests against the numpy reference (every vote x skin rule),
paste geometry against torchvision, hypothesis invariants, growth behaviour, edge cases
and input validation. Hand-built cases of the centroid, soft and skin rules are in
``test_fusion_votes.py``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.segmentation import slic
from torchvision.models.detection.roi_heads import paste_masks_in_image

from clothparse.engines.base import Detections
from clothparse.parse import fusion
from clothparse.parse.colour import is_skin
from clothparse.parse.fusion import FusionInputError, FusionParams, fuse, pixel_level
from clothparse.parse.fusion_reference import fuse_reference, reference_rank
from clothparse.parse.paste import expand_boxes, paste_masks
from clothparse.parse.superpixels import relabel_contiguous

torch.set_num_threads(1)

EXACT_FIELDS = ("label_map", "sp_class", "sp_instance", "sp_area", "coverage", "body_coverage",
                "is_skin", "in_body", "grown", "changed", "rank", "growth_rounds")


def random_detections(rng: np.random.Generator, n: int, h: int, w: int, classes: int = 13, binary: bool | None = None) -> Detections:
    """n boxes scattered over and around an h x w image (some wholly outside), random 28x28 masks."""
    centre = rng.uniform([-0.3 * w, -0.3 * h], [1.3 * w, 1.3 * h], (n, 2))
    size = rng.uniform(0, [1.2 * w, 1.2 * h], (n, 2)) * (rng.random((n, 1)) < 0.9)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    masks = rng.random((n, 28, 28))
    if binary if binary is not None else rng.random() < 0.5:
        masks = (masks > rng.uniform(0.2, 0.8)).astype(np.float32)
    scores = rng.choice([0.3, 0.5, 0.9], n) if rng.random() < 0.3 else rng.random(n)  # ties too
    return Detections(boxes, scores, rng.integers(1, classes + 1, n), masks)


def voronoi_labels(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    seeds = rng.uniform(0, [h, w], (k, 2))
    yy, xx = np.mgrid[:h, :w]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    return relabel_contiguous(d.argmin(-1))


def random_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blocky colours, a share of them in the skin range, with noise."""
    palette = rng.integers(0, 256, (6, 3))
    palette[:2] = [(224, 172, 140), (190, 140, 110)]  # skin tones
    blocks = rng.integers(0, 6, (h // 8 + 1, w // 8 + 1))
    img = palette[np.kron(blocks, np.ones((8, 8), int))[:h, :w]]
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def assert_same(a: fusion.FusionResult, b: fusion.FusionResult) -> None:
    for f in EXACT_FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert np.allclose(a.mean_lab, b.mean_lab) and np.allclose(a.refined_iou, b.refined_iou)


VOTES = ("area", "centroid", "soft")
SKIN_RULES = ("growth", "all")


GOLDEN_SEEDS = range(12)


def golden_scene(seed: int, vote: str, skin_rule: str) -> tuple[np.ndarray, np.ndarray, Detections, Detections, FusionParams]:
    """Fresh random inputs for each (seed, vote, skin rule)."""
    rng = np.random.default_rng([1000 + seed, VOTES.index(vote), SKIN_RULES.index(skin_rule)])
    h, w = (int(v) for v in rng.integers(1, 72, 2))
    img = random_image(rng, h, w)
    kind = seed % 3
    if kind == 0 and h * w >= 4:
        labels = relabel_contiguous(slic(img, n_segments=int(rng.integers(5, 60)), compactness=20, sigma=2, start_label=0))
    elif kind == 1:
        labels = voronoi_labels(rng, h, w, int(rng.integers(1, 40)))
    else:
        labels = rng.integers(0, int(rng.integers(1, 30)), (h, w))  # fragmented, possibly with gaps
    clothing = random_detections(rng, int(rng.integers(0, 12)), h, w)
    bodies = random_detections(rng, int(rng.integers(0, 3)), h, w, classes=1)
    params = FusionParams(
        vote=vote,  # type: ignore[arg-type]
        skin_rule=skin_rule,  # type: ignore[arg-type]
        soft_thresh=float(rng.choice([0.5, 0.3, 0.8, 1.0])),
        cover_thresh=float(rng.choice([0.5, 0.3, 1.0])),
        mask_thresh=float(rng.choice([0.5, 0.25])),
        grow_colour_thresh=float(rng.choice([12.0, 40.0, 200.0])),
        body_cover_thresh=float(rng.choice([0.5, 0.2])),
        max_iters=int(rng.choice([1000, 1])),
        skin_needs_body=bool(seed % 4 < 2),
    )
    return img, labels, clothing, bodies, params


@pytest.mark.parametrize("skin_rule", SKIN_RULES)
@pytest.mark.parametrize("vote", VOTES)
@pytest.mark.parametrize("seed", GOLDEN_SEEDS)
def test_golden_kernel_equals_reference(seed: int, vote: str, skin_rule: str) -> None:
    img, labels, clothing, bodies, params = golden_scene(seed, vote, skin_rule)
    assert_same(fuse(img, labels, clothing, bodies, params), fuse_reference(img, labels, clothing, bodies, params))


def test_golden_scenes_exercise_every_rule() -> None:
    """The golden scenes are not vacuous: per (vote, skin rule) some superpixels are voted,
    per vote some are grown, and with skin_rule="growth" some skin superpixels inside the
    body are voted (never with "all")."""
    for vote in VOTES:
        grown = 0
        for rule in SKIN_RULES:
            voted = skin_voted = 0
            for seed in GOLDEN_SEEDS:
                res = fuse(*golden_scene(seed, vote, rule))
                v = (res.sp_instance >= 0) & ~res.grown
                voted += int(v.sum())
                grown += int(res.grown.sum())
                skin_voted += int((v & res.is_skin & res.in_body).sum())
            assert voted > 0, (vote, rule)
            assert (skin_voted > 0) == (rule == "growth"), (vote, rule, skin_voted)
        assert grown > 0, vote


def test_golden_sparse_adjacency_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above DENSE_ADJ_MAX superpixels the adjacency comes from sorted boundary pairs."""
    rng = np.random.default_rng(7)
    img = random_image(rng, 48, 40)
    labels = voronoi_labels(rng, 48, 40, 60)
    clothing, bodies = random_detections(rng, 8, 48, 40), random_detections(rng, 2, 48, 40, 1)
    params = FusionParams(grow_colour_thresh=500.0)
    want = fuse_reference(img, labels, clothing, bodies, params)
    monkeypatch.setattr(fusion, "DENSE_ADJ_MAX", 10)
    assert_same(fuse(img, labels, clothing, bodies, params), want)
    assert want.grown.any()


def test_paste_port_matches_torchvision() -> None:
    """The numpy port of torchvision's paste agrees to float32 rounding (torch's compiled
    kernel may contract to FMA), and binarised masks agree except within that band."""
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        det = random_detections(rng, 4, h, w)
        eb = expand_boxes(det.boxes, 28)
        # torchvision itself fails on boxes wholly outside the image (negative slice ends).
        keep = (eb[:, 0] < w) & (eb[:, 1] < h) & (eb[:, 2] >= 0) & (eb[:, 3] >= 0)
        det = det.select(keep)
        ours = paste_masks(det.masks, det.boxes, (h, w))
        theirs = paste_masks_in_image(torch.from_numpy(det.masks)[:, None], torch.from_numpy(det.boxes), (h, w))[:, 0].numpy()
        assert np.abs(ours - theirs).max(initial=0) <= 2e-6
        flips = (ours >= 0.5) != (theirs >= 0.5)
        assert (np.abs(ours[flips] - 0.5) <= 2e-6).all()
        checked += len(det)
    assert checked > 100


def test_pixel_level_matches_pasted_masks() -> None:
    rng = np.random.default_rng(11)
    for _ in range(10):
        h, w = (int(v) for v in rng.integers(1, 64, 2))
        clothing, bodies = random_detections(rng, 6, h, w), random_detections(rng, 2, h, w, 1)
        want = np.zeros((h, w), np.uint8)
        pasted = paste_masks(clothing.masks, clothing.boxes, (h, w)) >= np.float32(0.5)
        for i in np.argsort(-reference_rank(clothing)):  # weakest first, best painted last
            want[pasted[i]] = clothing.classes[i]
        body = (paste_masks(bodies.masks, bodies.boxes, (h, w)) >= np.float32(0.5)).any(axis=0)
        want[body & (want == 0)] = 14
        assert np.array_equal(pixel_level((h, w, 3), clothing, bodies), want)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, Detections, Detections, FusionParams]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    img = random_image(rng, h, w)
    labels = voronoi_labels(rng, h, w, draw(st.integers(1, 25)))
    clothing = random_detections(rng, draw(st.integers(0, 8)), h, w)
    bodies = random_detections(rng, draw(st.integers(0, 3)), h, w, classes=1)
    params = FusionParams(vote=draw(st.sampled_from(VOTES)),
                          grow_colour_thresh=draw(st.sampled_from([0.0, 12.0, 80.0])),
                          skin_needs_body=draw(st.booleans()),
                          skin_rule=draw(st.sampled_from(SKIN_RULES)),
                          soft_thresh=draw(st.sampled_from([0.3, 0.5, 1.0])))
    return img, labels, clothing, bodies, params


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.randoms(use_true_random=False))
def test_invariants(scene: tuple, rnd: object) -> None:
    img, labels, clothing, bodies, params = scene
    res = fuse(img, labels, clothing, bodies, params)
    assert res.label_map.dtype == np.uint8 and res.label_map.shape == labels.shape
    assert res.label_map.max(initial=0) <= 14
    # Skin is never grown into; with skin_rule="all", skin (inside the body, or anywhere
    # without skin_needs_body) is never clothing; unassigned body superpixels are 14.
    assert not (res.grown & res.is_skin).any()
    skin = res.is_skin & (res.in_body | (not params.skin_needs_body))
    clothing_sp = (res.sp_class >= 1) & (res.sp_class <= 13)
    if params.skin_rule == "all":
        assert not (clothing_sp & skin).any()
    assert (res.sp_class[res.in_body & (res.sp_instance < 0)] == 14).all()
    # The skin rules differ only on skin superpixels: elsewhere the vote is the same.
    other_rule = "all" if params.skin_rule == "growth" else "growth"
    res_o = fuse(img, labels, clothing, bodies, dataclasses.replace(params, skin_rule=other_rule))
    voted, voted_o = np.where(res.grown, -1, res.sp_instance), np.where(res_o.grown, -1, res_o.sp_instance)
    assert np.array_equal(voted[~skin], voted_o[~skin])
    assert ((voted_o if other_rule == "all" else voted)[skin] == -1).all()
    assert (res.is_skin == (is_skin(res.mean_rgb.astype(np.float64)) & (res.sp_area > 0))).all()
    # Superpixels outside every binarised mask and outside the body are background (not
    # under the centroid vote: a 4-neighbour of the centroid may lie in another superpixel;
    # nor under a soft vote below mask_thresh: a mean can pass it with no pixel >= mask_thresh).
    untouched = (res.coverage.sum(axis=1) == 0) & (res.body_coverage == 0)
    if params.vote == "area" or (params.vote == "soft" and params.soft_thresh >= params.mask_thresh):
        assert (res.sp_class[untouched] == 0).all()
        assert (res.label_map[untouched[labels]] == 0).all()
    # Instances are the union of their superpixels and carry their detection's class.
    for i in range(len(clothing)):
        m = res.instance_mask(i)
        assert (res.label_map[m] == clothing.classes[i]).all()
    # Permuting the detections permutes instance ids and nothing else.
    perm = np.array(rnd.sample(range(len(clothing)), len(clothing)), dtype=np.int64)  # type: ignore[attr-defined]
    bperm = np.array(rnd.sample(range(len(bodies)), len(bodies)), dtype=np.int64)  # type: ignore[attr-defined]
    res2 = fuse(img, labels, clothing.select(perm), bodies.select(bperm), params)
    assert np.array_equal(res.label_map, res2.label_map)
    assert np.array_equal(res.grown, res2.grown)
    mapped = np.array([perm[i] if i >= 0 else -1 for i in res2.sp_instance.tolist()], np.int64)
    same_key = len(set(zip(clothing.scores.tolist(), clothing.classes.tolist(), map(tuple, clothing.boxes.tolist()), strict=True))) == len(clothing)
    if same_key:  # identical (score, class, box) keys may legitimately swap instance ids
        assert np.array_equal(mapped, res.sp_instance)
        assert np.array_equal(res.changed[perm], res2.changed)


def _stripes(n: int, colours: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """An 8 x 8n image of n vertical stripes (one superpixel each), stripe k coloured colours[k]."""
    labels = np.repeat(np.arange(n), 8)[None].repeat(8, axis=0).astype(np.int32)
    img = np.array(colours, np.uint8)[labels]
    return img, labels


def _full_box_det(boxes: list[list[float]], classes: list[int], scores: list[float] | None = None) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32), np.array(scores or [0.9] * n), np.array(classes), np.ones((n, 28, 28), np.float32))


def test_growth_iterates_over_true_adjacency() -> None:
    blue, skin_tone, red = (40, 60, 200), (224, 172, 140), (200, 30, 30)
    img, labels = _stripes(6, [blue, (45, 62, 205), (50, 66, 198), (42, 58, 210), skin_tone, (44, 61, 202)])
    body = _full_box_det([[0, 0, 47, 7]], [1])
    # The whole-image box pastes ones over the image; the clothing box covers stripe 0 only.
    shirt = _full_box_det([[0, 0, 7, 7]], [9])
    res = fuse(img, labels, shirt, body)
    assert res.sp_class.tolist() == [9, 9, 9, 9, 14, 14]  # grows 3 rings, stopped by skin
    assert res.grown.tolist() == [False, True, True, True, False, False]
    assert res.growth_rounds >= 3 and res.changed.tolist() == [True]
    assert np.array_equal(res.instance_mask(0), labels < 4)
    # A colour edge stops growth; one round only with max_iters=1.
    img2, _ = _stripes(6, [blue, blue, red, blue, blue, blue])
    assert fuse(img2, labels, shirt, body).sp_class.tolist() == [9, 9, 14, 14, 14, 14]
    assert fuse(img, labels, shirt, body, FusionParams(max_iters=1)).sp_class.tolist() == [9, 9, 14, 14, 14, 14]
    # Outside the body nothing grows and nothing is 14.
    assert fuse(img, labels, shirt, Detections.empty()).sp_class.tolist() == [9, 0, 0, 0, 0, 0]


def test_area_vote_vs_centroid_vote_and_ties() -> None:
    img, labels = _stripes(2, [(10, 10, 10), (200, 200, 200)])
    # Box over columns 0-11 covers stripe 0 fully and half of stripe 1 (its centroid column is 12).
    det = _full_box_det([[0, 0, 11, 7]], [5])
    area = FusionParams(vote="area")
    assert fuse(img, labels, det, Detections.empty(), area).sp_class.tolist() == [5, 5]  # 50% >= 0.5
    assert fuse(img, labels, det, Detections.empty(), FusionParams(vote="area", cover_thresh=0.6)).sp_class.tolist() == [5, 0]
    # Stripe 1's centroid (column 12) is outside the mask but its left neighbour (column
    # 11, pasted 0.75) is inside: the original's 4-neighbour rule accepts it.
    assert fuse(img, labels, det, Detections.empty(), FusionParams(vote="centroid")).sp_class.tolist() == [5, 5]
    narrow = _full_box_det([[0, 0, 10, 7]], [5])  # pastes to columns 0-10: column 11 is out
    assert fuse(img, labels, narrow, Detections.empty(), FusionParams(vote="centroid")).sp_class.tolist() == [5, 0]
    # Equal coverage: the higher score wins whatever the order; equal scores: the lower class.
    two = _full_box_det([[0, 0, 15, 7], [0, 0, 15, 7]], [3, 8], [0.6, 0.8])
    for order in ([0, 1], [1, 0]):
        assert fuse(img, labels, two.select(np.array(order)), Detections.empty(), area).sp_class.tolist() == [8, 8]
    tie = _full_box_det([[0, 0, 15, 7], [0, 0, 15, 7]], [8, 3], [0.7, 0.7])
    assert fuse(img, labels, tie, Detections.empty(), FusionParams(vote="centroid")).sp_class.tolist() == [3, 3]


def test_changed_flag_and_refined_iou() -> None:
    img, labels = _stripes(4, [(10, 10, 10), (11, 11, 11), (200, 0, 0), (0, 200, 0)])
    # torchvision's geometry: pixel centres are at integers, so this box is exactly columns 0-15.
    exact = _full_box_det([[-0.5, -0.5, 15.5, 7.5]], [2])
    res = fuse(img, labels, exact, Detections.empty())
    assert res.sp_class.tolist() == [2, 2, 0, 0]
    assert res.changed.tolist() == [False] and res.refined_iou[0] == 1.0
    ragged = _full_box_det([[0, 0, 19, 7]], [2])  # pastes to columns 1-18
    res = fuse(img, labels, ragged, Detections.empty())
    assert res.sp_class.tolist() == [2, 2, 0, 0] and res.changed.tolist() == [True]
    assert res.refined_iou[0] == pytest.approx(120 / 152)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1)])
def test_tiny_images_and_empty_inputs(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    labels = np.zeros(shape, np.int32)
    for clothing in (Detections.empty(), random_detections(rng, 5, *shape)):
        for bodies in (Detections.empty(), random_detections(rng, 2, *shape, classes=1)):
            for vote in VOTES:
                p = FusionParams(vote=vote)  # type: ignore[arg-type]
                got = fuse(img, labels, clothing, bodies, p)
                assert_same(got, fuse_reference(img, labels, clothing, bodies, p))
                assert got.coverage.shape == (1, len(clothing)) and got.changed.shape == (len(clothing),)
            assert pixel_level(shape, clothing, bodies).shape == shape


def test_boxes_wholly_outside_change_nothing() -> None:
    rng = np.random.default_rng(5)
    img, labels = random_image(rng, 20, 30), voronoi_labels(rng, 20, 30, 10)
    far = _full_box_det([[-50, -50, -10, -10], [40, 5, 60, 9], [3, 30, 9, 45], [1e6, 1e6, 1e6 + 5, 1e6 + 5]], [1, 2, 3, 4])
    res = fuse(img, labels, far, far)
    assert (res.label_map == 0).all() and (res.coverage == 0).all() and not res.changed.any()
    assert (pixel_level(img.shape, far, far) == 0).all()


@pytest.mark.parametrize(
    "field, value",
    [("scores", np.nan), ("scores", -0.1), ("scores", 1.5), ("boxes", np.nan), ("boxes", np.inf), ("boxes", 1e12), ("masks", np.nan)],
)
def test_invalid_detections_are_rejected(field: str, value: float) -> None:
    img, labels = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32)
    det = _full_box_det([[0, 0, 3, 3], [1, 1, 2, 2]], [1, 2])
    getattr(det, field).reshape(-1)[1] = value
    for clothing, bodies in ((det, Detections.empty()), (Detections.empty(), det)):
        with pytest.raises(FusionInputError, match=field[:-1]):
            fuse(img, labels, clothing, bodies)
        with pytest.raises(ValueError):  # also a ValueError for library callers
            pixel_level((4, 4), clothing, bodies)


def test_invalid_inputs_are_rejected() -> None:
    img, labels = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32)
    det = _full_box_det([[3, 3, 1, 1]], [1])
    with pytest.raises(FusionInputError, match="x2 >= x1"):
        fuse(img, labels, det, Detections.empty())
    with pytest.raises(FusionInputError, match="classes"):
        fuse(img, labels, _full_box_det([[0, 0, 2, 2]], [14]), Detections.empty())
    with pytest.raises(FusionInputError, match="image"):
        fuse(img.astype(np.float32), labels, Detections.empty(), Detections.empty())
    with pytest.raises(FusionInputError, match="labels"):
        fuse(img, labels[:3], Detections.empty(), Detections.empty())
    with pytest.raises(FusionInputError, match=">= 0"):
        fuse(img, labels - 1, Detections.empty(), Detections.empty())
    with pytest.raises(FusionInputError, match="renumber"):
        fuse(img, labels + 100, Detections.empty(), Detections.empty())
    for bad in ({"vote": "majority"}, {"cover_thresh": 0.0}, {"mask_thresh": 1.5}, {"max_iters": -1},
                {"skin_rule": "none"}, {"soft_thresh": 0.0}, {"soft_thresh": 1.5}, {"soft_thresh": float("nan")}):
        with pytest.raises(FusionInputError):
            FusionParams(**bad)
    with pytest.raises(FusionInputError, match="'area', 'centroid' or 'soft'"):
        FusionParams(vote="Soft")  # type: ignore[arg-type]
    with pytest.raises(FusionInputError, match="'growth' or 'all'"):
        FusionParams(skin_rule="")  # type: ignore[arg-type]
    for vote in VOTES:
        for rule in SKIN_RULES:
            assert FusionParams(vote=vote, skin_rule=rule, soft_thresh=1.0).vote == vote  # type: ignore[arg-type]


def test_kernels_load_from_the_cache_in_a_new_process() -> None:
    """A second process loads every fusion kernel's machine code from Numba's disk cache
    (a kernel Numba cannot cache recompiles in every process: seconds on each first photo).
    The cache may already exist, so only the second run is judged; a kernel that did not run
    has no hits and fails the test too."""
    names = ("superpixel_stats", "paste_coverage", "paint_masks", "grow", "lookup", "dense_to_csr", "probs_at", "boundary_pairs",
             "paste_coverage_soft")
    code = (
        "import json, sys, numpy as np\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_fusion import random_detections, random_image, voronoi_labels\n"
        "from clothparse.parse import fusion_kernels as K, fusion_kernels_graph as KG\n"
        "from clothparse.parse.fusion import FusionParams, fuse, pixel_level\n"
        "rng = np.random.default_rng(0)\n"
        "img, lab = random_image(rng, 40, 48), voronoi_labels(rng, 40, 48, 30)\n"
        "from clothparse.engines.base import Detections\n"
        "cloth = random_detections(rng, 6, 40, 48)\n"
        "body = Detections(np.array([[0, 0, 48, 40]], np.float32), [0.9], [1], np.ones((1, 28, 28), np.float32), ('person',))\n"
        "for vote in ('area', 'centroid', 'soft'):\n"
        "    fuse(img, lab, cloth, body, FusionParams(vote=vote))\n"
        "pixel_level(img.shape, cloth, body)\n"
        "KG.boundary_pairs(lab)\n"
        f"names = {names!r}\n"
        "mod = lambda n: KG if hasattr(KG, n) else K\n"
        "print(json.dumps({n: [sum(getattr(mod(n), n).stats.cache_hits.values()), "
        "sum(getattr(mod(n), n).stats.cache_misses.values())] for n in names}))\n"
    )
    here = str(Path(__file__).resolve().parent)
    runs = [subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, check=True) for _ in range(2)]
    second = json.loads(runs[1].stdout)
    assert set(second) == set(names)
    for name, (hits, misses) in second.items():
        assert hits >= 1 and misses == 0, (name, [r.stdout for r in runs])
