"""Loading TensorRT at run time: the module (11.x), its plugins, the CUDA device.

Shared by the runtime (``clothparse.engines.trt_engine``) and the builder
(``clothparse.export.trt_builder``); it depends on neither. TensorRT is imported lazily;
without it every entry point raises ``DependencyError`` with the install command.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from clothparse.errors import ConfigError, DependencyError

#: The TensorRT major version this module is written against (API of 11.x).
TRT_MAJOR = 11
INSTALL_HINT = (
    "TensorRT is not installed: pip install 'clothparse[trt]' "
    f"(TensorRT {TRT_MAJOR}.x; needs an NVIDIA GPU and driver)"
)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module (TensorRT 11.x), or DependencyError saying what to install."""
    try:
        import tensorrt
    except ModuleNotFoundError as exc:
        if exc.name == "tensorrt":
            raise DependencyError(INSTALL_HINT) from None
        raise DependencyError(f"tensorrt is installed but cannot be imported ({exc}); {INSTALL_HINT}") from None
    except (ImportError, OSError) as exc:  # a wheel whose CUDA libraries do not load
        raise DependencyError(f"tensorrt is installed but cannot be imported ({exc}); {INSTALL_HINT}") from None
    version = str(getattr(tensorrt, "__version__", "unknown"))
    if version.split(".")[0] != str(TRT_MAJOR):
        raise DependencyError(f"TensorRT {version} is installed, clothparse needs {TRT_MAJOR}.x: pip install 'clothparse[trt]'")
    return tensorrt


def init_plugins(trt: Any, logger: Any) -> None:
    """Register TensorRT's bundled plugins (the ONNX RoiAlign op becomes the ROIAlign plugin).

    ``init_libnvinfer_plugins(logger, namespace)`` ("Plugin" page of the Python API: call
    once before the plugin registry is used, i.e. before parsing or deserialising).
    """
    if not trt.init_libnvinfer_plugins(logger, ""):
        raise DependencyError("TensorRT's plugin library (libnvinfer_plugin) failed to initialise; reinstall 'clothparse[trt]'")


def select_cuda_device(device: str) -> Any:
    """``device`` (auto, cuda, cuda:N) -> the ``torch.device('cuda', N)`` TensorRT will run on.

    Goes through ``clothparse.device.resolve_device``; TensorRT has no CPU fallback, so cpu
    (asked for, or the only thing ``auto`` finds) is an error.
    """
    import torch

    from clothparse.device import resolve_device

    dev = resolve_device(device)
    if dev.type != "cuda":
        if str(device).strip().lower() == "auto":
            raise DependencyError("TensorRT needs a CUDA GPU and a CUDA build of torch; none found (use the onnx engine on CPU)")
        raise ConfigError(f"--device {device}: TensorRT runs on CUDA GPUs only; use --device cuda or cuda:N")
    return torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)


def on_device(dev: Any) -> AbstractContextManager[Any]:
    """Make ``dev`` the current CUDA device inside the block (TensorRT builds, deserialises
    and allocates on the current device), restoring the previous one afterwards."""
    import torch

    return torch.cuda.device(dev)
