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
    assert "1 ground-truth image(s) without a prediction" in r.output
    rep = json.loads(out.read_text())["columns"]
    assert rep["with_sp"]["miou"] == 1.0 and rep["with_sp"]["n_missing"] == 0
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
