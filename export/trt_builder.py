"""Build a TensorRT engine from an exported ONNX file: ``EngineBuilder``.

TensorRT is imported lazily; without it every entry point raises ``DependencyError``
with the install command. INT8 uses an entropy calibrator (IInt8EntropyCalibrator2)
fed by the same letterboxing as inference, with a calibration cache, and a timing
cache can be loaded and saved to make rebuilds fast.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from clothparse.export.preprocess import prepare_batch

from clothparse.errors import DependencyError, ModelError
from clothparse.io.atomic import write_bytes

log = logging.getLogger(__name__)

INSTALL_HINT = "TensorRT is not installed: pip install 'clothparse[trt]' (the tensorrt package, needs an NVIDIA GPU + driver)"


class Precision(enum.Enum):
    """Engine precision; the value is the CLI spelling."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or DependencyError saying what to install."""
    try:
        import tensorrt
    except ImportError:
        raise DependencyError(INSTALL_HINT) from None
    return tensorrt


def load_timing_cache(config: Any, path: Path | None) -> None:
    """Attach a timing cache to a builder config, read from ``path`` when that file exists."""
    data = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)


def save_timing_cache(config: Any, path: Path | None) -> None:
    if path is not None:
        write_bytes(path, bytes(config.get_timing_cache().serialize()))


def make_calibrator(
    trt: Any, images: Sequence[np.ndarray], batch: int, height: int, width: int, cache_path: Path | None
) -> Any:
    """An IInt8EntropyCalibrator2 over ``images`` (RGB uint8 photos), letterboxed like inference."""
    import torch

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.index = 0
            self.device_buf = torch.empty((batch, 3, height, width), dtype=torch.uint8, device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= len(images):
                return None
            chunk = list(images[self.index : self.index + batch])
            self.index += batch
            arr, _ = prepare_batch(chunk, height, width, batch=batch)
            self.device_buf.copy_(torch.from_numpy(arr))
            return [int(self.device_buf.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                write_bytes(cache_path, bytes(cache))

    return _Calibrator()


class EngineBuilder:
    """ONNX file -> serialized TensorRT engine.

    workspace_gib: builder workspace limit. The ONNX input's static shape [B, 3, H, W]
    becomes the single optimisation profile (min = opt = max).
    """

    def __init__(self, onnx_path: str | Path, workspace_gib: float = 4.0, verbose: bool = False) -> None:
        self.trt = import_tensorrt()
        self.onnx_path = Path(onnx_path)
        self.workspace_bytes = int(workspace_gib * (1 << 30))
        level = self.trt.Logger.VERBOSE if verbose else self.trt.Logger.WARNING
        self.logger = self.trt.Logger(level)

    def _network(self, builder: Any) -> Any:
        trt = self.trt
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(self.onnx_path)):
            errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT cannot parse the ONNX model: {errors[:300]}", self.onnx_path)
        return network

    def build(
        self,
        out_path: str | Path,
        precision: Precision = Precision.FP32,
        calib_images: Sequence[np.ndarray] | None = None,
        calib_cache: Path | None = None,
        timing_cache: Path | None = None,
    ) -> Path:
        """Build and write the engine (atomically); returns ``out_path``."""
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = self._network(builder)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        load_timing_cache(config, timing_cache)
        inp = network.get_input(0)
        shape = tuple(inp.shape)
        if any(d < 0 for d in shape):
            raise ModelError(f"input {inp.name} has a dynamic shape {shape}; export with a fixed size", self.onnx_path)
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, shape, shape, shape)
        config.add_optimization_profile(profile)
        if precision in (Precision.FP16, Precision.INT8):
            config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers fall back to FP16, not FP32
        if precision == Precision.INT8:
            if not calib_images and not (calib_cache and calib_cache.is_file()):
                raise ModelError("INT8 needs calibration images (--calib DIR) or a calibration cache", self.onnx_path)
            config.set_flag(trt.BuilderFlag.INT8)
            batch, _, height, width = shape
            config.int8_calibrator = make_calibrator(trt, list(calib_images or []), batch, height, width, calib_cache)
            config.set_calibration_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelError("TensorRT failed to build an engine (run with verbose for the log)", self.onnx_path)
        save_timing_cache(config, timing_cache)
        out = Path(out_path)
        write_bytes(out, bytes(serialized))
        return out
