"""The TensorRT engine for ``.engine`` files written by ``cpt export --format trt``.

Deserialises the engine once on the chosen GPU, allocates every I/O tensor once (torch
CUDA tensors, with pinned host mirrors so the copies are asynchronous) and runs
``execute_async_v3`` on its own CUDA stream. Engines are tied to the TensorRT version
that built them ("Engine Compatibility": by default an engine runs only on the TensorRT
version used to build it), so the sidecar's ``tools["tensorrt"]`` must equal the imported
module's ``__version__``; that and every other sidecar check run before CUDA is touched.
``tensorrt`` is imported lazily; when it is missing the error says what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clothparse.contract.sidecar import Sidecar, load_sidecar
from clothparse.engines.base import Detections, TensorSpec
from clothparse.engines.raw import check_score_thresh, infer_on_canvas, io_shapes
from clothparse.engines.tensorrt_runtime import (
    import_tensorrt,
    init_plugins,
    on_device,
    select_cuda_device,
)
from clothparse.errors import ModelError

REBUILD_HINT = "rebuild with `cpt export --from model.onnx --format trt`"


def check_engine_version(sc: Sidecar, trt_version: str, path: str | Path) -> None:
    """ModelError unless the engine was built by this exact TensorRT version."""
    built_with = sc.tools.get("tensorrt")
    if built_with != trt_version:
        raise ModelError(f"engine built with TensorRT {built_with or 'unknown'}, this is {trt_version}: {REBUILD_HINT}", path)


class TrtEngine:
    """Run a serialized TensorRT engine (with its ``.engine.json`` sidecar) on a CUDA GPU.

    device: auto, cuda or cuda:N (``clothparse.device.resolve_device`` rules); cpu is refused.
    score_thresh: run-time threshold, default the sidecar's; refused below its score floor.
    Inputs: ``images`` uint8 [B, 3, H, W] canvases and ``image_sizes`` int32 [B, 2]; outputs
    as the sidecar lists them (boxes, scores, classes, masks, num_detections), with the
    dtypes the engine reports.
    """

    def __init__(self, path: str | Path, device: str = "auto", score_thresh: float | None = None) -> None:
        self.path = Path(path)
        sc = load_sidecar(self.path)  # verifies the engine file's hash
        if sc.runtime != "trt":
            raise ModelError(f"sidecar says this is a {sc.runtime} model, not a TensorRT engine", self.path)
        self.sidecar = sc
        self.class_names = tuple(sc.class_names)
        self.score_thresh = check_score_thresh(sc.score_thresh if score_thresh is None else score_thresh, sc.score_floor, self.path)
        trt = import_tensorrt()
        check_engine_version(sc, str(trt.__version__), self.path)
        # Only now CUDA: select the device first, so the runtime, the engine's memory, the
        # context, the stream and every buffer live on it.
        self.device = select_cuda_device(device)
        with on_device(self.device):
            self._logger = trt.Logger(trt.Logger.WARNING)
            # The ROIAlign plugin must be registered before an engine that uses it is
            # deserialised ("Plugin" page: call once before accessing the registry).
            init_plugins(trt, self._logger)
            self._runtime = trt.Runtime(self._logger)
            # "Runtime" page: returns the ICudaEngine, or None if it could not be deserialised.
            self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise ModelError(f"TensorRT cannot deserialise this engine (corrupt, or built for another GPU): {REBUILD_HINT}", self.path)
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise ModelError("TensorRT cannot create an execution context (out of GPU memory?)", self.path)
            self._allocate(trt)

    def _io(self, trt: Any) -> tuple[dict[str, tuple[tuple[int, ...], Any]], dict[str, tuple[tuple[int, ...], Any]]]:
        """Engine inputs and outputs: name -> (shape, numpy dtype), via the name-based
        tensor API (num_io_tensors, get_tensor_name/mode/shape/dtype: "ICudaEngine" page)."""
        inputs: dict[str, tuple[tuple[int, ...], Any]] = {}
        outputs: dict[str, tuple[tuple[int, ...], Any]] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(int(d) for d in self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(f"engine tensor {name} has a dynamic shape {shape}; {REBUILD_HINT}", self.path)
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            mode = self.engine.get_tensor_mode(name)
            (inputs if mode == trt.TensorIOMode.INPUT else outputs)[name] = (shape, dtype)
        return inputs, outputs

    def _check_io(self, inputs: dict[str, tuple[tuple[int, ...], Any]], outputs: dict[str, tuple[tuple[int, ...], Any]]) -> None:
        sc = self.sidecar
        expected = {
            sc.inputs[0]: ((sc.batch, 3, sc.height, sc.width), np.dtype(np.uint8)),
            sc.inputs[1]: ((sc.batch, 2), np.dtype(np.int32)),
        }
        if inputs != expected:
            raise ModelError(f"engine inputs {inputs} do not match the sidecar {expected}: {REBUILD_HINT}", self.path)
        shapes = io_shapes(sc)
        got = {name: shape for name, (shape, _) in outputs.items()}
        want = {name: shapes[name] for name in sc.outputs}
        if got != want:
            raise ModelError(f"engine outputs {got} do not match the sidecar {want}: {REBUILD_HINT}", self.path)

    def _allocate(self, trt: Any) -> None:
        """One device tensor (and one pinned host mirror) per I/O tensor, bound to the context once."""
        import torch

        inputs, outputs = self._io(trt)
        self._check_io(inputs, outputs)
        sc = self.sidecar
        # Keyed and ordered as the sidecar lists them, so run_raw returns outputs in its order.
        self._specs = {n: inputs[n] for n in sc.inputs} | {n: outputs[n] for n in sc.outputs}
        self._device_bufs: dict[str, Any] = {}
        self._host_bufs: dict[str, Any] = {}
        for name, (shape, dtype) in self._specs.items():
            tdtype = torch.from_numpy(np.zeros(0, dtype)).dtype
            buf = torch.empty(shape, dtype=tdtype, device=self.device)
            self._device_bufs[name] = buf
            self._host_bufs[name] = torch.empty(shape, dtype=tdtype, pin_memory=True)
            # "IExecutionContext" page: set_tensor_address(name, memory) -> bool.
            if not self.context.set_tensor_address(name, int(buf.data_ptr())):
                raise ModelError(f"TensorRT refused the buffer for {name}", self.path)
        self.stream = torch.cuda.Stream(device=self.device)
        torch.cuda.synchronize(self.device)  # the buffers were allocated on the default stream

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec(n, s, str(d)) for n, (s, d) in self._specs.items() if n in self.sidecar.inputs]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [TensorSpec(n, s, str(d)) for n, (s, d) in self._specs.items() if n in self.sidecar.outputs]

    def run_raw(self, images: np.ndarray, image_sizes: np.ndarray) -> list[np.ndarray]:
        """uint8 [B, 3, H, W] canvases + int32 [B, 2] photo sizes -> host copies of the raw
        outputs in sidecar order (boxes float32 [B,K,4], scores [B,K], classes [B,K],
        masks [B,K,M,M], num_detections [B]; dtypes as the engine reports them)."""
        import torch

        sc = self.sidecar
        for name, arr in zip(sc.inputs, (images, image_sizes), strict=True):
            shape, dtype = self._specs[name]
            if tuple(arr.shape) != shape or arr.dtype != dtype:
                raise ValueError(f"{name}: expected {dtype} {shape}, got {arr.dtype} {tuple(arr.shape)}")
            self._host_bufs[name].numpy()[...] = arr
        with on_device(self.device), torch.cuda.stream(self.stream):
            for name in sc.inputs:  # pinned host -> device, asynchronous on our stream
                self._device_bufs[name].copy_(self._host_bufs[name], non_blocking=True)
            # "IExecutionContext" page: execute_async_v3(stream_handle) -> bool; a
            # non-default stream avoids TensorRT's extra synchronisations.
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ModelError("TensorRT execution failed", self.path)
            for name in sc.outputs:
                self._host_bufs[name].copy_(self._device_bufs[name], non_blocking=True)
        self.stream.synchronize()
        # Copies: the pinned buffers are overwritten by the next call.
        return [self._host_bufs[name].numpy().copy() for name in sc.outputs]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels."""
        return infer_on_canvas(images, self.sidecar, self.run_raw, self.score_thresh)
