"""TensorRT 11 builder and engine.

TensorRT cannot be installed on a machine without an NVIDIA GPU, so most tests here run
everywhere: the dependency errors and the order of the checks in ``TrtEngine`` /
``build_engine`` against a small fake ``tensorrt`` module (``helpers_trt``: a test double
recording the calls made to it; it stands in only for the module's interface).
The tests at the end use the real module and a GPU, and skip where ``tensorrt`` is absent.
"""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from clothparse.export import trt_builder
from clothparse.export.trt_builder import (
    build_engine,
    graph_precision,
    import_tensorrt,
    timing_cache_file,
)
from helpers_trt import (
    TRT_VERSION,
    B,
    FakeTensorRT,
    H,
    K,
    W,
    fake_engine_file,
    tiny_onnx,
    write_meta,
)

from clothparse.contract.sidecar import (
    load_sidecar,
    sidecar_path,
)
from clothparse.engines import trt_engine
from clothparse.engines.ort_providers import (
    CPU_EP,
)
from clothparse.errors import ConfigError, DependencyError, ModelError


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> FakeTensorRT:
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    return fake


@pytest.fixture
def no_trt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` now fails


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend GPU 0 exists (only for code paths that reach the fake tensorrt)."""
    selected: list[str] = []

    def select(device: str) -> str:
        selected.append(device)
        return "cuda:0"

    for module in (trt_builder, trt_engine):
        monkeypatch.setattr(module, "select_cuda_device", select)
        monkeypatch.setattr(module, "on_device", lambda dev: contextlib.nullcontext())
    monkeypatch.setattr(trt_builder, "gpu_identity", lambda dev: ("NVIDIA H200", "sm90"))
    return selected


# ---------------------------------------------------------------- import_tensorrt


def test_missing_tensorrt_says_what_to_install(no_trt: None) -> None:
    with pytest.raises(DependencyError, match=r"pip install 'clothparse\[trt\]'"):
        import_tensorrt()


def test_tensorrt_10_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT("10.16.1.11"))
    with pytest.raises(DependencyError, match=r"TensorRT 10\.16\.1\.11 is installed, clothparse needs 11\.x"):
        import_tensorrt()


def test_tensorrt_11_is_returned(fake_trt: FakeTensorRT) -> None:
    assert import_tensorrt() is fake_trt


# ---------------------------------------------------------------- builder


def test_timing_cache_key_is_the_tensorrt_version_and_gpu(tmp_path: Path) -> None:
    base = timing_cache_file(tmp_path, TRT_VERSION, "NVIDIA H200", "sm90")
    assert base.parent == tmp_path and TRT_VERSION in base.name and "sm90" in base.name
    assert timing_cache_file(tmp_path, "11.3.0.99", "NVIDIA H200", "sm90") != base
    assert timing_cache_file(tmp_path, TRT_VERSION, "NVIDIA H200", "sm100") != base
    assert timing_cache_file(tmp_path, TRT_VERSION, "NVIDIA L4", "sm90") != base
    assert timing_cache_file(tmp_path, TRT_VERSION, "NVIDIA H200", "sm90") == base


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_graph_precision_reads_the_graph(tmp_path: Path, precision: str) -> None:
    assert graph_precision(tiny_onnx(tmp_path / "m.onnx", precision)) == precision


def test_build_engine_precision_must_match_the_graph(tmp_path: Path, no_trt: None) -> None:
    model = tiny_onnx(tmp_path / "model.onnx", "fp32")
    write_meta(model, precision="int8")  # an fp32 graph labelled int8
    with pytest.raises(ModelError, match="sidecar says int8 but the graph is fp32"):
        build_engine(model, tmp_path / "model.engine")


def test_build_engine_refuses_an_engine_sidecar(tmp_path: Path, no_trt: None) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    write_meta(model, runtime="trt")
    with pytest.raises(ModelError, match="build engines from an ONNX export"):
        build_engine(model, tmp_path / "model.engine")


def test_build_engine_without_tensorrt_says_what_to_install(tmp_path: Path, no_trt: None) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    write_meta(model)
    with pytest.raises(DependencyError, match=r"pip install 'clothparse\[trt\]'"):
        build_engine(model, tmp_path / "model.engine")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_engine_writes_engine_sidecar_and_timing_cache(
    tmp_path: Path, fake_trt: FakeTensorRT, fake_gpu: list[str], precision: str
) -> None:
    model = tiny_onnx(tmp_path / "model.onnx", precision)
    onnx_sc = write_meta(model, precision=precision)
    caches = tmp_path / "timing"
    result = build_engine(model, tmp_path / "model.engine", workspace_gib=2, timing_cache=caches, device="cuda:0")

    assert fake_gpu == ["cuda:0"]
    assert result.path.read_bytes() == b"SERIALIZED-ENGINE"
    sc = load_sidecar(result.path)  # hash of the engine checked here
    assert sc.runtime == "trt" and sc.precision == precision == result.precision
    assert sc.tools["tensorrt"] == TRT_VERSION == result.trt_version
    assert sc.class_names == onnx_sc.class_names and sc.score_floor == onnx_sc.score_floor
    assert result.sidecar_path == sidecar_path(result.path)
    calls = fake_trt.calls
    # Plugins before parsing; a network without flags; no precision flag or calibrator
    # (the fake config has neither); the workspace limit; the timing cache attached strictly.
    assert calls.index("init_libnvinfer_plugins('')") < calls.index("parse_from_file")
    assert "create_network()" in calls
    assert f"set_memory_pool_limit(WORKSPACE,{2 << 30})" in calls
    assert "set_timing_cache(ignore_mismatch=False)" in calls
    assert result.timing_cache == timing_cache_file(caches, TRT_VERSION, "NVIDIA H200", "sm90")
    assert result.timing_cache.read_bytes() == b"+timings"

    # A second build reads the cache the first one wrote.
    fake_trt.calls.clear()
    build_engine(model, tmp_path / "again.engine", timing_cache=caches, device="cuda:0")
    assert "create_timing_cache(b'+timings')" in fake_trt.calls


def test_build_engine_refuses_dynamic_inputs(tmp_path: Path, fake_trt: FakeTensorRT, fake_gpu: list[str]) -> None:
    model = tiny_onnx(tmp_path / "model.onnx", dynamic=True)
    write_meta(model)
    with pytest.raises(ModelError, match="dynamic shape"):
        build_engine(model, tmp_path / "model.engine")
    assert not (tmp_path / "model.engine").exists()


def test_failed_plugin_init_is_a_dependency_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_gpu: list[str]) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(plugins_ok=False))
    model = tiny_onnx(tmp_path / "model.onnx")
    write_meta(model)
    with pytest.raises(DependencyError, match="plugin"):
        build_engine(model, tmp_path / "model.engine")


# ---------------------------------------------------------------- TrtEngine checks


def test_engine_refuses_an_onnx_sidecar_before_importing_tensorrt(tmp_path: Path, no_trt: None) -> None:
    path = fake_engine_file(tmp_path, runtime="onnx")
    with pytest.raises(ModelError, match="not a TensorRT engine"):
        trt_engine.TrtEngine(path)


def test_engine_refuses_a_low_threshold_before_importing_tensorrt(tmp_path: Path, no_trt: None) -> None:
    path = fake_engine_file(tmp_path, tensorrt=TRT_VERSION)
    with pytest.raises(ConfigError, match="score floor"):
        trt_engine.TrtEngine(path, score_thresh=0.01)


def test_engine_version_mismatch_is_caught_before_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_gpu: list[str]
) -> None:
    fake = FakeTensorRT("11.3.0.99")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    path = fake_engine_file(tmp_path, tensorrt=TRT_VERSION)
    msg = r"engine built with TensorRT 11\.4\.0\.106, this is 11\.3\.0\.99: rebuild with `cpt export --from model\.onnx --format trt`"
    with pytest.raises(ModelError, match=msg):
        trt_engine.TrtEngine(path)
    assert fake_gpu == [] and fake.calls == []  # no device chosen, nothing asked of TensorRT

    path = fake_engine_file(tmp_path)  # a sidecar without tools["tensorrt"]
    with pytest.raises(ModelError, match="built with TensorRT unknown"):
        trt_engine.TrtEngine(path)


def test_engine_initialises_plugins_before_deserialising(
    tmp_path: Path, fake_trt: FakeTensorRT, fake_gpu: list[str]
) -> None:
    path = fake_engine_file(tmp_path, tensorrt=TRT_VERSION)
    with pytest.raises(ModelError, match="cannot deserialise"):
        trt_engine.TrtEngine(path, device="cuda:1")
    assert fake_gpu == ["cuda:1"]
    calls = fake_trt.calls
    assert "init_libnvinfer_plugins('')" in calls and "deserialize_cuda_engine" in calls
    assert calls.index("init_libnvinfer_plugins('')") < calls.index("Runtime") < calls.index("deserialize_cuda_engine")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")
def test_engine_refuses_cpu(tmp_path: Path, fake_trt: FakeTensorRT) -> None:
    path = fake_engine_file(tmp_path, tensorrt=TRT_VERSION)
    with pytest.raises(ConfigError, match="CUDA GPUs only"):
        trt_engine.TrtEngine(path, device="cpu")
    with pytest.raises(DependencyError, match="needs a CUDA GPU"):
        trt_engine.TrtEngine(path, device="auto")
    assert fake_trt.calls == []


def _engine_with_io(tmp_path: Path, io: dict[str, tuple[str, tuple[int, ...], Any]]) -> tuple[Any, FakeTensorRT]:
    """A TrtEngine shell (no CUDA) around a fake ICudaEngine with the given I/O."""
    fake = FakeTensorRT()
    names = list(io)
    engine = types.SimpleNamespace(
        num_io_tensors=len(names),
        get_tensor_name=lambda i: names[i],
        get_tensor_mode=lambda n: io[n][0],
        get_tensor_shape=lambda n: io[n][1],
        get_tensor_dtype=lambda n: io[n][2],
    )
    eng = trt_engine.TrtEngine.__new__(trt_engine.TrtEngine)
    eng.path = tmp_path / "model.engine"
    eng.sidecar = write_meta(tiny_onnx(tmp_path / "m.onnx"), runtime="trt")
    eng.engine = engine
    return eng, fake


def _good_io() -> dict[str, tuple[str, tuple[int, ...], Any]]:
    return {
        "images": ("INPUT", (B, 3, H, W), np.uint8),
        "image_sizes": ("INPUT", (B, 2), np.int32),
        # Engines list outputs in their own order; the sidecar's order is what run_raw returns.
        "masks": ("OUTPUT", (B, K, 28, 28), np.float16),
        "boxes": ("OUTPUT", (B, K, 4), np.float32),
        "scores": ("OUTPUT", (B, K), np.float32),
        "classes": ("OUTPUT", (B, K), np.int32),
        "num_detections": ("OUTPUT", (B,), np.int32),
    }


def test_engine_io_is_checked_against_the_sidecar(tmp_path: Path) -> None:
    eng, fake = _engine_with_io(tmp_path, _good_io())
    inputs, outputs = eng._io(fake)
    eng._check_io(inputs, outputs)  # passes; masks may be float16
    assert outputs["masks"] == ((B, K, 28, 28), np.dtype(np.float16))

    bad = _good_io() | {"image_sizes": ("INPUT", (B, 2), np.int64)}
    eng, fake = _engine_with_io(tmp_path, bad)
    with pytest.raises(ModelError, match="engine inputs"):
        eng._check_io(*eng._io(fake))

    bad = {k: v for k, v in _good_io().items() if k != "num_detections"}
    eng, fake = _engine_with_io(tmp_path, bad)
    with pytest.raises(ModelError, match="engine outputs"):
        eng._check_io(*eng._io(fake))

    bad = _good_io() | {"images": ("INPUT", (-1, 3, H, W), np.uint8)}
    eng, fake = _engine_with_io(tmp_path, bad)
    with pytest.raises(ModelError, match="dynamic shape"):
        eng._io(fake)


# ---------------------------------------------------------------- real TensorRT (GPU)


@pytest.mark.gpu
def test_real_tensorrt_build_and_run_matches_onnxruntime(tmp_path: Path) -> None:
    trt = pytest.importorskip("tensorrt", reason="tensorrt is not installed (pip install 'clothparse[trt]'; needs an NVIDIA GPU)")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    assert trt.__version__.startswith("11.")
    import onnxruntime as ort

    model = tiny_onnx(tmp_path / "model.onnx")
    write_meta(model)
    result = build_engine(model, timing_cache=tmp_path / "timing", device="cuda:0")
    assert result.path == tmp_path / "model.engine" and result.timing_cache is not None
    assert result.timing_cache.is_file()
    engine = trt_engine.TrtEngine(result.path, device="cuda:0")
    assert [s.name for s in engine.input_specs] == ["images", "image_sizes"]
    assert [s.name for s in engine.output_specs] == list(engine.sidecar.outputs)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (B, 3, H, W), dtype=np.uint8)
    sizes = np.array([[H - 8, W - 16]], np.int32)
    got = engine.run_raw(images, sizes)
    want = ort.InferenceSession(str(model), providers=[CPU_EP]).run(None, {"images": images, "image_sizes": sizes})
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    dets = engine.infer([rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)])
    assert len(dets) == 1 and len(dets[0]) <= 2
