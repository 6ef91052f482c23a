"""The TensorRT engine for ``.engine`` files written by ``cpt export --format trt``.

Deserialises the engine once, allocates every I/O tensor once on the GPU (torch CUDA
tensors), and runs ``execute_async_v3`` on its own CUDA stream. ``tensorrt`` is
imported lazily; when it is missing the error says what to install. Engines are tied
to the TensorRT version that built them, so the sidecar's version must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clothparse.engines.base import Detections, TensorSpec
from clothparse.errors import DependencyError, ModelError
from clothparse.export.preprocess import outputs_to_detections, prepare_batch
from clothparse.export.sidecar import load_sidecar
from clothparse.export.trt_builder import import_tensorrt


class TrtEngine:
    """Run a serialized TensorRT engine (with its ``.engine.json`` sidecar) on a CUDA GPU."""

    def __init__(self, path: str | Path, device: str = "auto", score_thresh: float | None = None) -> None:
        import torch

        self.path = Path(path)
        sc = load_sidecar(self.path)
        if sc.runtime != "trt":
            raise ModelError(f"sidecar says this is a {sc.runtime} model, not a TensorRT engine", self.path)
        trt = import_tensorrt()
        built_with = sc.tools.get("tensorrt")
        if built_with != trt.__version__:
            raise ModelError(f"engine built with TensorRT {built_with}, this is {trt.__version__}: re-export", self.path)
        if not torch.cuda.is_available():
            raise DependencyError("the trt engine needs a CUDA GPU and a CUDA build of torch")
        self.device = torch.device("cuda" if device in ("auto", "cuda") else device)
        self.sidecar = sc
        self.class_names = tuple(sc.class_names)
        self.score_thresh = float(sc.score_thresh if score_thresh is None else score_thresh)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ModelError("TensorRT cannot deserialize this engine (corrupt, or built for another GPU)", self.path)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.device)
        self._allocate(trt, torch)

    def _allocate(self, trt: Any, torch: Any) -> None:
        """One device tensor per I/O tensor, bound to the context once."""
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = torch.from_numpy(np.zeros(0, trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            buf = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, int(buf.data_ptr()))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.context.set_input_shape(name, shape)
                self.inputs[name] = buf
            else:
                self.outputs[name] = buf
        expected = (self.sidecar.batch, 3, self.sidecar.height, self.sidecar.width)
        if list(self.inputs) != [self.sidecar.input_name] or tuple(self.inputs[self.sidecar.input_name].shape) != expected:
            raise ModelError(f"engine inputs do not match the sidecar ({self.sidecar.input_name} {expected})", self.path)
        if list(self.outputs) != list(self.sidecar.outputs):
            raise ModelError(f"engine outputs {list(self.outputs)} do not match the sidecar", self.path)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec(n, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in self.inputs.items()]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [TensorSpec(n, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in self.outputs.items()]

    def run_raw(self, batch: np.ndarray) -> list[np.ndarray]:
        """uint8 [B, 3, H, W] at the export size -> the five raw outputs (host copies)."""
        import torch

        with torch.cuda.stream(self.stream):
            self.inputs[self.sidecar.input_name].copy_(torch.from_numpy(batch), non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ModelError("TensorRT execution failed", self.path)
            host = [t.to("cpu", non_blocking=True) for t in self.outputs.values()]
        self.stream.synchronize()
        return [h.numpy() for h in host]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels."""
        sc = self.sidecar
        out: list[Detections] = []
        for start in range(0, len(images), sc.batch):
            batch, boxes = prepare_batch(images[start : start + sc.batch], sc.height, sc.width, batch=sc.batch)
            out.extend(outputs_to_detections(self.run_raw(batch), boxes, self.class_names, self.score_thresh))
        return out
