"""Static INT8 quantisation of an exported ONNX model as explicit Q/DQ nodes.

One file for ONNX Runtime and TensorRT: TensorRT 11 reads int8 precision only from Q/DQ
nodes, and only symmetric ones (zero point 0, int8), so activations and weights are both
signed int8 with zero points of 0, weights per output channel. Calibration photos go
through the same canvas contract as inference (``clothparse.contract.canvas``). Only
Conv and Gemm (backbone, FPN, heads) are quantised: the matrix NMS uses MatMul on 0/1
masks and the box arithmetic must stay in float, so neither is touched.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clothparse.contract.canvas import prepare_batch
from clothparse.contract.sidecar import Sidecar
from clothparse.errors import DependencyError


def _reader_class() -> Any:
    try:
        from onnxruntime.quantization import CalibrationDataReader
    except ImportError:
        raise DependencyError("int8 quantisation needs onnxruntime (pip install onnxruntime)") from None
    return CalibrationDataReader


def make_reader(images: Sequence[np.ndarray], sc: Sidecar) -> Any:
    """A CalibrationDataReader yielding {images: uint8 [B, 3, H, W], image_sizes: int32 [B, 2]}."""
    base = _reader_class()

    class _Reader(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = self._batches()

        def _batches(self) -> Iterator[dict[str, np.ndarray]]:
            for start in range(0, len(images), sc.batch):
                arr, sizes, _ = prepare_batch(list(images[start : start + sc.batch]), sc.canvas, batch=sc.batch)
                yield {sc.inputs[0]: arr, sc.inputs[1]: sizes}

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = self._batches()

    return _Reader()


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calib_images: Sequence[np.ndarray],
    sc: Sidecar,
) -> Path:
    """Write a Q/DQ int8 copy of ``fp32_path`` (whose sidecar is ``sc``) to ``out_path`` (atomically).

    Symmetric int8 activations and per-channel int8 weights (see the module docstring);
    MinMax calibration over ``calib_images`` (RGB uint8 photos of any size).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calib_images:
        raise ValueError("int8 quantisation needs at least one calibration image")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    # onnxruntime's quantiser logs a generic "consider pre-processing" warning through the
    # root logger on every call; the graph is already shape-inferred and checked.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(fp32_path),
            tmp,
            make_reader(calib_images, sc),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "Gemm"],
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Biases stay float: TensorRT's parser refuses DequantizeLinear on int32 biases.
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
        )
        os.replace(tmp, out)
    finally:
        root.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
