"""Build a TensorRT 11 engine from an exported ONNX file: ``build_engine`` / ``EngineBuilder``.

TensorRT 11 networks are always strongly typed: the precision of an engine is the
precision of its ONNX graph (fp32; fp16 mixed precision; int8 as explicit Q/DQ nodes).
There are no precision flags and no calibrators here ("Migrating from TensorRT 10.x to
11.x": the FP16/INT8 builder flags, the int8 calibrator attribute of the builder config and
its calibration profile were removed), so the caller passes the fp32, fp16 or int8 ONNX file of
``clothparse.export.exporter`` and the engine's sidecar is a copy of that file's sidecar
(runtime "trt", the engine's SHA-256, ``tools["tensorrt"]``).

Timing cache. TensorRT's layer-timing cache holds per-layer tactic timings keyed by the
layer's configuration, and is "specific to the targeted device, CUDA, TensorRT versions
and BuilderConfig parameters" ("Optimizing Builder Performance", Timing Cache); entries
from another model are reused only for layers with the same I/O configuration and
parameters, so sharing a cache across models is what it is for (ONNX Runtime's TensorRT
EP shares one across models too). What makes a cache stale is the TensorRT version or
the GPU, so the file name is keyed on those (``timing_cache_file``), not on the model;
TensorRT's own header check (``set_timing_cache(..., ignore_mismatch=False)``) refuses a
cache from another device as a second line. Engines, unlike timing caches, are tied to
the model, the TensorRT version and the GPU: the engine's sidecar records the model hash
and the TensorRT version, and ``TrtEngine`` refuses a mismatch.

TensorRT is imported lazily; without it every entry point raises ``DependencyError``
with the install command.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clothparse.contract.sidecar import load_sidecar, sha256_file, sidecar_path, write_sidecar
from clothparse.engines.tensorrt_runtime import (
    TRT_MAJOR,
    import_tensorrt,
    init_plugins,
    on_device,
    select_cuda_device,
)
from clothparse.errors import ConfigError, ModelError
from clothparse.io.atomic import write_bytes

log = logging.getLogger(__name__)


def gpu_identity(dev: Any) -> tuple[str, str]:
    """(GPU name, compute capability "sm90") of ``dev``: what a timing cache is specific to."""
    import torch

    props = torch.cuda.get_device_properties(dev)
    return str(props.name), f"sm{props.major}{props.minor}"


def timing_cache_file(folder: str | Path, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """The timing-cache file in ``folder`` for this TensorRT version and GPU (see module docstring).

    Deliberately independent of the model: a cache is valid across models on the same
    TensorRT version and GPU. E.g. ``tensorrt-11.4.0.106_sm90_1a2b3c4d.timing``.
    """
    gpu_key = hashlib.sha256(gpu_name.encode("utf-8")).hexdigest()[:8]
    safe_version = re.sub(r"[^0-9A-Za-z.]+", "_", trt_version)
    return Path(folder) / f"tensorrt-{safe_version}_{compute_capability}_{gpu_key}.timing"


def graph_precision(onnx_path: str | Path) -> str:
    """The precision an ONNX graph carries: "int8" (Q/DQ nodes), "fp16" (float16 tensors or
    casts to float16) or "fp32". A strongly typed build takes exactly this precision."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    f16 = onnx.TensorProto.FLOAT16

    def walk(graph: Any) -> Iterator[Any]:
        for node in graph.node:
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from walk(attr.g)

    nodes = list(walk(model.graph))
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in nodes):
        return "int8"
    casts = any(n.op_type == "Cast" and any(a.name == "to" and a.i == f16 for a in n.attribute) for n in nodes)
    tensors = any(t.data_type == f16 for t in model.graph.initializer)
    values = any(v.type.tensor_type.elem_type == f16 for v in [*model.graph.value_info, *model.graph.output])
    return "fp16" if casts or tensors or values else "fp32"


@dataclass(frozen=True)
class BuildResult:
    """A built engine: its path, its sidecar, the TensorRT version that built it (also in
    the sidecar's ``tools["tensorrt"]``), its precision and the timing cache used."""

    path: Path
    sidecar_path: Path
    trt_version: str
    precision: str
    timing_cache: Path | None


class EngineBuilder:
    """ONNX file -> serialized, strongly typed TensorRT 11 engine.

    workspace_gib: builder workspace limit (MemoryPoolType.WORKSPACE).
    device: auto, cuda or cuda:N (``select_cuda_device``); the engine is built for that GPU.
    expected_inputs: name -> static shape the parsed network must have (checked when given).
    The inputs must be static (the exports are): a dynamic one is a ModelError, so no
    optimisation profile is needed.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        workspace_gib: float = 4.0,
        device: str = "auto",
        verbose: bool = False,
        expected_inputs: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.trt = import_tensorrt()
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise ModelError("no such ONNX file", self.onnx_path)
        if workspace_gib <= 0:
            raise ConfigError(f"--workspace must be > 0 GiB, got {workspace_gib}")
        self.workspace_bytes = int(workspace_gib * (1 << 30))
        self.expected_inputs = dict(expected_inputs) if expected_inputs is not None else None
        self.device = select_cuda_device(device)
        #: The version of the imported module: recorded as the sidecar's tools["tensorrt"].
        self.trt_version = str(self.trt.__version__)
        self.timing_cache_path: Path | None = None
        self.logger = self.trt.Logger(self.trt.Logger.VERBOSE if verbose else self.trt.Logger.WARNING)

    def _network(self, builder: Any) -> Any:
        trt = self.trt
        # No flags: networks are always strongly typed in 11.x; STRONGLY_TYPED is deprecated
        # and ignored, EXPLICIT_BATCH no longer exists ("Builder" page, NetworkDefinitionCreationFlag).
        network = builder.create_network()
        # Kept on self until the build is done: the network can refer to weights the parser holds.
        self._parser = parser = trt.OnnxParser(network, self.logger)
        # parse_from_file (not parse(bytes)) so weights stored next to the file are found.
        if not parser.parse_from_file(str(self.onnx_path)):
            errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT cannot parse the ONNX model: {errors[:300]}", self.onnx_path)
        inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
        for name, shape in inputs.items():
            if any(d < 0 for d in shape):
                raise ModelError(f"input {name} has a dynamic shape {shape}; export with a fixed size", self.onnx_path)
        if self.expected_inputs is not None and inputs != self.expected_inputs:
            raise ModelError(f"ONNX inputs {inputs} do not match the sidecar {self.expected_inputs}", self.onnx_path)
        return network

    def _attach_timing_cache(self, config: Any, folder: Path | None) -> Any:
        """A timing cache for ``config``, read from this TensorRT/GPU's file in ``folder``.

        IBuilderConfig.create_timing_cache(b"") makes an empty one; set_timing_cache(cache,
        ignore_mismatch=False) returns False for a cache from another device ("IBuilderConfig"
        page): then this build starts from an empty cache and overwrites the file. The cache
        object is returned because it must stay alive until the engine is built.
        """
        data = b""
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise ConfigError("the timing cache must be a folder (one file per TensorRT version and GPU)", folder)
            self.timing_cache_path = timing_cache_file(folder, self.trt_version, *gpu_identity(self.device))
            if self.timing_cache_path.is_file():
                data = self.timing_cache_path.read_bytes()
        try:
            cache = config.create_timing_cache(data)
        except (RuntimeError, TypeError, ValueError):  # an unreadable file: same as a mismatch
            cache = None
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            log.warning("timing cache %s does not match this TensorRT/GPU; starting an empty one", self.timing_cache_path)
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, ignore_mismatch=False)
        return cache

    def build(self, out_path: str | Path, timing_cache: str | Path | None = None) -> Path:
        """Build and write the engine to ``out_path`` (atomically); returns ``out_path``.

        timing_cache: a folder holding timing caches (read and updated), or None for none.
        """
        trt = self.trt
        with on_device(self.device):
            init_plugins(trt, self.logger)  # before parsing: RoiAlign maps to a plugin
            builder = trt.Builder(self.logger)
            network = self._network(builder)
            config = builder.create_builder_config()
            # "IBuilderConfig" page: set_memory_pool_limit(pool, pool_size) replaces the
            # removed max_workspace_size.
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
            folder = None if timing_cache is None else Path(timing_cache)
            cache = self._attach_timing_cache(config, folder)
            # "Builder" page: build_serialized_network -> IHostMemory (a buffer), or None on failure.
            serialized = builder.build_serialized_network(network, config)
            if serialized is None:
                raise ModelError("TensorRT failed to build an engine (run with verbose for the builder log)", self.onnx_path)
            if self.timing_cache_path is not None:
                # ITimingCache.serialize() -> IHostMemory ("ITimingCache" page).
                write_bytes(self.timing_cache_path, bytes(cache.serialize()))
        out = Path(out_path)
        write_bytes(out, bytes(serialized))
        return out


def default_engine_path(onnx_path: str | Path) -> Path:
    """``model.fp16.onnx`` -> ``model.fp16.engine`` (same folder, same precision tag)."""
    return Path(onnx_path).with_suffix(".engine")


def build_engine(
    onnx_path: str | Path,
    out_path: str | Path | None = None,
    *,
    workspace_gib: float = 4.0,
    timing_cache: str | Path | None = None,
    device: str = "auto",
    verbose: bool = False,
) -> BuildResult:
    """``cpt export --format trt`` and ``cpt export --from model.onnx --format trt``.

    Builds an engine from an exported ONNX file (fp32, fp16 or int8: the precision is the
    graph's, checked against its sidecar), writes it to ``out_path`` (default
    ``default_engine_path``) and the engine's sidecar next to it: a copy of the ONNX
    sidecar with runtime "trt", the engine's SHA-256 and ``tools["tensorrt"]``.
    timing_cache: folder of timing caches (see module docstring), or None.
    """
    onnx_path = Path(onnx_path)
    sc = load_sidecar(onnx_path)  # verifies the ONNX file's hash
    if sc.runtime != "onnx":
        raise ModelError(f"build engines from an ONNX export (this sidecar says runtime {sc.runtime!r})", onnx_path)
    found = graph_precision(onnx_path)
    if found != sc.precision:
        raise ModelError(
            f"the sidecar says {sc.precision} but the graph is {found}: TensorRT {TRT_MAJOR} builds the graph's "
            "own precision (fp16 = mixed-precision ONNX, int8 = Q/DQ nodes); re-export",
            onnx_path,
        )
    expected = {sc.inputs[0]: (sc.batch, 3, sc.height, sc.width), sc.inputs[1]: (sc.batch, 2)}
    builder = EngineBuilder(onnx_path, workspace_gib=workspace_gib, device=device, verbose=verbose, expected_inputs=expected)
    out = Path(out_path) if out_path is not None else default_engine_path(onnx_path)
    if out.resolve() == onnx_path.resolve():
        raise ConfigError("the engine path must differ from the ONNX path", out)
    builder.build(out, timing_cache)
    engine_sc = replace(
        sc,
        runtime="trt",
        model_sha256=sha256_file(out),
        tools={**sc.tools, "tensorrt": builder.trt_version},
    )
    write_sidecar(out, engine_sc)
    return BuildResult(out, sidecar_path(out), builder.trt_version, sc.precision, builder.timing_cache_path)
