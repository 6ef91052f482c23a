"""TensorRT 11 builder/engine and ONNX Runtime provider selection.

TensorRT cannot be installed on a machine without an NVIDIA GPU, so most tests here run
everywhere: the dependency errors, the ONNX Runtime provider options, and the order of the
checks in ``TrtEngine``/``build_engine`` against a small fake ``tensorrt`` module (a test
double recording the calls made to it; it stands in only for the module's interface).
The tests at the end use the real module and a GPU, and skip where ``tensorrt`` is absent.
"""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from clothparse.export import trt_builder
from clothparse.export.trt_builder import (
    build_engine,
    graph_precision,
    import_tensorrt,
    timing_cache_file,
)
from onnx import TensorProto, helper

from clothparse.contract.sidecar import (
    Sidecar,
    load_sidecar,
    sha256_file,
    sidecar_path,
    write_sidecar,
)
from clothparse.engines import ort_providers, trt_engine
from clothparse.engines.ort_providers import (
    CPU_EP,
    CUDA_EP,
    TRT_EP,
    choose_providers,
    trt_cache_dirs,
)
from clothparse.errors import ConfigError, DependencyError, ModelError

TRT_VERSION = "11.4.0.106"
B, H, W, K = 1, 64, 64, 3
ALL_EPS = [CPU_EP, CUDA_EP, TRT_EP]


# ---------------------------------------------------------------- tiny models and fakes


def tiny_onnx(path: Path, precision: str = "fp32", dynamic: bool = False) -> Path:
    """A small graph with the export contract's I/O: images uint8 [B,3,H,W], image_sizes
    int32 [B,2] -> boxes [B,K,4], scores [B,K], classes int32 [B,K], masks [B,K,28,28],
    num_detections int32 [B]. ``precision`` adds a float16 cast (fp16) or Q/DQ (int8)."""
    f = TensorProto.FLOAT
    batch: Any = "N" if dynamic else B
    inputs = [
        helper.make_tensor_value_info("images", TensorProto.UINT8, [batch, 3, H, W]),
        helper.make_tensor_value_info("image_sizes", TensorProto.INT32, [batch, 2]),
    ]
    outputs = [
        helper.make_tensor_value_info("boxes", f, [B, K, 4]),
        helper.make_tensor_value_info("scores", f, [B, K]),
        helper.make_tensor_value_info("classes", TensorProto.INT32, [B, K]),
        helper.make_tensor_value_info("masks", f, [B, K, 28, 28]),
        helper.make_tensor_value_info("num_detections", TensorProto.INT32, [B]),
    ]

    def const(name: str, arr: np.ndarray) -> Any:
        return helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape, arr.flatten().tolist())

    inits = [
        const("box0", np.arange(B * K * 4, dtype=np.float32).reshape(B, K, 4)),
        const("score0", np.linspace(-1, 1, B * K, dtype=np.float32).reshape(B, K)),
        const("cls0", np.arange(1, K + 1, dtype=np.float32).reshape(1, K)),
        const("mask0", np.linspace(0, 1, B * K * 28 * 28, dtype=np.float32).reshape(B, K, 28, 28)),
        const("two", np.array([2.0], np.float32)),
        const("zero", np.array([0.0], np.float32)),
        const("s3", np.array([B, 1, 1], np.int64)),
        const("s2", np.array([B, 1], np.int64)),
        const("s4", np.array([B, 1, 1, 1], np.int64)),
        const("s1", np.array([B], np.int64)),
    ]
    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=f),
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=1),  # [B,1,1,1]
        helper.make_node("Mul", ["m", "zero"], ["m0"]),  # input-dependent, numerically 0
        helper.make_node("Reshape", ["m0", "s3"], ["m3"]),
        helper.make_node("Add", ["m3", "box0"], ["boxes"]),
        helper.make_node("Reshape", ["m0", "s2"], ["m2"]),
        helper.make_node("Add", ["m2", "score0"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["scores"]),
        helper.make_node("Cast", ["image_sizes"], ["sf"], to=f),
        helper.make_node("ReduceMax", ["sf"], ["smax"], axes=[1], keepdims=1),  # [B,1]
        helper.make_node("Mul", ["smax", "zero"], ["s0"]),
        helper.make_node("Add", ["s0", "cls0"], ["clsf"]),
        helper.make_node("Cast", ["clsf"], ["classes"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["m0", "s4"], ["m4"]),
        helper.make_node("Add", ["m4", "mask0"], ["masks"]),
        helper.make_node("Reshape", ["s0", "s1"], ["n0"]),
        helper.make_node("Add", ["n0", "two"], ["nf"]),
        helper.make_node("Cast", ["nf"], ["num_detections"], to=TensorProto.INT32),
    ]
    if precision == "fp16":
        nodes += [helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16)]
    if precision == "int8":
        inits += [const("qs", np.array(0.1, np.float32)), const("qz", np.array(0, np.int8))]
        nodes += [helper.make_node("QuantizeLinear", ["x", "qs", "qz"], ["xq"])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_meta(path: Path, runtime: str = "onnx", precision: str = "fp32", **tools: str) -> Sidecar:
    sc = Sidecar(
        class_names=["a", "b", "c"], height=H, width=W, batch=B, top_k=K, opset=17, precision=precision,
        runtime=runtime, model_sha256=sha256_file(path), score_thresh=0.5, score_floor=0.05,
        min_size=H, max_size=W, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    sc.tools.pop("tensorrt", None)
    sc.tools.update(tools)
    write_sidecar(path, sc)
    return sc


def fake_engine_file(tmp_path: Path, runtime: str = "trt", **tools: str) -> Path:
    path = tmp_path / "model.engine"
    path.write_bytes(b"not really an engine")
    write_meta(path, runtime=runtime, **tools)
    return path


class FakeTensorRT(types.ModuleType):
    """Records the calls made to it, in order, in ``calls``."""

    def __init__(self, version: str = TRT_VERSION, plugins_ok: bool = True) -> None:
        super().__init__("tensorrt")
        self.__version__ = version
        self.calls: list[str] = []
        fake = self

        class Logger:
            WARNING, VERBOSE = "warning", "verbose"

            def __init__(self, level: str) -> None:
                fake.calls.append("Logger")

        class Runtime:
            def __init__(self, logger: Any) -> None:
                fake.calls.append("Runtime")

            def deserialize_cuda_engine(self, data: bytes) -> None:
                fake.calls.append("deserialize_cuda_engine")
                return None  # "could not be deserialised": stops before any CUDA work

        class Network:
            def __init__(self) -> None:
                self.inputs: list[Any] = []

            @property
            def num_inputs(self) -> int:
                return len(self.inputs)

            def get_input(self, i: int) -> Any:
                return self.inputs[i]

        class OnnxParser:
            num_errors = 0

            def __init__(self, network: Network, logger: Any) -> None:
                self.network = network

            def parse_from_file(self, path: str) -> bool:
                fake.calls.append("parse_from_file")
                for vi in onnx.load(path).graph.input:
                    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
                    self.network.inputs.append(types.SimpleNamespace(name=vi.name, shape=dims))
                return True

        class Cache:
            def __init__(self, data: bytes) -> None:
                self.data = bytes(data)

            def serialize(self) -> bytes:
                return self.data + b"+timings"

        class Config:  # no set_flag and no int8_calibrator: calling them would fail
            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                fake.calls.append(f"set_memory_pool_limit({pool},{size})")

            def create_timing_cache(self, data: bytes) -> Cache:
                fake.calls.append(f"create_timing_cache({bytes(data)!r})")
                return Cache(data)

            def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
                fake.calls.append(f"set_timing_cache(ignore_mismatch={ignore_mismatch})")
                return True

        class Builder:
            def __init__(self, logger: Any) -> None:
                fake.calls.append("Builder")

            def create_network(self, *flags: int) -> Network:
                fake.calls.append(f"create_network{flags}")
                return Network()

            def create_builder_config(self) -> Config:
                return Config()

            def build_serialized_network(self, network: Network, config: Config) -> bytes:
                fake.calls.append("build_serialized_network")
                return b"SERIALIZED-ENGINE"

        def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
            fake.calls.append(f"init_libnvinfer_plugins({namespace!r})")
            return plugins_ok

        self.Logger, self.Runtime, self.Builder, self.OnnxParser = Logger, Runtime, Builder, OnnxParser
        self.init_libnvinfer_plugins = init_libnvinfer_plugins
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
        self.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
        self.nptype = lambda t: t  # the fake engine below reports numpy dtypes directly


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


# ---------------------------------------------------------------- ONNX Runtime providers


def test_cpu_device_gets_only_the_cpu_provider() -> None:
    assert choose_providers(ALL_EPS, "cpu") == [(CPU_EP, {})]
    assert choose_providers([CPU_EP], " CPU ") == [(CPU_EP, {})]


def test_auto_orders_tensorrt_cuda_cpu_on_gpu_0(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    chosen = choose_providers(ALL_EPS, "auto", model_path=model)
    assert [name for name, _ in chosen] == [TRT_EP, CUDA_EP, CPU_EP]
    assert chosen[0][1]["device_id"] == 0 and chosen[1][1] == {"device_id": 0}
    assert choose_providers([CPU_EP], "auto") == [(CPU_EP, {})]
    assert [n for n, _ in choose_providers([CPU_EP, CUDA_EP], "auto")] == [CUDA_EP, CPU_EP]


def test_cuda_n_options_carry_the_device_and_the_caches(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    sha = sha256_file(model)
    chosen = dict(choose_providers(ALL_EPS, "cuda:1", model_path=model, model_sha256=sha))
    trt_opts = chosen[TRT_EP]
    engine_dir = tmp_path / "model.onnx.trt_cache" / f"engines-{sha[:16]}"
    timing_dir = tmp_path / "model.onnx.trt_cache" / "timing"
    assert trt_opts == {
        "device_id": 1,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engine_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(timing_dir),
    }
    assert engine_dir.is_dir() and timing_dir.is_dir()  # the EP would not create the parent
    assert chosen[CUDA_EP] == {"device_id": 1}
    # Without the hash it is computed from the file: same folders.
    assert dict(choose_providers(ALL_EPS, "cuda:1", model_path=model))[TRT_EP] == trt_opts


def test_engine_cache_follows_the_model_hash_timing_cache_does_not(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    before = dict(choose_providers([TRT_EP], "cuda", model_path=model))[TRT_EP]
    tiny_onnx(model, precision="fp16")  # same name, same tensor names, new content
    after = dict(choose_providers([TRT_EP], "cuda", model_path=model))[TRT_EP]
    assert before["trt_engine_cache_path"] != after["trt_engine_cache_path"]
    assert before["trt_timing_cache_path"] == after["trt_timing_cache_path"]
    assert trt_cache_dirs(model, "a" * 64)[0] != trt_cache_dirs(model, "b" * 64)[0]


def test_cuda_without_gpu_provider_names_the_gpu_extra() -> None:
    with pytest.raises(DependencyError, match=r"pip install 'clothparse\[gpu\]'"):
        choose_providers([CPU_EP], "cuda:0")


@pytest.mark.parametrize("device", ["tpu9", "cuda:x", "mps"])
def test_unknown_device_is_a_config_error(device: str) -> None:
    with pytest.raises(ConfigError, match="--device"):
        choose_providers(ALL_EPS, device)


def test_split_providers_gives_the_two_list_form() -> None:
    names, opts = ort_providers.split_providers([(CUDA_EP, {"device_id": 2}), (CPU_EP, {})])
    assert names == [CUDA_EP, CPU_EP] and opts == [{"device_id": 2}, {}]


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
