"""`cpt export` end to end on a small checkpoint: fp32 + int8 Q/DQ ONNX with sidecars,
checks and the engine-level parity table; the canvas defaults to the checkpoint's
training size; bad options give one-line errors."""

from __future__ import annotations

import json

import numpy as np
import torch
from clothparse.export import parity
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.config import ModelConfig
from clothparse.engines.onnx_engine import OnnxEngine
from clothparse.model.builder import build_model
from clothparse.model.checkpoint import save_checkpoint


def test_cpt_export_onnx_int8(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.small(min_size=96, max_size=128, detections_per_img=20)
    save_checkpoint(tmp_path / "run" / "best", build_model(cfg).eval(), cfg, {"epoch": 0})
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, img in enumerate(parity.synthetic_photos(96, n=1)):
        Image.fromarray(img).save(calib / f"{i}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "run"), "--precision", "fp32,int8", "--calib", str(calib), "--out", str(out)],
    )
    assert "graph checks passed" in result.output, result.output
    assert "onnxruntime fp32 vs torch (11 photos)" in result.output and "compared" in result.output
    assert "onnxruntime int8 vs torch" in result.output
    for name in ("model.onnx", "model.int8.onnx"):
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["class_names"] == cfg.class_names and meta["batch"] == 1
        # No size flags: the canvas is the checkpoint's max_size, square.
        assert (meta["height"], meta["width"], meta["min_size"], meta["max_size"]) == (128, 128, 96, 128)
        assert len(meta["source_sha256"]) == 64 and "onnxruntime" in meta["tools"]
    assert json.loads((out / "model.int8.onnx.json").read_text())["precision"] == "int8"
    engine = OnnxEngine(out / "model.int8.onnx", device="cpu")
    dets = engine.infer([np.zeros((50, 70, 3), np.uint8)])
    assert len(dets) == 1 and dets[0].class_names == tuple(cfg.class_names)
    # fp32 parity against the torch engine is a gate: a random model still matches exactly.
    fp32_line = next(line for line in result.output.splitlines() if line.startswith("onnxruntime fp32"))
    assert fp32_line.rstrip().endswith("yes"), result.output


def test_cpt_export_bad_options(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(tmp_path / "nope.safetensors"), "--format", "tflite"])
    assert result.exit_code == 1 and "--format" in result.output
    result = runner.invoke(app, ["export", str(tmp_path / "nope.safetensors"), "--precision", "bf8"])
    assert result.exit_code == 1 and "--precision" in result.output
    result = runner.invoke(app, ["export", "--from", str(tmp_path / "m.onnx"), "--format", "onnx"])
    assert result.exit_code == 1 and "--from" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cpt_export_body_keeps_person_and_checks_parity_on_it(tmp_path) -> None:
    torch.manual_seed(1)
    cfg = ModelConfig.small(class_names=["bag", "person"], min_size=96, max_size=128, detections_per_img=20, score_thresh=0.0)
    save_checkpoint(tmp_path / "body" / "best", build_model(cfg).eval(), cfg, {"epoch": 0})
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", str(tmp_path / "body"), "--body", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "model.onnx.json").read_text())["keep_labels"] == [2]
    dets = OnnxEngine(out / "model.onnx", device="cpu").infer(parity.synthetic_photos(96, n=1))
    assert sum(map(len, dets)) > 0 and all(set(d.classes.tolist()) <= {2} for d in dets)
