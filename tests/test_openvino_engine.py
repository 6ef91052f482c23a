"""The openvino engine answers like the model it came from.

On the shipped reference model (tests/assets/reference-small), exported with `cpt export`'s
defaults: OpenVINO f32 gives the torch engine's items (class, box IoU > 0.95, score within
0.01) on photos of several sizes and aspect ratios; the int8 Q/DQ export stays inside the
int8 parity bounds; bf16 is checked where the CPU has it. Precision choice, the compiled-model
cache, I/O checks and the loader are tested without timing anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from clothparse.export import parity
from clothparse.export.exporter import ExportSpec, derive_precision, export_onnx_model
from PIL import Image

from clothparse.contract.sidecar import sidecar_path
from clothparse.engines.loader import open_engine
from clothparse.engines.openvino_engine import OpenVinoEngine, choose_precision, cpu_has_bf16
from clothparse.engines.torch_engine import TorchEngine
from clothparse.errors import ConfigError, ModelError
from clothparse.model.checkpoint import load_checkpoint

REFERENCE = Path(__file__).parent / "assets" / "reference-small"
#: (width, height): square, landscape and portrait photos, none of them the 256x256 canvas but one.
SIZES = [(256, 256), (512, 256), (256, 400), (300, 200), (180, 320), (640, 480)]


@pytest.fixture(scope="module")
def reference():
    return load_checkpoint(REFERENCE)


@pytest.fixture(scope="module")
def exported(reference, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ov_export") / "model.onnx"
    return export_onnx_model(reference.model, reference.class_names, out, ExportSpec()).path


@pytest.fixture(scope="module")
def exported_int8(exported: Path) -> Path:
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(7)  # fresh scenes: not the training seed
    calib = [render_scene(rng, 256).image for _ in range(32)]
    out = exported.with_name("model.int8.onnx")
    derive_precision(exported, "int8", out, calib)
    return out


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(2027)
    out = []
    for w, h in SIZES:
        scene = render_scene(rng, 256).image
        out.append(np.asarray(Image.fromarray(scene).resize((w, h), Image.Resampling.BILINEAR)))
    return out + parity.skimage_photos()


def _torch(reference, thresh: float) -> TorchEngine:
    return TorchEngine(reference.model, reference.class_names, "cpu", score_thresh=thresh)


@pytest.mark.parametrize(("thresh", "at_least"), [(0.05, 100), (0.3, 10)])
def test_openvino_f32_gives_the_torch_items(reference, exported, photos, thresh: float, at_least: int) -> None:
    assert len({round(p.shape[1] / p.shape[0], 2) for p in photos}) >= 3  # portrait, landscape, square
    engine = OpenVinoEngine(exported, precision="f32", score_thresh=thresh, threads=2)
    assert engine.precision == "f32" and engine.class_names == tuple(reference.class_names)
    row = parity.engine_parity("openvino f32 vs torch", _torch(reference, thresh), engine, photos, thresh)
    table = parity.format_table([row])
    assert row.ok and row.matched >= at_least, table
    assert row.min_iou > 0.95 and row.max_score_diff <= 0.01 and row.match_rate >= 0.98, table


def test_openvino_int8_stays_inside_the_int8_bounds(reference, exported_int8, photos) -> None:
    engine = OpenVinoEngine(exported_int8, score_thresh=0.05, threads=2)
    assert engine.precision.startswith("int8+")
    row = parity.engine_parity("openvino int8 vs torch", _torch(reference, 0.05), engine, photos, 0.05, parity.REDUCED["int8"])
    assert row.ok and row.matched >= 100, parity.format_table([row])


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 (OpenVINO's OPTIMIZATION_CAPABILITIES lacks BF16)")
def test_openvino_bf16_stays_inside_the_bf16_bounds(reference, exported, photos) -> None:
    engine = OpenVinoEngine(exported, precision="bf16", score_thresh=0.05, threads=2)
    row = parity.engine_parity("openvino bf16 vs torch", _torch(reference, 0.05), engine, photos, 0.05, parity.REDUCED["bf16"])
    assert row.ok and row.matched >= 100, parity.format_table([row])


def test_a_wrong_export_fails_openvino_parity(reference, exported, photos) -> None:
    """The check can fail: class ids shifted by one in the graph's output break every match."""
    engine = OpenVinoEngine(exported, precision="f32", score_thresh=0.05)
    run_raw, n_classes = engine.run_raw, len(engine.class_names)

    def shifted(images: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
        out = run_raw(images, sizes)
        out[2] = out[2] % n_classes + 1
        return out

    engine.run_raw = shifted  # type: ignore[method-assign]
    row = parity.engine_parity("rotated classes", _torch(reference, 0.05), engine, photos, 0.05)
    assert not row.ok and row.matched < 10


def test_precision_choice() -> None:
    with_bf16, without = ("FP32", "BF16", "INT8"), ("FP32", "INT8")
    assert choose_precision("auto", "fp32", with_bf16) == ("bf16", "bf16")
    assert choose_precision("auto", "fp32", without) == ("f32", "f32")
    assert choose_precision("f32", "fp32", with_bf16) == ("f32", "f32")
    assert choose_precision("auto", "int8", with_bf16) == ("bf16", "int8+bf16")
    assert choose_precision("int8", "int8", without) == ("f32", "int8+f32")
    with pytest.raises(ConfigError, match="no bfloat16"):
        choose_precision("bf16", "fp32", without)
    with pytest.raises(ConfigError, match=r"model\.int8\.onnx"):
        choose_precision("int8", "fp32", with_bf16)
    with pytest.raises(ConfigError, match="int8 export"):
        choose_precision("f32", "int8", with_bf16)
    with pytest.raises(ConfigError, match="expected one of"):
        choose_precision("fp16", "fp32", with_bf16)


def test_compiled_model_is_cached_and_gives_the_same_answers(exported, photos, tmp_path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(exported, model)
    shutil.copy(sidecar_path(exported), sidecar_path(model))
    first = OpenVinoEngine(model, precision="f32", score_thresh=0.05)
    assert first.cache_dir is not None and first.cache_dir.parent == tmp_path / "model.onnx.ov_cache"
    blobs = list(first.cache_dir.iterdir())
    assert blobs, "compiling wrote nothing to the cache"
    second = OpenVinoEngine(model, precision="f32", score_thresh=0.05)
    assert sorted(second.cache_dir.iterdir()) == sorted(blobs)  # served from the cache, nothing new
    a, b = first.infer(photos[:3]), second.infer(photos[:3])
    assert sum(len(d) for d in a) > 0
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.boxes, y.boxes) and np.array_equal(x.scores, y.scores)
    assert "cache" in first.note and "f32" in first.note


def test_io_mismatch_with_the_sidecar_is_a_model_error(exported, tmp_path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(exported, model)
    data = json.loads(sidecar_path(exported).read_text())
    data["top_k"] += 1
    sidecar_path(model).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="do not match the sidecar"):
        OpenVinoEngine(model, cache=False)


def test_loader_opens_onnx_with_openvino_and_checks_arguments(exported) -> None:
    engine = open_engine(exported, kind="openvino", device="cpu", precision="f32")
    assert isinstance(engine, OpenVinoEngine)
    specs = {s.name: s for s in [*engine.input_specs, *engine.output_specs]}
    assert specs["images"].shape == (1, 3, 256, 256) and specs["images"].dtype == "uint8"
    assert specs["masks"].shape[1] == engine.sidecar.top_k
    with pytest.raises(ConfigError, match="--engine openvino cannot open"):
        open_engine(REFERENCE, kind="openvino")
    with pytest.raises(ConfigError, match="applies to the openvino engine"):
        open_engine(exported, kind="onnx", precision="f32")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        OpenVinoEngine(exported, device="cuda")


def test_score_threshold_below_the_floor_is_refused(exported) -> None:
    floor = OpenVinoEngine(exported, precision="f32").sidecar.score_floor
    with pytest.raises(ConfigError, match="score floor"):
        OpenVinoEngine(exported, score_thresh=floor / 2)


def test_sidecar_precision_is_reported(exported, exported_int8) -> None:
    fp32 = OpenVinoEngine(exported, precision="auto")
    assert fp32.precision == ("bf16" if cpu_has_bf16() else "f32")
    assert fp32.sidecar.precision == "fp32"
    int8 = OpenVinoEngine(exported_int8)
    assert int8.sidecar.precision == "int8" and "int8 export" in int8.note
