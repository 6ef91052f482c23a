"""Parsing metrics (confusion matrix, IoU, mIoU, pixel accuracy) and `cpt eval --parsing`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.errors import DataError
from clothparse.evaluate.parsing_metrics import (
    ParsingMetrics,
    boundary_counts,
    boundary_prf,
    confusion_matrix,
    evaluate_parsing_dir,
    iou_from_confusion,
    read_label_map,
)
from clothparse.taxonomy import NUM_PARSING_LABELS, palette_flat


def reference_iou(
    gts: list[np.ndarray], preds: list[np.ndarray], n: int = NUM_PARSING_LABELS
) -> np.ndarray:
    """Plain numpy: per class, pooled |G ∩ P| / |G ∪ P| over all images; NaN for an empty union."""
    out = np.full(n, np.nan)
    for k in range(n):
        inter = sum(int(np.sum((g == k) & (p == k))) for g, p in zip(gts, preds, strict=True))
        union = sum(int(np.sum((g == k) | (p == k))) for g, p in zip(gts, preds, strict=True))
        if union:
            out[k] = inter / union
    return out


def test_hand_computed() -> None:
    gt = np.array([[0, 0, 1], [1, 1, 2]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 2]], np.uint8)
    cm = confusion_matrix(gt, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    np.testing.assert_allclose(iou_from_confusion(cm), [0.5, 0.5, 0.5])
    m = ParsingMetrics()
    m.add(gt, pred)
    assert m.pixel_acc == pytest.approx(4 / 6)
    assert m.miou == pytest.approx(0.5)  # labels 3-14 absent from both: left out
    # A class only predicted counts with IoU 0.
    m.add(np.zeros((1, 2), np.uint8), np.array([[0, 5]], np.uint8))
    assert m.per_class_iou[5] == 0.0
    # label 0 now: 2 hits over a union of 4; label 5: IoU 0.
    assert m.miou == pytest.approx((2 / 4 + 0.5 + 0.5 + 0.0) / 4)


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="outside 0-14"):
        confusion_matrix(np.zeros((2, 2), np.int64), np.full((2, 2), 15))
    assert np.isnan(ParsingMetrics().miou) and np.isnan(ParsingMetrics().pixel_acc)


def test_matches_numpy_reference_on_random_maps() -> None:
    rng = np.random.default_rng(7)
    gts, preds = [], []
    m = ParsingMetrics()
    for _ in range(6):
        shape = tuple(rng.integers(5, 60, size=2))
        gt = rng.integers(0, NUM_PARSING_LABELS, shape).astype(np.uint8)
        # Predictions agree with the ground truth on about half the pixels.
        pred = np.where(
            rng.random(shape) < 0.5, gt, rng.integers(0, NUM_PARSING_LABELS, shape)
        ).astype(np.uint8)
        gts.append(gt)
        preds.append(pred)
        m.add(gt, pred)
    ref = reference_iou(gts, preds)
    np.testing.assert_allclose(m.per_class_iou, ref, equal_nan=True)
    assert m.miou == pytest.approx(np.nanmean(ref))
    total = sum(g.size for g in gts)
    assert m.pixel_acc == pytest.approx(
        sum(int(np.sum(g == p)) for g, p in zip(gts, preds, strict=True)) / total
    )


label_maps = st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(
        lambda w: st.tuples(
            arrays(np.uint8, (h, w), elements=st.integers(0, NUM_PARSING_LABELS - 1)),
            arrays(np.uint8, (h, w), elements=st.integers(0, NUM_PARSING_LABELS - 1)),
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(label_maps)
def test_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    gt, pred = pair
    cm = confusion_matrix(gt, pred)
    assert cm.sum() == gt.size
    np.testing.assert_array_equal(
        cm.sum(axis=1), np.bincount(gt.ravel(), minlength=NUM_PARSING_LABELS)
    )
    m = ParsingMetrics()
    m.add(gt, pred)
    assert 0.0 <= m.miou <= 1.0 and 0.0 <= m.pixel_acc <= 1.0
    np.testing.assert_allclose(m.per_class_iou, reference_iou([gt], [pred]), equal_nan=True)
    perfect = ParsingMetrics()
    perfect.add(gt, gt)
    assert perfect.miou == 1.0 and perfect.pixel_acc == 1.0


# ---------------------------------------------------------------- boundary F-score


def reference_boundary_counts(
    gt: np.ndarray, pred: np.ndarray, tol: float, n: int = NUM_PARSING_LABELS
) -> np.ndarray:
    """Brute force: boundary pixels by looping over 4-neighbours, matches by all-pairs distances."""
    h, w = gt.shape

    def boundary(lab: np.ndarray, k: int) -> list[tuple[int, int]]:
        pts = []
        for r in range(h):
            for c in range(w):
                if lab[r, c] != k:
                    continue
                nbrs = [(r + dr, c + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))]
                if any(0 <= rr < h and 0 <= cc < w and lab[rr, cc] != k for rr, cc in nbrs):
                    pts.append((r, c))
        return pts

    def hits(src: list[tuple[int, int]], dst: list[tuple[int, int]]) -> int:
        if not dst:
            return 0
        d = np.asarray(dst, dtype=np.float64)
        return sum(
            bool(np.min(np.sqrt((d[:, 0] - r) ** 2 + (d[:, 1] - c) ** 2)) <= tol) for r, c in src
        )

    out = np.zeros((n, 4), np.int64)
    for k in range(n):
        bg, bp = boundary(gt, k), boundary(pred, k)
        out[k] = (hits(bp, bg), len(bp), hits(bg, bp), len(bg))
    return out


@pytest.mark.parametrize("tol", [0.0, 1.0, 1.5, 2.0, 3.0])
def test_boundary_counts_match_brute_force(tol: float) -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        shape = tuple(int(x) for x in rng.integers(4, 18, size=2))
        # Blocky maps (regions of a few pixels) and a few classes, so boundaries have structure.
        gt = np.kron(rng.integers(0, 5, (shape[0] // 2 + 1, shape[1] // 2 + 1)), np.ones((2, 2), np.int64))
        gt = gt[: shape[0], : shape[1]].astype(np.uint8)
        pred = np.where(rng.random(shape) < 0.7, gt, rng.integers(0, 6, shape)).astype(np.uint8)
        pred = np.roll(pred, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
        np.testing.assert_array_equal(boundary_counts(gt, pred, tol=tol), reference_boundary_counts(gt, pred, tol))


def test_boundary_f_hand_computed() -> None:
    gt = np.zeros((10, 12), np.uint8)
    gt[2:8, 3:7] = 4  # a 6x4 box: its ring is 16 pixels, the background ring around it 20
    m = ParsingMetrics(boundary_tol=2.0)
    m.add(gt, gt)
    assert m.boundary_f == 1.0 and m.boundary_tol == 2.0
    f = m.per_class_boundary[2]
    assert f[0] == 1.0 and f[4] == 1.0 and np.isnan(f[1])  # classes without a boundary: left out
    np.testing.assert_array_equal(boundary_counts(gt, gt)[4], [16, 16, 16, 16])
    np.testing.assert_array_equal(boundary_counts(gt, gt)[0], [20, 20, 20, 20])
    # The box moved 3 px beyond its own right edge: at 2 px, no boundary pixel of class 4 matches.
    far = np.zeros_like(gt)
    far[2:8, 9:12] = 4  # its left edge (column 9) is 3 px from the box's right edge (column 6)
    counts = boundary_counts(gt, far, tol=2.0)
    assert counts[4, 0] == 0 and counts[4, 2] == 0
    m = ParsingMetrics()
    m.add(gt, far)
    assert m.per_class_boundary[2][4] == 0.0
    # A class only predicted has F 0 (and counts); a whole-image map has no boundary at all.
    only = gt.copy()
    only[0, 0] = 9
    m3 = ParsingMetrics()
    m3.add(gt, only)
    p, r, f = m3.per_class_boundary
    assert (p[9], r[9], f[9]) == (0.0, 1.0, 0.0)
    m4 = ParsingMetrics()
    m4.add(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8))
    assert np.isnan(m4.boundary_f) and m4.to_dict()["boundary_f"] is None


@pytest.mark.parametrize(("shift", "tol"), [(0, 0.0), (1, 0.0), (1, 1.0), (2, 2.0), (3, 2.0), (3, 3.0), (5, 2.0)])
def test_boundary_f_of_a_shifted_edge(shift: int, tol: float) -> None:
    """Two vertical stripes (labels 1 | 2); the prediction moves the edge right by ``shift``
    columns: every boundary pixel is ``shift`` px from its counterpart, so F is 1 within the
    tolerance and 0 beyond it, for both classes."""
    gt = np.ones((6, 16), np.uint8)
    gt[:, 6:] = 2
    pred = np.ones_like(gt)
    pred[:, 6 + shift :] = 2
    m = ParsingMetrics(boundary_tol=tol)
    m.add(gt, pred)
    expected = 1.0 if shift <= tol else 0.0
    assert m.boundary_f == expected
    assert m.per_class_boundary[2][1] == expected and m.per_class_boundary[2][2] == expected


def test_boundary_prf_pools_counts_over_images() -> None:
    counts = np.zeros((NUM_PARSING_LABELS, 4), np.int64)
    counts[1] = (3, 4, 2, 4)  # P 0.75, R 0.5
    counts[2] = (0, 0, 0, 5)  # ground truth only: P 1 (nothing predicted), R 0, F 0
    p, r, f = boundary_prf(counts)
    assert (p[1], r[1]) == (0.75, 0.5) and f[1] == pytest.approx(0.6)
    assert (p[2], r[2], f[2]) == (1.0, 0.0, 0.0) and np.isnan(f[0])
    m = ParsingMetrics()
    gt = np.kron(np.arange(4, dtype=np.uint8).reshape(2, 2), np.ones((5, 5), np.uint8))
    pred = np.roll(gt, 3, axis=0)
    m.add(gt, pred)
    m.add(gt, gt)
    expected = boundary_counts(gt, pred) + boundary_counts(gt, gt)
    np.testing.assert_array_equal(m.bcounts, expected)
    d = m.to_dict()
    assert d["boundary_tol_px"] == 2.0 and d["boundary_f"] == pytest.approx(np.nanmean(boundary_prf(expected)[2]))
    assert d["per_class"][1]["boundary_f"] == pytest.approx(boundary_prf(expected)[2][1])
    with pytest.raises(ValueError, match="tolerance"):
        boundary_counts(gt, gt, tol=-1.0)


# ---------------------------------------------------------------- files and CLI


def save_labels(path: Path, labels: np.ndarray) -> None:
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(palette_flat())
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_parsing_dataset(root: Path, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    images = [{"id": i, "width": 20, "height": 16, "file_name": f"img{i}.jpg"} for i in range(n)]
    (root).mkdir(parents=True)
    (root / "test.json").write_text(
        json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "bag"}]})
    )
    gts = []
    for i in range(n):
        gt = rng.integers(0, NUM_PARSING_LABELS, (16, 20)).astype(np.uint8)
        save_labels(root / "labels" / f"img{i}.png", gt)
        gts.append(gt)
    return gts


def test_read_label_map(tmp_path: Path) -> None:
    labels = np.arange(15, dtype=np.uint8).reshape(3, 5)
    save_labels(tmp_path / "a.png", labels)
    np.testing.assert_array_equal(read_label_map(tmp_path / "a.png"), labels)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: label map must be a palette"):
        read_label_map(tmp_path / "rgb.png")
    Image.fromarray(np.full((3, 3), 20, np.uint8), mode="L").save(tmp_path / "big.png")
    with pytest.raises(DataError, match="value 20"):
        read_label_map(tmp_path / "big.png")


def test_cli_ablation_table(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    gts = make_parsing_dataset(data)
    perfect, noisy = tmp_path / "with_sp", tmp_path / "no_sp"
    rng = np.random.default_rng(5)
    noisy_maps = []
    for i, gt in enumerate(gts):
        save_labels(perfect / f"img{i}_labels.png", gt)
        if i < 2:  # img2 has no prediction in this folder
            pred = np.where(rng.random(gt.shape) < 0.6, gt, 0).astype(np.uint8)
            save_labels(noisy / f"img{i}_labels.png", pred)
            noisy_maps.append(pred)
    out = tmp_path / "parsing.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--parsing",
            "--pred",
            str(perfect),
            "--pred",
            str(noisy),
            "--data",
            str(data),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "with_sp" in r.output and "no_sp" in r.output and "mIoU" in r.output
    assert "bF" in r.output and "tolerance 2 px" in " ".join(r.output.split())
    assert "1 ground-truth image(s) without a prediction" in r.output
    rep = json.loads(out.read_text())["columns"]
    assert rep["with_sp"]["miou"] == 1.0 and rep["with_sp"]["n_missing"] == 0
    assert rep["with_sp"]["boundary_f"] == 1.0 and rep["with_sp"]["boundary_tol_px"] == 2.0
    ref_counts = np.sum([boundary_counts(g, p) for g, p in zip(gts[:2], noisy_maps, strict=True)], axis=0)
    assert rep["no_sp"]["boundary_f"] == pytest.approx(np.nanmean(boundary_prf(ref_counts)[2]))
    assert json.loads(out.read_text())["boundary_tol_px"] == 2.0
    assert rep["no_sp"]["missing"] == ["img2"] and rep["no_sp"]["n_images"] == 2
    ref = reference_iou(gts[:2], noisy_maps)
    assert rep["no_sp"]["miou"] == pytest.approx(np.nanmean(ref))
    assert sum(map(sum, rep["no_sp"]["confusion"])) == 2 * 16 * 20


def test_cli_size_mismatch_and_missing_folders(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    make_parsing_dataset(data, n=1)
    save_labels(tmp_path / "pred" / "img0_labels.png", np.zeros((8, 8), np.uint8))
    runner = CliRunner()
    r = runner.invoke(
        app, ["eval", "--parsing", "--pred", str(tmp_path / "pred"), "--data", str(data)]
    )
    assert r.exit_code == 1
    assert "img0_labels.png: size 8x8 differs from the ground truth" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(
        app, ["eval", "--parsing", "--pred", str(tmp_path / "nope"), "--data", str(data)]
    )
    assert r.exit_code == 1 and "nope: prediction folder not found" in r.stderr
    r = runner.invoke(app, ["eval", "--parsing", "--data", str(data)])
    assert r.exit_code == 1 and "needs at least one --pred" in r.stderr


def test_evaluate_parsing_dir_missing_ground_truth(tmp_path: Path) -> None:
    save_labels(tmp_path / "pred" / "x_labels.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"x\.png: label map not found"):
        evaluate_parsing_dir(tmp_path / "pred", tmp_path / "labels", ["x"])


def test_cli_boundary_tolerance_option(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    (gt,) = make_parsing_dataset(data, n=1)
    shifted = np.roll(gt, 1, axis=1)  # every edge moves one pixel: missed at 0 px, found at 1 px
    save_labels(tmp_path / "pred" / "img0_labels.png", shifted)
    for tol, expected in (("0", boundary_counts(gt, shifted, tol=0.0)), ("1", boundary_counts(gt, shifted, tol=1.0))):
        out = tmp_path / f"tol{tol}.json"
        args = ["eval", "--parsing", "--pred", str(tmp_path / "pred"), "--data", str(data),
                "--boundary-tol", tol, "--out", str(out)]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        rep = json.loads(out.read_text())
        assert rep["boundary_tol_px"] == float(tol) and rep["columns"]["pred"]["boundary_tol_px"] == float(tol)
        assert rep["columns"]["pred"]["boundary_f"] == pytest.approx(np.nanmean(boundary_prf(expected)[2]))
        assert f"tolerance {tol} px" in " ".join(r.output.split())  # the table title, however wrapped
