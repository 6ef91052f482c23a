"""The promise: an exported engine answers like the model it came from.

On the shipped reference model (a trained one: tests/assets/reference-small, see
``clothparse.bench.reference_model``), exported with `cpt export`'s defaults, the torch
engine and ONNX Runtime give the same items -- class, box IoU > 0.95, score within 0.01 --
on photos of many sizes and aspect ratios, none of them the export's canvas size, at the
score floor and at a user's threshold, through the library and through `cpt parse`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clothparse.export import parity
from clothparse.export.exporter import ExportSpec, export_onnx_model
from helpers_parse import save_tiny
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.engines.base import Detections
from clothparse.engines.onnx_engine import OnnxEngine
from clothparse.engines.torch_engine import TorchEngine
from clothparse.model.checkpoint import load_checkpoint

REFERENCE = Path(__file__).parent / "assets" / "reference-small"
#: (width, height) of the photos: the issue's 256x256, 512x256 and 256x400, and more.
SIZES = [(256, 256), (512, 256), (256, 400), (300, 200), (180, 320), (640, 480), (400, 600)]


@pytest.fixture(scope="module")
def reference():
    assert (REFERENCE / "best.safetensors").is_file(), "the reference model ships with the tests"
    return load_checkpoint(REFERENCE)


@pytest.fixture(scope="module")
def exported(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref_export") / "model.onnx"
    return export_onnx_model(reference.model, reference.class_names, out, ExportSpec()).path


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Fresh synthetic scenes (not the training seed) at every size of SIZES, plus real photos."""
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(2026)
    out = []
    for w, h in SIZES:
        scene = render_scene(rng, 256).image
        out.append(np.asarray(Image.fromarray(scene).resize((w, h), Image.Resampling.BILINEAR)))
    return out + parity.skimage_photos()


def _engines(reference, exported: Path, thresh: float) -> tuple[TorchEngine, OnnxEngine]:
    onnx_engine = OnnxEngine(exported, device="cpu", score_thresh=thresh)
    torch_engine = TorchEngine(reference.model, reference.class_names, "cpu", score_thresh=thresh)
    # `cpt export` with no size flags puts the canvas where the torch engine has it.
    assert onnx_engine.sidecar.canvas == torch_engine.canvas
    return torch_engine, onnx_engine


@pytest.mark.parametrize(("thresh", "at_least"), [(0.05, 100), (0.3, 10)])
def test_torch_and_onnx_give_the_same_items(reference, exported, photos, thresh: float, at_least: int) -> None:
    torch_engine, onnx_engine = _engines(reference, exported, thresh)
    canvas = (onnx_engine.sidecar.height, onnx_engine.sidecar.width)
    assert sum(p.shape[:2] != canvas for p in photos) >= 10
    assert len({round(p.shape[1] / p.shape[0], 2) for p in photos}) >= 3  # portrait, landscape, square
    row = parity.engine_parity("onnxruntime vs torch", torch_engine, onnx_engine, photos, thresh)
    table = parity.format_table([row])
    assert row.ok and row.matched >= at_least, table
    assert row.min_iou > 0.95 and row.max_score_diff <= 0.01 and row.match_rate >= 0.98, table


def test_a_mismatched_canvas_is_caught(reference, exported, photos, tmp_path) -> None:
    """The old bug, planted: an export whose canvas differs from the torch engine's (here
    128 px, half the training scale) must fail parity."""
    small = export_onnx_model(reference.model, reference.class_names, tmp_path / "small.onnx", ExportSpec(height=128, width=128)).path
    torch_engine, _ = _engines(reference, exported, 0.3)
    small_engine = OnnxEngine(small, device="cpu", score_thresh=0.3)
    row = parity.engine_parity("128 px canvas vs torch", torch_engine, small_engine, photos, 0.3)
    assert not row.ok, parity.format_table([row])
    # ... and the looser int8 bounds catch it too.
    assert not parity.engine_parity("128 px", torch_engine, small_engine, photos, 0.3, parity.REDUCED["int8"]).ok


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_within_its_measured_bounds(reference, exported, photos, tmp_path, precision: str) -> None:
    from clothparse.export.exporter import derive_precision

    calib = parity.synthetic_photos(256, n=4, seed=7)  # not the photos it is checked on
    variant = derive_precision(exported, precision, tmp_path / f"model.{precision}.onnx", calib).path
    torch_engine, _ = _engines(reference, exported, 0.05)
    test = OnnxEngine(variant, device="cpu", score_thresh=0.05)
    row = parity.engine_parity(f"{precision} vs torch", torch_engine, test, photos, 0.05, parity.REDUCED[precision])
    assert row.ok and row.matched >= 100, parity.format_table([row])


def _items(folder: Path) -> dict[str, Detections]:
    """Per photo, the items of `cpt parse`'s JSON (class, score, box) as Detections."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == "results_coco.json":
            continue
        items = json.loads(path.read_text())["items"]
        n = len(items)
        out[path.stem] = Detections(
            np.array([it["box"] for it in items], np.float32).reshape(n, 4), [it["score"] for it in items],
            [it["class_id"] for it in items], np.zeros((n, 28, 28), np.float32),
        )
    return out


def test_cpt_parse_same_items_with_torch_and_onnx(reference, exported, photos, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, p in enumerate(photos):
        Image.fromarray(p).save(folder / f"p{i}_{p.shape[1]}x{p.shape[0]}.png")
    body = save_tiny(tmp_path / "body", ["person"], seed=1)
    runner = CliRunner()
    outs = {}
    for kind, model in (("torch", REFERENCE), ("onnx", exported)):
        out = tmp_path / kind
        args = ["parse", str(folder), "--model", str(model), "--engine", kind, "--body-model", str(body),
                "--score-thresh", "0.3", "--device", "cpu", "--out", str(out), "-q"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outs[kind] = _items(out)
    assert outs["torch"].keys() == outs["onnx"].keys() and len(outs["torch"]) == len(photos)
    names = sorted(outs["torch"])
    row = parity.compare("cpt parse onnx vs torch", [outs["torch"][n] for n in names], [outs["onnx"][n] for n in names], 0.3)
    assert row.ok and row.matched >= 10, parity.format_table([row])


def test_engine_agreement_script_on_a_folder(reference, exported, photos, tmp_path, capsys) -> None:
    from clothparse.bench import engine_agreement

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, p in enumerate(photos[:6]):
        Image.fromarray(p).save(folder / f"p{i}.png")
    assert engine_agreement.main([str(REFERENCE), str(exported), str(folder), "--score-thresh", "0.05"]) == 0
    assert "model.onnx vs torch (6 photos)" in capsys.readouterr().out
    # A planted bug: the export comes from slightly different weights (the class logits
    # shifted), as a stale or wrong file would.
    import torch

    other = load_checkpoint(REFERENCE)
    with torch.no_grad():
        other.model.roi_heads.box_predictor.cls_score.bias[1:] += 0.1
    wrong = export_onnx_model(other.model, other.class_names, tmp_path / "wrong.onnx", ExportSpec()).path
    assert engine_agreement.main([str(REFERENCE), str(wrong), str(folder), "--score-thresh", "0.05"]) == 1
