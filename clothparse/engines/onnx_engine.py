"""The ONNX Runtime engine for models written by ``cpt export --format onnx``.

Providers are chosen by ``clothparse.engines.ort_providers`` (TensorRT EP > CUDA EP >
CPU EP among those the installed onnxruntime offers, with device ids and TensorRT engine
caches keyed by the model's hash), or taken as given. Input and output buffers are
allocated once and bound with IOBinding; each call puts the photos on the contract's
canvas (``clothparse.contract.canvas``), runs, maps the boxes back to photo pixels and
filters at the run-time score threshold. Class names, canvas, score floor and the default
threshold come from the model's sidecar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.contract.sidecar import load_sidecar
from clothparse.engines.base import Detections, TensorSpec
from clothparse.engines.ort_providers import choose_providers
from clothparse.engines.raw import check_io, check_score_thresh, infer_on_canvas
from clothparse.errors import DependencyError, ModelError

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint8)": np.uint8}


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
        providers: Sequence[Any] | None = None,
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
        self.score_thresh = check_score_thresh(sc.score_thresh if score_thresh is None else score_thresh, sc.score_floor, self.path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads)
        # Idle ORT workers otherwise spin for a while after each run, on the very cores the
        # superpixel and fusion stages need next: SLIC right after the model took 25-64 ms
        # instead of 13 ms at 800x1024 on 2 cores; the model's own time did not change.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = list(providers) if providers else choose_providers(
            ort.get_available_providers(), device, model_path=self.path, model_sha256=sc.model_sha256
        )
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"onnxruntime cannot load the model: {' '.join(str(exc).split())[:200]}", self.path) from None
        self.providers = self.session.get_providers()
        self._check_io()
        self._allocate(ort)

    def _check_io(self) -> None:
        """The graph's I/O names and static shapes must be the ones the sidecar describes."""
        got = {i.name: tuple(i.shape) for i in [*self.session.get_inputs(), *self.session.get_outputs()]}
        check_io(got, self.sidecar, self.path)

    def _allocate(self, ort: Any) -> None:
        """Input and output arrays allocated once and bound to the session."""
        sc = self.sidecar
        self._images = np.zeros((sc.batch, 3, sc.height, sc.width), np.uint8)
        self._sizes = np.zeros((sc.batch, 2), np.int32)
        self._outputs = [np.zeros(o.shape, _NP_TYPES[o.type]) for o in self.session.get_outputs()]
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(sc.inputs[0], self._images)
        self._binding.bind_cpu_input(sc.inputs[1], self._sizes)
        for meta, arr in zip(self.session.get_outputs(), self._outputs, strict=True):
            self._binding.bind_output(meta.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)

    @property
    def input_specs(self) -> list[TensorSpec]:
        arrays: tuple[np.ndarray, np.ndarray] = (self._images, self._sizes)
        return [TensorSpec(i.name, tuple(a.shape), str(a.dtype)) for i, a in zip(self.session.get_inputs(), arrays, strict=True)]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [TensorSpec(o.name, tuple(o.shape), str(a.dtype)) for o, a in zip(self.session.get_outputs(), self._outputs, strict=True)]

    def run_raw(self, images: np.ndarray, image_sizes: np.ndarray) -> list[np.ndarray]:
        """uint8 [B, 3, H, W] canvases + int32 [B, 2] photo sizes -> copies of the five raw outputs."""
        self._images[...] = images
        self._sizes[...] = image_sizes
        self._binding.synchronize_inputs()
        self.session.run_with_iobinding(self._binding)
        self._binding.synchronize_outputs()
        return [a.copy() for a in self._outputs]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels."""
        return infer_on_canvas(images, self.sidecar, self.run_raw, self.score_thresh)
