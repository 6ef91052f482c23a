"""Open an engine from a path: a checkpoint -> TorchEngine, ``.onnx`` -> ONNX Runtime (or
OpenVINO with ``kind="openvino"``), ``.engine``/``.plan`` -> TensorRT.

The exported-model engines are imported lazily (by module path) so that onnxruntime,
openvino and tensorrt are loaded only when a user asks for them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from clothparse.engines.base import Engine
from clothparse.errors import ConfigError, DependencyError, ModelError

ENGINE_KINDS: tuple[str, ...] = ("torch", "onnx", "openvino", "trt")

#: File type (``engine_kind``) -> the engine kinds that can open it.
_OPENS: dict[str, tuple[str, ...]] = {"torch": ("torch",), "onnx": ("onnx", "openvino"), "trt": ("trt",)}

#: Engine kind -> (module path, class name) of the runtimes that live outside this module.
_LAZY: dict[str, tuple[str, str]] = {
    "onnx": ("clothparse.engines.onnx_engine", "OnnxEngine"),
    "openvino": ("clothparse.engines.openvino_engine", "OpenVinoEngine"),
    "trt": ("clothparse.engines.trt_engine", "TrtEngine"),
}


def engine_kind(path: str | Path) -> str:
    """The default engine of a file, from its type: ``onnx``, ``trt`` or ``torch`` (checkpoints)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".engine", ".plan", ".trt"):
        return "trt"
    return "torch"


def can_open(kind: str, path: str | Path) -> bool:
    """Whether the engine ``kind`` reads the file at ``path`` (e.g. openvino reads ``.onnx``)."""
    return kind in _OPENS[engine_kind(path)]


def open_engine(
    path: str | Path,
    kind: str | None = None,
    device: str = "auto",
    score_thresh: float | None = None,
    batch_size: int = 1,
    precision: str = "auto",
    threads: int = 0,
) -> Engine:
    """Open the model at ``path`` with the engine ``kind`` (default: from the file type).

    ``precision`` is the openvino engine's inference precision (``auto``, ``f32``, ``bf16``,
    ``int8``); the other engines run at their file's precision and refuse anything but auto.
    ``threads`` caps the CPU threads of the model (0 = the runtime's default, every core):
    intra-op threads for onnx, inference threads for openvino, ``torch.set_num_threads``
    (process-wide) for torch; TensorRT runs on the GPU and ignores it.
    Raises ModelError when the file is missing, ConfigError for an unknown or mismatched
    kind, and DependencyError when the runtime for that kind is not installed/built.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError("no such model file or folder", path)
    kind = (kind or engine_kind(path)).lower()
    if kind not in ENGINE_KINDS:
        raise ConfigError(f"--engine: unknown engine {kind!r}; choose from {', '.join(ENGINE_KINDS)}")
    if not can_open(kind, path):
        choices = " or ".join(f"--engine {k}" for k in _OPENS[engine_kind(path)])
        raise ConfigError(f"--engine {kind} cannot open this file (it needs {choices})", path)
    if kind == "openvino":
        cls = _lazy_class(kind)
        ov_engine: Engine = cls(path, device=device, score_thresh=score_thresh, precision=precision, threads=threads)
        return ov_engine
    if precision != "auto":
        raise ConfigError(f"--precision {precision} applies to the openvino engine; the {kind} engine runs at its file's precision")
    if threads < 0:
        raise ConfigError(f"threads must be >= 0, got {threads}")
    if kind == "torch":
        from clothparse.engines.torch_engine import TorchEngine

        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchEngine.from_checkpoint(path, device=device, score_thresh=score_thresh, batch_size=batch_size)
    cls = _lazy_class(kind)
    engine: Engine = cls(path, device=device, score_thresh=score_thresh, **({"threads": threads} if kind == "onnx" else {}))
    return engine


def _lazy_class(kind: str) -> Any:
    module_name, class_name = _LAZY[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise DependencyError(
                f"the {kind} engine is not part of this build ({module_name} is missing)"
            ) from None
        raise DependencyError(f"the {kind} engine needs the '{exc.name}' package, which is not installed") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise DependencyError(f"{module_name} does not define {class_name}") from None
