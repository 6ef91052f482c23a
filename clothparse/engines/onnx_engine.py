"""The ONNX Runtime engine for models written by ``cpt export --format onnx``.

Providers are chosen in the order TensorRT EP > CUDA EP > CPU EP among those the
installed onnxruntime offers (or taken as given). Input and output buffers are
allocated once and bound with IOBinding; each call letterboxes the photos into the
input buffer, runs, and maps the boxes back to photo pixels. Class names, input size
and the default score threshold come from the model's sidecar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.engines.base import Detections, TensorSpec
from clothparse.errors import ConfigError, DependencyError, ModelError
from clothparse.export.preprocess import outputs_to_detections, prepare_batch
from clothparse.export.sidecar import load_sidecar

PROVIDER_ORDER: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_NP_TYPES = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint8)": np.uint8}


def choose_providers(available: Sequence[str], device: str = "auto") -> list[str]:
    """Providers for ``device``: auto = every accelerated one available, best first, then CPU."""
    device = device.strip().lower()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = [p for p in PROVIDER_ORDER if p in available]
    if device.startswith("cuda") and not any(p != "CPUExecutionProvider" for p in wanted):
        raise DependencyError(f"--device {device}: this onnxruntime has no GPU provider (pip install clothparse[gpu])")
    if device not in ("auto",) and not device.startswith("cuda"):
        raise ConfigError(f"--device: unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return wanted or ["CPUExecutionProvider"]


class OnnxEngine:
    """Run an exported ``.onnx`` (with its ``.onnx.json`` sidecar) in ONNX Runtime.

    providers: explicit provider list (default: ``choose_providers`` for ``device``).
    threads: intra-op threads (0 = onnxruntime's default); graph optimisation is ORT_ENABLE_ALL.
    The intra-op workers do not spin between runs (see ``__init__``).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        score_thresh: float | None = None,
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DependencyError("the onnx engine needs onnxruntime (pip install onnxruntime)") from None
        self.path = Path(path)
        sc = load_sidecar(self.path)
        if sc.runtime != "onnx":
            raise ModelError(f"sidecar says this is a {sc.runtime} model, not onnx", self.path)
        self.sidecar = sc
        self.class_names = tuple(sc.class_names)
        self.score_thresh = float(sc.score_thresh if score_thresh is None else score_thresh)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads)
        # Idle ORT workers otherwise spin for a while after each run, on the very cores the
        # superpixel and fusion stages need next: SLIC right after the model took 25-64 ms
        # instead of 13 ms at 800x1024 on 2 cores; the model's own time did not change.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = list(providers) if providers else choose_providers(ort.get_available_providers(), device)
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"onnxruntime cannot load the model: {' '.join(str(exc).split())[:200]}", self.path) from None
        self.providers = self.session.get_providers()
        self._check_io()
        self._allocate(ort)

    def _check_io(self) -> None:
        sc = self.sidecar
        inputs = self.session.get_inputs()
        expected = [sc.batch, 3, sc.height, sc.width]
        if len(inputs) != 1 or inputs[0].name != sc.input_name or list(inputs[0].shape) != expected:
            got = [(i.name, i.shape) for i in inputs]
            raise ModelError(f"model inputs {got} do not match the sidecar ({sc.input_name} {expected})", self.path)
        names = [o.name for o in self.session.get_outputs()]
        if names != list(sc.outputs):
            raise ModelError(f"model outputs {names} do not match the sidecar {sc.outputs}", self.path)

    def _allocate(self, ort: Any) -> None:
        """Input and output arrays allocated once and bound to the session."""
        sc = self.sidecar
        self._input = np.zeros((sc.batch, 3, sc.height, sc.width), np.uint8)
        self._outputs = [np.zeros(o.shape, _NP_TYPES[o.type]) for o in self.session.get_outputs()]
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(sc.input_name, self._input)
        for meta, arr in zip(self.session.get_outputs(), self._outputs, strict=True):
            self._binding.bind_output(meta.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)

    @property
    def input_specs(self) -> list[TensorSpec]:
        i = self.session.get_inputs()[0]
        return [TensorSpec(i.name, tuple(i.shape), "uint8")]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [TensorSpec(o.name, tuple(o.shape), str(a.dtype)) for o, a in zip(self.session.get_outputs(), self._outputs, strict=True)]

    def run_raw(self, batch: np.ndarray) -> list[np.ndarray]:
        """uint8 [B, 3, H, W] at the export size -> copies of the five raw outputs."""
        self._input[...] = batch
        self._binding.synchronize_inputs()
        self.session.run_with_iobinding(self._binding)
        self._binding.synchronize_outputs()
        return [a.copy() for a in self._outputs]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels."""
        sc = self.sidecar
        out: list[Detections] = []
        for start in range(0, len(images), sc.batch):
            chunk = images[start : start + sc.batch]
            batch, boxes = prepare_batch(chunk, sc.height, sc.width, batch=sc.batch)
            out.extend(outputs_to_detections(self.run_raw(batch), boxes, self.class_names, self.score_thresh))
        return out
