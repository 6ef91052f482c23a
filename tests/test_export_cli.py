"""`cpt export` end to end on a tiny checkpoint: ONNX + int8 QDQ, sidecars, checks and the
parity table; bad options give one-line errors."""

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
    cfg = ModelConfig.small()
    weights = save_checkpoint(tmp_path / "run" / "best", build_model(cfg).eval(), cfg, {"epoch": 0})
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, img in enumerate(parity.sample_images(96, 128, n=2, with_photo=False)):
        Image.fromarray(img).save(calib / f"{i}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["export", str(weights), "--height", "96", "--width", "128", "--batch", "1", "--top-k", "20",
         "--precision", "int8", "--calib", str(calib), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "graph checks passed" in result.output
    assert "onnxruntime vs wrapper (batch 1)" in result.output and "wrapper vs torchvision" in result.output
    for name in ("model.onnx", "model.int8.onnx"):
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["class_names"] == cfg.class_names and meta["height"] == 96 and meta["batch"] == 1
        assert len(meta["source_sha256"]) == 64 and "onnxruntime" in meta["tools"]
    assert json.loads((out / "model.int8.onnx.json").read_text())["precision"] == "int8"
    engine = OnnxEngine(out / "model.int8.onnx", device="cpu")
    dets = engine.infer([np.zeros((50, 70, 3), np.uint8)])
    assert len(dets) == 1 and dets[0].class_names == tuple(cfg.class_names)


def test_cpt_export_bad_options(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(tmp_path / "nope.safetensors"), "--format", "tflite"])
    assert result.exit_code == 1 and "--format" in result.output
    result = runner.invoke(app, ["export", str(tmp_path / "nope.safetensors"), "--height", "100"])
    assert result.exit_code == 1 and "multiples of 32" in result.output
    assert len(result.output.strip().splitlines()) == 1
