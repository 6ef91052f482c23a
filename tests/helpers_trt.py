"""Test doubles for the TensorRT tests: a tiny two-input ONNX graph with a sidecar, an
engine file with a sidecar, and a fake ``tensorrt`` module that records the calls made to
it (it stands in for the module's interface only, on machines where TensorRT cannot exist).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from clothparse.contract.sidecar import Sidecar, sha256_file, write_sidecar

TRT_VERSION = "11.4.0.106"
B, H, W, K = 1, 64, 64, 3


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
        min_size=H, max_size=W,
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
