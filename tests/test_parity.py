"""The parity check itself: it passes on identical detections, and fails when nothing was
compared, when scores shift, when boxes move, when masks differ or items go missing;
detections within the score tolerance of the threshold count as borderline."""

from __future__ import annotations

import numpy as np
import pytest
from clothparse.export.parity import FP32, Tolerance, compare, format_table

from clothparse.engines.base import Detections

NAMES = ("a", "b", "c")


def _dets(n: int, seed: int, lo: float = 0.3) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(20, 80, (n, 2))
    return Detections(
        np.concatenate([xy, xy + wh], 1), rng.uniform(lo, 1.0, n), rng.integers(1, 4, n),
        rng.uniform(0, 1, (n, 28, 28)), NAMES,
    )


def _photos(n_photos: int = 3, n: int = 6) -> list[Detections]:
    return [_dets(n, seed) for seed in range(n_photos)]


def _map(dets: list[Detections], **change: object) -> list[Detections]:
    out = []
    for d in dets:
        fields = {"boxes": d.boxes.copy(), "scores": d.scores.copy(), "classes": d.classes.copy(), "masks": d.masks.copy()}
        for key, fn in change.items():
            fields[key] = fn(fields[key])  # type: ignore[operator]
        out.append(Detections(fields["boxes"], fields["scores"], fields["classes"], fields["masks"], NAMES))
    return out


def test_identical_detections_pass() -> None:
    ref = _photos()
    row = compare("same", ref, _map(ref), 0.3)
    assert row.ok, format_table([row])
    assert row.matched == row.n_ref == 18 and row.max_score_diff == 0.0 and row.mask_diff == 0.0


def test_nothing_compared_fails() -> None:
    empty = [Detections.empty(NAMES) for _ in range(3)]
    row = compare("empty", empty, empty, 0.3)
    assert not row.ok and "compared only 0" in format_table([row])
    few = [_dets(2, 0)]
    assert not compare("few", few, _map(few), 0.3).ok  # 2 < min_compared
    assert compare("few", few, _map(few), 0.3, Tolerance(min_compared=2)).ok


def test_shifted_scores_fail() -> None:
    ref = _photos()
    row = compare("shifted", ref, _map(ref, scores=lambda s: np.clip(s - 0.02, 0, 1)), 0.3)
    assert not row.ok and row.max_score_diff == pytest.approx(0.02, abs=1e-6)
    assert "score difference" in format_table([row])


def test_reduced_bounds_still_fail_broken_scores_and_classes() -> None:
    from clothparse.export.parity import REDUCED

    ref = _photos()
    for tol in REDUCED.values():
        assert compare("ok", ref, _map(ref, scores=lambda s: s - 0.01), 0.3, tol).ok
        assert not compare("shifted", ref, _map(ref, scores=lambda s: np.clip(s - 0.2, 0, 1)), 0.3, tol).ok
        assert not compare("classes", ref, _map(ref, classes=lambda c: c % 3 + 1), 0.3, tol).ok


def test_moved_boxes_fail() -> None:
    ref = _photos()
    row = compare("moved", ref, _map(ref, boxes=lambda b: b + 6.0), 0.3)
    assert not row.ok and row.matched < row.n_ref


def test_flipped_masks_fail() -> None:
    ref = _photos()
    row = compare("masks", ref, _map(ref, masks=lambda m: 1.0 - m), 0.3)
    assert not row.ok and row.mask_diff > 0.9


def test_missing_and_reclassified_items_fail() -> None:
    ref = _photos()
    dropped = [d.select(np.arange(len(d)) != int(np.argmax(d.scores))) for d in ref]
    assert not compare("missing", ref, dropped, 0.3).ok
    row = compare("classes", ref, _map(ref, classes=lambda c: c % 3 + 1), 0.3)
    assert not row.ok and row.matched == 0


def test_borderline_items_are_not_misses() -> None:
    ref = _photos()
    # A detection at the threshold present on one side only: tolerated within the score tolerance.
    edge = [Detections(np.r_[d.boxes, [[0, 0, 10, 10]]], np.r_[d.scores, [0.305]], np.r_[d.classes, [1]],
                       np.r_[d.masks, np.zeros((1, 28, 28))], NAMES) for d in ref]
    row = compare("edge", edge, ref, 0.3)
    assert row.ok and row.borderline == 3, format_table([row])
    # ... but not a confident one.
    far = [Detections(np.r_[d.boxes, [[0, 0, 10, 10]]], np.r_[d.scores, [0.9]], np.r_[d.classes, [1]],
                      np.r_[d.masks, np.zeros((1, 28, 28))], NAMES) for d in ref[:1]] + ref[1:]
    assert compare("far", far, ref, 0.3, Tolerance(min_match_rate=0.99)).ok is False


def test_fp32_tolerance_is_the_issue_contract() -> None:
    assert FP32.min_iou >= 0.95 and FP32.max_score_diff <= 0.01
