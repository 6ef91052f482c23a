"""The OpenVINO engine: exported ONNX models (fp32 or int8 Q/DQ) on the CPU's vector and matrix units.

OpenVINO reads the ``.onnx`` that ``cpt export`` wrote (and its sidecar) directly; its
front end converts the graph in memory and the compiled model is cached on disk, so a second
start skips compilation. Floating-point work runs at an *inference precision* that OpenVINO
chooses per layer within the hint given here:

* ``f32``: everything in fp32, like ONNX Runtime.
* ``bf16``: matrix work in bfloat16 on CPUs that have it (AVX512_BF16, AMX); refused with
  a one-line error elsewhere, because OpenVINO would otherwise quietly run fp32.
* ``int8``: the int8 Q/DQ export (``model.int8.onnx``); the quantized layers run in int8
  and the rest at ``bf16`` where the CPU has it, else ``f32``.
* ``auto``: ``int8`` for an int8 export, otherwise ``bf16`` where the CPU reports BF16
  in OpenVINO's ``OPTIMIZATION_CAPABILITIES``, else ``f32``. ``note`` says what was chosen.

Inputs and outputs follow the preprocessing contract (``clothparse.contract.canvas``), like
every exported-model engine: canvases in, raw outputs through ``outputs_to_detections``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.contract.sidecar import load_sidecar
from clothparse.engines.base import Detections, TensorSpec
from clothparse.engines.raw import check_io, check_score_thresh, infer_on_canvas
from clothparse.errors import ConfigError, DependencyError, ModelError

PRECISIONS: tuple[str, ...] = ("auto", "f32", "bf16", "int8")
HINTS: tuple[str, ...] = ("latency", "throughput")


def cpu_capabilities(core: Any) -> tuple[str, ...]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU device (e.g. FP32, BF16, INT8)."""
    return tuple(str(c).upper() for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def cpu_has_bf16() -> bool:
    """Whether OpenVINO can run bfloat16 on this CPU (False when openvino is not installed)."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return "BF16" in cpu_capabilities(ov.Core())


def choose_precision(requested: str, export_precision: str, capabilities: tuple[str, ...]) -> tuple[str, str]:
    """(graph precision hint ``f32``/``bf16``, engine precision name) for a request.

    ``export_precision`` is the sidecar's (fp32, fp16 or int8). ConfigError when the request
    cannot be honoured (bf16 without CPU support, int8 from a float export).
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision: expected one of {', '.join(PRECISIONS)} for the openvino engine, got {requested!r}")
    has_bf16 = "BF16" in capabilities
    if export_precision == "int8":
        if requested in ("f32", "bf16"):
            raise ConfigError(
                f"--precision {requested}: this is the int8 export; open the fp32 model.onnx for {requested}"
            )
        hint = "bf16" if has_bf16 else "f32"
        return hint, f"int8+{hint}"
    if requested == "int8":
        raise ConfigError(
            f"--precision int8 needs the int8 export (model.int8.onnx from `cpt export --precision int8`); "
            f"this one is {export_precision}"
        )
    if requested == "bf16" and not has_bf16:
        raise ConfigError(
            "--precision bf16: this CPU has no bfloat16 support (OpenVINO's capabilities: "
            f"{', '.join(capabilities)}); use f32 or auto"
        )
    hint = requested if requested != "auto" else ("bf16" if has_bf16 else "f32")
    return hint, hint


def cache_dir_for(model_path: Path, model_sha256: str) -> Path | None:
    """Where the compiled model is cached: ``<model>.ov_cache/<sha256[:16]>`` next to the model.

    Keyed on the file's hash so a re-export never meets a stale blob (OpenVINO also keys its
    blobs on the graph and the compile options). None when that folder cannot be created.
    """
    root = model_path.with_name(model_path.name + ".ov_cache") / model_sha256[:16]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root if os.access(root, os.W_OK) else None


class OpenVinoEngine:
    """Run an exported ``.onnx`` (with its ``.onnx.json`` sidecar) with OpenVINO on the CPU.

    precision: ``auto``, ``f32``, ``bf16`` or ``int8`` (module docstring).
    threads:   inference threads (0 = OpenVINO's default, all cores).
    hint:      ``latency`` (one request uses every thread; what ``cpt parse`` wants) or
               ``throughput`` (streams for concurrent requests).
    cache:     keep the compiled model on disk (``cache_dir_for``).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        score_thresh: float | None = None,
        precision: str = "auto",
        threads: int = 0,
        hint: str = "latency",
        cache: bool = True,
    ) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise DependencyError("the openvino engine needs the openvino package (pip install openvino)") from None
        self.path = Path(path)
        if device not in ("auto", "cpu"):
            raise ConfigError(f"--device {device}: the openvino engine runs on the CPU (use --device cpu or auto)")
        if hint not in HINTS:
            raise ConfigError(f"openvino hint must be one of {', '.join(HINTS)}, got {hint!r}")
        if int(threads) < 0:
            raise ConfigError(f"openvino threads must be >= 0, got {threads}")
        sc = load_sidecar(self.path)
        if sc.runtime != "onnx":
            raise ModelError(f"sidecar says this is a {sc.runtime} model; the openvino engine reads ONNX exports", self.path)
        self.sidecar = sc
        self.class_names = tuple(sc.class_names)
        self.score_thresh = check_score_thresh(sc.score_thresh if score_thresh is None else score_thresh, sc.score_floor, self.path)
        core = ov.Core()
        self.capabilities = cpu_capabilities(core)
        hint_precision, self.precision = choose_precision(precision, sc.precision, self.capabilities)
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": hint_precision,
            "PERFORMANCE_HINT": hint.upper(),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.cache_dir = cache_dir_for(self.path, sc.model_sha256) if cache else None
        if self.cache_dir is not None:
            config["CACHE_DIR"] = str(self.cache_dir)
        try:
            # compile_model(path) (not read_model + compile) lets OpenVINO serve a cached blob
            # without converting the ONNX graph again.
            self.compiled = core.compile_model(str(self.path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line text
            raise ModelError(f"openvino cannot compile the model: {' '.join(str(exc).split())[:200]}", self.path) from None
        self._check_io()
        self._allocate(ov)
        why = "int8 export" if sc.precision == "int8" else ("requested" if precision != "auto" else
                                                            ("CPU has BF16" if hint_precision == "bf16" else "CPU has no BF16"))
        self.note = (
            f"openvino: {self.precision} ({why}), {self.compiled.get_property('INFERENCE_NUM_THREADS')} threads, "
            f"{hint} hint" + (f", cache {self.cache_dir}" if self.cache_dir is not None else ", no cache")
        )

    def _check_io(self) -> None:
        """The compiled model's I/O names and static shapes must be the ones the sidecar describes."""
        got: dict[str, tuple[int, ...]] = {}
        for port in [*self.compiled.inputs, *self.compiled.outputs]:
            dims = tuple(int(d.get_length()) if d.is_static else -1 for d in port.get_partial_shape())
            # A port can carry several tensor names (OpenVINO keeps the producing node's too):
            # it matches when the sidecar's name is among them.
            names = port.get_names()
            name = next((n for n in (*self.sidecar.inputs, *self.sidecar.outputs) if n in names), port.get_any_name())
            got[name] = dims
        check_io(got, self.sidecar, self.path)

    def _allocate(self, ov: Any) -> None:
        """One infer request whose input tensors share memory with arrays allocated once."""
        sc = self.sidecar
        self._images = np.zeros((sc.batch, 3, sc.height, sc.width), np.uint8)
        self._sizes = np.zeros((sc.batch, 2), np.int32)
        self._request = self.compiled.create_infer_request()
        self._request.set_tensor(sc.inputs[0], ov.Tensor(self._images, shared_memory=True))
        self._request.set_tensor(sc.inputs[1], ov.Tensor(self._sizes, shared_memory=True))
        self._outputs = [self.compiled.output(name) for name in sc.outputs]

    @property
    def input_specs(self) -> list[TensorSpec]:
        arrays: tuple[np.ndarray, np.ndarray] = (self._images, self._sizes)
        return [TensorSpec(n, tuple(a.shape), str(a.dtype)) for n, a in zip(self.sidecar.inputs, arrays, strict=True)]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [
            TensorSpec(n, tuple(int(d) for d in port.get_shape()), str(port.get_element_type().to_dtype()))
            for n, port in zip(self.sidecar.outputs, self._outputs, strict=True)
        ]

    def run_raw(self, images: np.ndarray, image_sizes: np.ndarray) -> list[np.ndarray]:
        """uint8 [B, 3, H, W] canvases + int32 [B, 2] photo sizes -> copies of the five raw outputs."""
        self._images[...] = images
        self._sizes[...] = image_sizes
        self._request.infer()
        return [np.array(self._request.get_tensor(port).data, copy=True) for port in self._outputs]

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 [H, W, 3] photos -> one Detections per photo, in photo pixels."""
        return infer_on_canvas(images, self.sidecar, self.run_raw, self.score_thresh)
