"""ONNX export through the one exporter: checker + TensorRT-readiness checks, the sidecar,
ONNX Runtime against the torch engine at batch 2 on photos of several sizes, run-time
thresholds and the score floor, engine I/O and error handling."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from clothparse.export import graph_checks, parity
from clothparse.export.exporter import ExportSpec, export_onnx_model
from onnx import TensorProto, helper

from clothparse.config import ModelConfig
from clothparse.contract import sidecar
from clothparse.engines.onnx_engine import OnnxEngine
from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError, ModelError
from clothparse.model.builder import build_model

B = 2


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig.small(min_size=128, max_size=160, detections_per_img=30, score_thresh=0.3)
    model = build_model(cfg).eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    ex = export_onnx_model(model, cfg.class_names, path, ExportSpec(batch=B))
    return model, ex, path, tuple(cfg.class_names)


def test_graph_is_tensorrt_ready_and_sidecar_says_the_contract(exported) -> None:
    _, _ex, path, names = exported
    report = graph_checks.check_graph(onnx.load(str(path)))
    assert report.ok, report.summary()
    assert not set(report.op_counts) & {"Loop", "If", "NonZero", "Scan"}
    assert "RoiAlign" in report.op_counts and "TopK" in report.op_counts
    sc = sidecar.load_sidecar(path)
    # The canvas defaults to what the checkpoint was trained for: max_size 160, square.
    assert (sc.height, sc.width, sc.min_size, sc.max_size) == (160, 160, 128, 160)
    assert sc.score_thresh == 0.3 and sc.score_floor == 0.05 and sc.top_k == 30
    assert sc.inputs == ["images", "image_sizes"] and sc.class_names == list(names)


def test_graph_checks_catch_problems() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4])
    g = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"]), helper.make_node("Celu", ["x"], ["c"]),
         helper.make_node("Bernoulli", ["c"], ["z"])],  # "N" in TensorRT 11's table
        "g", [x], [y, z],
    )
    report = graph_checks.check_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert not report.ok
    assert report.forbidden == ["NonZero"] and report.unsupported == ["Bernoulli"]
    assert "x" in report.dynamic and "y" in report.dynamic


def test_onnxruntime_matches_torch_engine_at_batch_2(exported) -> None:
    model, ex, path, names = exported
    sc = ex.sidecar
    engine = OnnxEngine(path, device="cpu", threads=2, score_thresh=sc.score_floor)
    reference = TorchEngine(model, names, "cpu", score_thresh=sc.score_floor, canvas=sc.canvas)
    photos = parity.parity_photos(128)  # portrait, landscape, square; synthetic and real
    assert len({p.shape[:2] for p in photos}) >= 5 and all(p.shape[:2] != (160, 160) for p in photos)
    row = parity.engine_parity("onnxruntime vs torch", reference, engine, photos, sc.score_floor)
    assert row.ok and row.match_rate == 1.0, parity.format_table([row])
    # Idle workers must not spin on the cores the superpixel stage runs on next.
    opts = engine.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_run_time_threshold_and_floor(exported) -> None:
    _, _ex, path, _ = exported
    photos = parity.synthetic_photos(128, n=1)
    low = OnnxEngine(path, device="cpu", score_thresh=0.05).infer(photos)
    default = OnnxEngine(path, device="cpu").infer(photos)  # the sidecar's 0.3
    assert sum(map(len, low)) > sum(map(len, default))
    for lo, hi in zip(low, default, strict=True):
        np.testing.assert_array_equal(lo.filter_score(0.3).boxes, hi.boxes)
    with pytest.raises(ConfigError, match=r"below this export's score floor 0\.05") as err:
        OnnxEngine(path, device="cpu", score_thresh=0.01)
    assert "\n" not in str(err.value) and "--score-floor" in str(err.value)


def test_spin_probe_runs_on_an_export(exported) -> None:
    from clothparse.bench import ort_spin

    _, _, path, _ = exported
    for spin in (True, False):
        rounds = ort_spin.measure(path, spin, rounds=1, threads=1)
        assert len(rounds) == 1 and all(ms > 0 for ms in rounds[0])


def test_engine_io_specs_and_padded_batch(exported) -> None:
    _, _ex, path, names = exported
    engine = OnnxEngine(path, device="cpu", score_thresh=0.05)
    assert engine.class_names == names
    assert [(s.name, s.shape, s.dtype) for s in engine.input_specs] == [
        ("images", (B, 3, 160, 160), "uint8"), ("image_sizes", (B, 2), "int32")]
    assert [s.name for s in engine.output_specs] == ["boxes", "scores", "classes", "masks", "num_detections"]
    photos = parity.synthetic_photos(128, n=1)
    dets = engine.infer(photos)  # 3 photos: one full batch + one padded batch
    alone = [engine.infer([p])[0] for p in photos]
    assert len(dets) == 3 and all(len(d) > 0 for d in dets)
    for d, a in zip(dets, alone, strict=True):
        np.testing.assert_allclose(d.boxes, a.boxes, atol=1e-3)
        assert d.masks.shape[1:] == (28, 28)


def test_corrupt_model_and_mismatching_sidecar(exported, tmp_path) -> None:
    _, _, path, _ = exported
    bad = tmp_path / "model.onnx"
    shutil.copy(path, bad)
    shutil.copy(sidecar.sidecar_path(path), sidecar.sidecar_path(bad))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sidecar") as err:
        OnnxEngine(bad, device="cpu")
    assert "\n" not in str(err.value)
    bad.write_bytes(b"not an onnx file")
    sc = sidecar.load_sidecar(path)
    sidecar.write_sidecar(bad, replace(sc, model_sha256=sidecar.sha256_file(bad)))
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        OnnxEngine(bad, device="cpu")
    shutil.copy(path, bad)
    sidecar.write_sidecar(bad, replace(sc, height=2 * sc.height, model_sha256=sidecar.sha256_file(bad)))
    with pytest.raises(ModelError, match="do not match the sidecar"):
        OnnxEngine(bad, device="cpu")
    sidecar.sidecar_path(bad).unlink()
    with pytest.raises(ModelError, match="missing sidecar"):
        OnnxEngine(bad, device="cpu")
    sidecar.write_sidecar(bad, replace(sc, version=1))
    with pytest.raises(ModelError, match="sidecar version 1"):
        OnnxEngine(bad, device="cpu")


@pytest.mark.parametrize(("field", "value"), [("height", "160"), ("score_floor", "low"), ("inputs", "images")])
def test_sidecar_with_wrong_types_is_a_one_line_error(exported, tmp_path, field: str, value: object) -> None:
    import json

    _, _, path, _ = exported
    bad = tmp_path / "model.onnx"
    shutil.copy(path, bad)
    data = json.loads(sidecar.sidecar_path(path).read_text())
    data[field] = value
    sidecar.sidecar_path(bad).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=f"sidecar {field} must be") as err:
        sidecar.load_sidecar(bad)
    assert "\n" not in str(err.value)


def test_unreadable_calibration_photo_is_skipped(exported, tmp_path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from clothparse.cli.app import app
    from clothparse.model.checkpoint import save_checkpoint

    model, _, _, _ = exported
    save_checkpoint(tmp_path / "run" / "best", model, ModelConfig.small(min_size=128, max_size=160, detections_per_img=30, score_thresh=0.3), {})
    calib = tmp_path / "calib"
    calib.mkdir()
    Image.fromarray(parity.synthetic_photos(96, n=1)[0]).save(calib / "good.png")
    (calib / "bad.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--precision", "int8", "--calib", str(calib), "--out", str(tmp_path / "out")])
    assert "warning:" in result.output and "bad.png" in result.output
    assert (tmp_path / "out" / "model.int8.onnx").is_file()
