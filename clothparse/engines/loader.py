"""Open an engine from a path: a checkpoint -> TorchEngine, ``.onnx`` -> ONNX Runtime,
``.engine``/``.plan`` -> TensorRT.

The ONNX and TensorRT engines are imported lazily (by module path) so that neither
onnxruntime nor tensorrt is loaded unless a user asks for them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from clothparse.engines.base import Engine
from clothparse.errors import ConfigError, DependencyError, ModelError

ENGINE_KINDS: tuple[str, ...] = ("torch", "onnx", "trt")

#: Engine kind -> (module path, class name) of the runtimes that live outside this module.
_LAZY: dict[str, tuple[str, str]] = {
    "onnx": ("clothparse.engines.onnx_engine", "OnnxEngine"),
    "trt": ("clothparse.engines.trt_engine", "TrtEngine"),
}


def engine_kind(path: str | Path) -> str:
    """Which engine a file needs, from its type: ``onnx``, ``trt`` or ``torch`` (checkpoints)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".engine", ".plan", ".trt"):
        return "trt"
    return "torch"


def open_engine(
    path: str | Path,
    kind: str | None = None,
    device: str = "auto",
    score_thresh: float | None = None,
    batch_size: int = 1,
) -> Engine:
    """Open the model at ``path`` with the engine ``kind`` (default: from the file type).

    Raises ModelError when the file is missing, ConfigError for an unknown or mismatched
    kind, and DependencyError when the runtime for that kind is not installed/built.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError("no such model file or folder", path)
    kind = (kind or engine_kind(path)).lower()
    if kind not in ENGINE_KINDS:
        raise ConfigError(f"--engine: unknown engine {kind!r}; choose from {', '.join(ENGINE_KINDS)}")
    inferred = engine_kind(path)
    if kind != inferred:
        raise ConfigError(f"--engine {kind} cannot open this file (it needs --engine {inferred})", path)
    if kind == "torch":
        from clothparse.engines.torch_engine import TorchEngine

        return TorchEngine.from_checkpoint(path, device=device, score_thresh=score_thresh, batch_size=batch_size)
    cls = _lazy_class(kind)
    engine: Engine = cls(path, device=device, score_thresh=score_thresh)
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
