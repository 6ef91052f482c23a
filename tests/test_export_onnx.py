"""ONNX export: checker + TensorRT-readiness checks, ONNX Runtime parity at batch 2,
engine I/O and error handling, and the TensorRT pieces (skipped without tensorrt)."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import onnx
import pytest
import torch
from clothparse.export import graph_checks, parity, sidecar
from clothparse.export.onnx_export import export_onnx
from clothparse.export.preprocess import boxes_to_photo, prepare_batch
from clothparse.export.wrapper import ExportWrapper
from onnx import TensorProto, helper

from clothparse.config import ModelConfig
from clothparse.engines.onnx_engine import OnnxEngine, choose_providers
from clothparse.errors import DependencyError, ModelError
from clothparse.model.builder import build_model

H, W, B, K = 128, 160, 2, 50
HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig.small()
    model = build_model(cfg).eval()
    wrapper = ExportWrapper(model, H, W, top_k=K)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(wrapper, path, batch=B)
    sc = sidecar.Sidecar(
        class_names=list(cfg.class_names), height=H, width=W, batch=B, top_k=K, opset=17, precision="fp32",
        runtime="onnx", model_sha256=sidecar.sha256_file(path), score_thresh=wrapper.score_thresh,
        image_mean=list(cfg.image_mean), image_std=list(cfg.image_std),
    )
    sidecar.write_sidecar(path, sc)
    return model, wrapper, path, tuple(cfg.class_names)


def test_graph_is_tensorrt_ready(exported) -> None:
    _, _, path, _ = exported
    report = graph_checks.check_graph(onnx.load(str(path)))
    assert report.ok, report.summary()
    assert not set(report.op_counts) & {"Loop", "If", "NonZero", "Scan"}
    assert "RoiAlign" in report.op_counts and "TopK" in report.op_counts


def test_graph_checks_catch_problems() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4])
    g = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"]), helper.make_node("Celu", ["x"], ["c"]),
         helper.make_node("Hardmax", ["c"], ["z"])],
        "g", [x], [y, z],
    )
    report = graph_checks.check_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert not report.ok
    assert report.forbidden == ["NonZero"] and report.unsupported == ["Hardmax"]
    assert "x" in report.dynamic and "y" in report.dynamic


def test_onnxruntime_matches_wrapper_at_batch_2(exported) -> None:
    model, wrapper, path, names = exported
    engine = OnnxEngine(path, device="cpu", threads=2)
    images = parity.sample_images(H, W, n=3)  # three synthetic scenes + grace_hopper.jpg
    rows = parity.parity_rows("onnxruntime", model, wrapper, engine.run_raw, parity.batched(images, B, H, W), names, K)
    ort_row = rows[1]
    assert ort_row.n_ref > 0
    assert ort_row.match_rate >= 0.99 and ort_row.min_iou > 0.99 and ort_row.mask_diff < 0.001, parity.format_table(rows)
    # Idle workers must not spin on the cores the superpixel stage runs on next.
    opts = engine.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_spin_probe_runs_on_an_export(exported) -> None:
    from clothparse.bench import ort_spin

    _, _, path, _ = exported
    for spin in (True, False):
        rounds = ort_spin.measure(path, spin, rounds=1, threads=1)
        assert len(rounds) == 1 and all(ms > 0 for ms in rounds[0])


def test_engine_maps_to_photo_coordinates(exported) -> None:
    _, wrapper, path, names = exported
    engine = OnnxEngine(path, device="cpu")
    assert engine.class_names == names
    assert engine.input_specs[0].shape == (B, 3, H, W)
    assert [s.name for s in engine.output_specs] == ["boxes", "scores", "classes", "masks", "num_detections"]
    photo = parity.sample_images(2 * H, 2 * W, n=1, with_photo=False)[0]  # scale 0.5 into the canvas
    dets = engine.infer([photo, photo, photo])  # 3 photos: one full batch + one padded batch
    assert len(dets) == 3 and len(dets[0]) > 0
    arr, lbs = prepare_batch([photo], H, W, batch=B)
    assert lbs[0].scale_x < 0.6  # the photo really was shrunk into the canvas
    with torch.inference_mode():
        ref_boxes = wrapper(torch.from_numpy(arr))[0][0].numpy()
    expected = boxes_to_photo(ref_boxes[: len(dets[0])], lbs[0])
    np.testing.assert_allclose(dets[0].boxes, expected, rtol=1e-3, atol=0.05)
    assert dets[0].masks.shape[1:] == (28, 28)


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
    sc.model_sha256 = sidecar.sha256_file(bad)
    sidecar.write_sidecar(bad, sc)
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        OnnxEngine(bad, device="cpu")
    shutil.copy(path, bad)
    sc = sidecar.load_sidecar(path)
    sc.height, sc.model_sha256 = 2 * H, sidecar.sha256_file(bad)
    sidecar.write_sidecar(bad, sc)
    with pytest.raises(ModelError, match="do not match the sidecar"):
        OnnxEngine(bad, device="cpu")
    sidecar.sidecar_path(bad).unlink()
    with pytest.raises(ModelError, match="missing sidecar"):
        OnnxEngine(bad, device="cpu")


def test_provider_choice() -> None:
    avail = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert choose_providers(avail) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(avail, "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(DependencyError):
        choose_providers(["CPUExecutionProvider"], "cuda")


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed; the missing-dependency path cannot be shown")
def test_tensorrt_missing_says_what_to_install(exported) -> None:
    from clothparse.export.trt_builder import EngineBuilder

    with pytest.raises(DependencyError, match=r"pip install 'clothparse\[trt\]'"):
        EngineBuilder(exported[2])


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TRT, reason="tensorrt is not installed (pip install 'clothparse[trt]'; needs an NVIDIA GPU)")
def test_tensorrt_engine_matches_wrapper(exported, tmp_path) -> None:
    from clothparse.export.trt_builder import EngineBuilder, Precision

    from clothparse.engines.trt_engine import TrtEngine

    model, wrapper, path, names = exported
    engine_path = EngineBuilder(path).build(tmp_path / "m.engine", Precision.FP32, timing_cache=tmp_path / "t.cache")
    sc = sidecar.load_sidecar(path)
    sc.runtime, sc.model_sha256 = "trt", sidecar.sha256_file(engine_path)
    sidecar.write_sidecar(engine_path, sc)
    engine = TrtEngine(engine_path)
    rows = parity.parity_rows("trt", model, wrapper, engine.run_raw,
                              parity.batched(parity.sample_images(H, W), B, H, W), names, K, False)
    assert rows[0].ok, parity.format_table(rows)
