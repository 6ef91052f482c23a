"""COCO AP, seed merged-mask metrics and `cpt eval` (detection modes) on hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.cli.errors import EXIT_PARTIAL
from clothparse.engines.base import Detections
from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError, DataError
from clothparse.evaluate.coco_eval import coco_evaluate, gt_from_dict, gt_mask, load_gt, sanitize_gt
from clothparse.evaluate.predict import detections_to_coco, label_mapping, predict_coco
from clothparse.evaluate.seed_metrics import (
    merged_mask_metrics,
    merged_prediction_mask,
    seed_evaluate,
)

H = W = 64
CATS = [{"id": 1, "name": "bag"}, {"id": 2, "name": "belt"}]


def rect(x: int, y: int, w: int, h: int, height: int = H, width: int = W) -> np.ndarray:
    m = np.zeros((height, width), dtype=np.uint8)
    m[y : y + h, x : x + w] = 1
    return m


def rle(m: np.ndarray) -> dict[str, Any]:
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}


def gt_ann(ann_id: int, image_id: int, cat: int, box: tuple[int, int, int, int]) -> dict[str, Any]:
    m = rect(*box)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat,
        "bbox": list(map(float, box)),
        "segmentation": rle(m),
        "area": float(m.sum()),
        "iscrowd": 0,
    }


def det(image_id: int, cat: int, box: tuple[int, int, int, int], score: float) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "category_id": cat,
        "bbox": list(map(float, box)),
        "score": score,
        "segmentation": rle(rect(*box)),
    }


def coco_dict(anns: list[dict[str, Any]], n_images: int = 2) -> dict[str, Any]:
    images = [
        {"id": i, "width": W, "height": H, "file_name": f"im{i}.png"}
        for i in range(1, n_images + 1)
    ]
    return {"images": images, "annotations": anns, "categories": CATS}


GT_ANNS = [
    gt_ann(1, 1, 1, (10, 10, 20, 20)),
    gt_ann(2, 1, 2, (35, 30, 20, 10)),
    gt_ann(3, 2, 1, (5, 30, 30, 25)),
]


def exact_results() -> list[dict[str, Any]]:
    return [
        det(a["image_id"], a["category_id"], tuple(int(v) for v in a["bbox"]), 0.9) for a in GT_ANNS
    ]


# ---------------------------------------------------------------- COCO AP


def test_exact_predictions_give_ap_one() -> None:
    gt = gt_from_dict(coco_dict(GT_ANNS))
    m = coco_evaluate(gt, exact_results())
    for iou_type in ("bbox", "segm"):
        assert m.summary[iou_type]["AP"] == pytest.approx(1.0)
        assert m.summary[iou_type]["AP50"] == pytest.approx(1.0)
        assert m.summary[iou_type]["AP75"] == pytest.approx(1.0)
    assert [r["n_gt"] for r in m.per_class] == [2, 1]
    assert all(
        r["segm_AP"] == pytest.approx(1.0) and r["bbox_AP50"] == pytest.approx(1.0)
        for r in m.per_class
    )


def test_shifted_prediction_ap50_one_ap75_zero() -> None:
    # 20x20 square shifted 4 px: IoU = 16*20 / (2*400 - 320) = 2/3 -> matches at IoU .50-.65 only.
    gt = gt_from_dict(coco_dict([gt_ann(1, 1, 1, (10, 10, 20, 20))], n_images=1))
    m = coco_evaluate(gt, [det(1, 1, (14, 10, 20, 20), 0.8)])
    for iou_type in ("bbox", "segm"):
        assert m.summary[iou_type]["AP50"] == pytest.approx(1.0)
        assert m.summary[iou_type]["AP75"] == pytest.approx(0.0)
        assert m.summary[iou_type]["AP"] == pytest.approx(0.4)  # 4 of 10 IoU thresholds
    # belt has no ground truth: its AP is undefined, not zero.
    assert m.per_class[1]["segm_AP"] is None


def test_false_positive_above_a_true_positive() -> None:
    # Ranked: TP (0.9), FP (0.8), TP (0.7) for 2 GT -> precision 1, 1/2, 2/3 at recall .5, .5, 1.
    # COCO's 101-point interpolation: recall 0..0.50 (51 points) -> 1; 0.51..1 (50 points) -> 2/3.
    anns = [gt_ann(1, 1, 1, (2, 2, 20, 20)), gt_ann(2, 1, 1, (40, 40, 20, 20))]
    gt = gt_from_dict(coco_dict(anns, n_images=1))
    dets = [
        det(1, 1, (2, 2, 20, 20), 0.9),
        det(1, 1, (40, 2, 20, 20), 0.8),
        det(1, 1, (40, 40, 20, 20), 0.7),
    ]
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    m = coco_evaluate(gt, dets)
    for iou_type in ("bbox", "segm"):
        assert m.summary[iou_type]["AP"] == pytest.approx(expected, abs=1e-6)
        assert m.summary[iou_type]["AP50"] == pytest.approx(expected, abs=1e-6)
    assert m.per_class[0]["segm_AP"] == pytest.approx(expected, abs=1e-6)


def test_no_detections_give_ap_zero_and_image_subset() -> None:
    gt = gt_from_dict(coco_dict(GT_ANNS))
    m = coco_evaluate(gt, [])
    assert m.summary["segm"]["AP"] == 0.0 and m.n_detections == 0
    # Restricted to image 2, only "bag" has ground truth; results elsewhere are ignored.
    m2 = coco_evaluate(gt, exact_results(), image_ids=[2])
    assert m2.n_images == 1 and m2.n_detections == 1
    assert m2.per_class[0]["n_gt"] == 1 and m2.per_class[1]["segm_AP"] is None


def test_sanitize_drops_orphans_and_degenerate_polygons() -> None:
    d = coco_dict(GT_ANNS)
    d["annotations"] = [
        *GT_ANNS,
        {
            "id": 9,
            "image_id": 77,
            "category_id": 1,
            "segmentation": rle(rect(0, 0, 4, 4)),
            "area": 16,
        },
        {
            "id": 10,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [[1, 1, 2, 2]],
            "bbox": [1, 1, 1, 1],
        },
        {
            "id": 11,
            "image_id": 2,
            "category_id": 2,
            "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]],
            "bbox": [0, 0, 10, 10],
        },
    ]
    clean, dropped = sanitize_gt(d)
    assert dropped == {"annotation without image": 1, "degenerate polygon": 1}
    added = clean["annotations"][-1]
    assert added["iscrowd"] == 0 and added["area"] > 0
    with pytest.raises(DataError, match="categories"):
        sanitize_gt({"images": []})


# ---------------------------------------------------------------- seed metrics


def test_merged_mask_metrics_hand_computed() -> None:
    pred = np.array([[1, 1, 0], [0, 0, 0]], bool)
    truth = np.array([[0, 1, 1], [0, 0, 0]], bool)
    acc, iou = merged_mask_metrics(pred, truth)
    assert acc == pytest.approx(4 / 6) and iou == pytest.approx(1 / 3)
    acc, iou = merged_mask_metrics(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert acc == 1.0 and np.isnan(iou)
    with pytest.raises(ValueError):
        merged_mask_metrics(np.zeros((2, 2)), np.zeros((2, 3)))


def test_merged_mask_metrics_match_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        shape = tuple(rng.integers(1, 40, size=2))
        pred, truth = rng.random(shape) < rng.random(), rng.random(shape) < rng.random()
        acc, iou = merged_mask_metrics(pred, truth)
        assert acc == pytest.approx(np.mean(pred == truth))
        union = np.logical_or(pred, truth).sum()
        if union:
            assert iou == pytest.approx(np.logical_and(pred, truth).sum() / union)


def test_seed_evaluate_thresholds_and_union() -> None:
    gt = gt_from_dict(coco_dict(GT_ANNS))
    truth1 = gt_mask(gt, 1)
    assert truth1.sum() == 400 + 200  # two disjoint rectangles
    # Image 1: the bag at 0.95 (kept at 0.9), the belt at 0.6 (kept only at 0.5).
    # Image 2: a detection at 0.3 is below both thresholds.
    res = [
        det(1, 1, (10, 10, 20, 20), 0.95),
        det(1, 2, (35, 30, 20, 10), 0.6),
        det(2, 1, (5, 30, 30, 25), 0.3),
    ]
    seed = seed_evaluate(gt, res, [1, 2])
    s9, s5 = seed[0.9].summary(), seed[0.5].summary()
    assert seed[0.9].per_image[0]["iou"] == pytest.approx(400 / 600)
    assert seed[0.5].per_image[0]["iou"] == pytest.approx(1.0)
    assert seed[0.5].per_image[1]["iou"] == pytest.approx(0.0)
    assert s5["iou"] == pytest.approx(0.5)
    assert s9["pooled_iou"] == pytest.approx(400 / (600 + 750))
    assert s9["pixel_acc"] == pytest.approx(((H * W - 200) / (H * W) + (H * W - 750) / (H * W)) / 2)
    merged = merged_prediction_mask(res, H, W, 0.5)
    assert merged.sum() == 600


# ---------------------------------------------------------------- prediction


def test_detections_to_coco_pastes_like_torchvision_and_maps_labels() -> None:
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    rng = np.random.default_rng(0)
    boxes = np.array([[10, 10, 30, 30], [-5, 40, 20, 70], [1, 1, 4, 4]], np.float32)
    det = Detections(boxes, [0.9, 0.8, 0.7], [2, 1, 3], rng.uniform(0, 1, (3, 28, 28)), ("bag", "belt", "x"))
    out = detections_to_coco(7, det, (H, W), {1: 5, 2: 6})  # label 3 has no category -> dropped
    assert [r["category_id"] for r in out] == [6, 5]
    assert out[0]["bbox"] == [10.0, 10.0, 20.0, 20.0] and out[0]["image_id"] == 7
    ref = paste_masks_in_image(torch.from_numpy(det.masks[:2, None]), torch.from_numpy(boxes[:2]), (H, W))
    for r, m in zip(out, ref[:, 0].numpy(), strict=True):
        decoded = mask_utils.decode({**r["segmentation"], "counts": r["segmentation"]["counts"].encode()})
        assert np.array_equal(decoded, (m >= 0.5).astype(np.uint8))

    gt = gt_from_dict(coco_dict(GT_ANNS))
    assert label_mapping(["belt", "bag"], gt) == {1: 2, 2: 1}
    with pytest.raises(ConfigError, match="only in model: shoe"):
        label_mapping(["bag", "belt", "shoe"], gt)
    assert label_mapping(["bag", "belt", "shoe"], gt, allow_extra=True) == {1: 1, 2: 2}
    with pytest.raises(ConfigError, match="only in annotations: belt"):
        label_mapping(["bag"], gt, allow_extra=True)


def _tiny_model() -> torch.nn.Module:
    from clothparse.config import ModelConfig
    from clothparse.model.builder import build_model

    cfg = ModelConfig.small(class_names=["bag", "belt"], min_size=64, max_size=64)
    return build_model(cfg, init="none")


def test_predict_coco_is_the_engine_answer_in_order(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds")
    gt = load_gt(data / "test.json")
    engine = TorchEngine(_tiny_model(), ("bag", "belt"), "cpu", score_thresh=0.0, batch_size=1)
    run = predict_coco(engine, gt, data / "images", [2, 1, 2], {1: 1, 2: 2}, batch_size=2)
    assert run.image_ids == [2, 1, 2] and not run.failed
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in run.results:
        by_image.setdefault(r["image_id"], []).append(r)
    for image_id in (1, 2):
        photo = np.asarray(Image.open(data / "images" / f"im{image_id}.png").convert("RGB"))
        expected = detections_to_coco(image_id, engine.infer([photo])[0], (H, W), {1: 1, 2: 2})
        got = by_image[image_id][: len(expected)]
        assert expected and [r["bbox"] for r in got] == [r["bbox"] for r in expected]


# ---------------------------------------------------------------- CLI


def make_dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i}.png"
        )
    (root / "test.json").write_text(json.dumps(coco_dict(GT_ANNS)))
    return root


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def test_cli_results_mode(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds")
    res = [*exact_results(), det(99, 1, (0, 0, 4, 4), 0.5)]  # image 99 is not in the split
    (tmp_path / "pred.json").write_text(json.dumps(res))
    out = tmp_path / "report.json"
    r = run_cli("--results", tmp_path / "pred.json", "--data", data, "--out", out)
    assert r.exit_code == 0, r.output
    assert "per-class AP" in r.output and "seed metrics" in r.output
    rep = json.loads(out.read_text())
    assert rep["segm"]["AP"] == pytest.approx(1.0) and rep["bbox"]["AP75"] == pytest.approx(1.0)
    assert rep["results_outside_split"] == 1
    assert rep["seed"]["0.9"]["iou"] == pytest.approx(1.0) and rep["seed"]["0.5"][
        "pixel_acc"
    ] == pytest.approx(1.0)
    assert len(rep["seed_per_image"]) == 2
    # Default report location: beside the results file.
    r = run_cli("--results", tmp_path / "pred.json", "--data", data, "--max-images", "1", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "eval_test.json").read_text())["n_images"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--results", "PRED", "--data", "NOWHERE"], "dataset folder not found"),
        (
            ["--results", "PRED", "--data", "DATA", "--split", "val"],
            "val.json: split file not found",
        ),
        (
            ["--model", "MISSING.safetensors", "--data", "DATA"],
            "MISSING.safetensors: no such model file or folder",
        ),
        (["--results", "BAD", "--data", "DATA"], "category_id 5"),
        (["--data", "DATA"], "exactly one of --model"),
    ],
)
def test_cli_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    data = make_dataset(tmp_path / "ds")
    (tmp_path / "pred.json").write_text(json.dumps(exact_results()))
    (tmp_path / "bad.json").write_text(json.dumps([det(1, 5, (0, 0, 4, 4), 0.5)]))
    subst = {
        "PRED": tmp_path / "pred.json",
        "BAD": tmp_path / "bad.json",
        "DATA": data,
        "NOWHERE": tmp_path / "nope",
        "MISSING.safetensors": tmp_path / "MISSING.safetensors",
    }
    r = run_cli(*(str(subst.get(a, a)) for a in args))
    assert r.exit_code == 1
    err = r.stderr.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_load_gt_errors(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match=r"x\.json: not valid JSON"):
        load_gt(tmp_path / "x.json")


def _save_tiny_checkpoint(stem: Path, class_names: list[str]) -> Path:
    from clothparse.config import ModelConfig
    from clothparse.model.builder import build_model
    from clothparse.model.checkpoint import save_checkpoint

    cfg = ModelConfig.small(class_names=class_names, min_size=64, max_size=64)
    return save_checkpoint(stem, build_model(cfg, init="none"), cfg, {"epoch": 0})


def test_cli_model_end_to_end(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds")
    ckpt = _save_tiny_checkpoint(tmp_path / "run" / "best", ["bag", "belt"])
    (data / "images" / "im2.png").unlink()  # a missing image is reported, the rest goes on
    # The run folder (loads best.*) works as --model; the report lands in that folder.
    r = run_cli(
        "--model", ckpt.parent, "--data", data, "--device", "cpu", "--score-thresh", "0.0", "-q"
    )
    assert r.exit_code == EXIT_PARTIAL, r.output
    assert "im2.png" in r.stderr
    rep = json.loads((ckpt.parent / "eval_test.json").read_text())
    assert rep["n_images"] == 1 and rep["failed"][0]["image_id"] == 2
    assert rep["segm"]["AP"] is not None and 0.0 <= rep["segm"]["AP"] <= 1.0
    results = json.loads(Path(rep["results_file"]).read_text())
    assert results and all(r["image_id"] == 1 for r in results)
    # Scoring the written results file again gives the same numbers as the model run.
    again = tmp_path / "again.json"
    r = run_cli(
        "--results", rep["results_file"], "--data", data, "--max-images", "1", "--out", again, "-q"
    )
    assert r.exit_code == 0, r.output
    rep2 = json.loads(again.read_text())
    assert (
        rep2["segm"] == rep["segm"] and rep2["bbox"] == rep["bbox"] and rep2["seed"] == rep["seed"]
    )

    # The same model exported to ONNX scores the same through `cpt eval --model model.onnx`.
    from clothparse.export.exporter import ExportSpec, export_onnx_model

    from clothparse.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt.parent)
    export_onnx_model(loaded.model, loaded.class_names, tmp_path / "m.onnx", ExportSpec(score_floor=0.0))
    onnx_rep = tmp_path / "onnx.json"
    r = run_cli("--model", tmp_path / "m.onnx", "--data", data, "--score-thresh", "0.0", "--out", onnx_rep, "-q")
    assert r.exit_code == EXIT_PARTIAL, r.output  # im2.png is still missing
    rep3 = json.loads(onnx_rep.read_text())
    assert rep3["engine"] == "onnx" and rep3["precision"] == "fp32" and rep3["n_detections"] == rep["n_detections"]
    assert rep3["segm"]["AP"] == pytest.approx(rep["segm"]["AP"], abs=1e-6)
    # ... and through OpenVINO at f32, which the report records.
    ov_rep = tmp_path / "ov.json"
    r = run_cli("--model", tmp_path / "m.onnx", "--engine", "openvino", "--precision", "f32", "--data", data,
                "--score-thresh", "0.0", "--out", ov_rep)
    assert r.exit_code == EXIT_PARTIAL, r.output
    assert "note: openvino: f32 (requested)" in r.stderr
    rep4 = json.loads(ov_rep.read_text())
    assert rep4["engine"] == "openvino" and rep4["precision"] == "f32" and rep4["n_detections"] == rep["n_detections"] > 0
    assert rep4["segm"]["AP"] == pytest.approx(rep["segm"]["AP"], abs=1e-4)

    wrong = _save_tiny_checkpoint(tmp_path / "run2" / "best", ["bag", "shoe"])
    r = run_cli("--model", wrong, "--data", data, "--device", "cpu", "-q")
    assert r.exit_code == 1 and "model classes do not match" in r.stderr and "shoe" in r.stderr
