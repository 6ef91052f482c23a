"""Static INT8 quantisation (QDQ) of an exported ONNX model for ONNX Runtime on CPUs.

Calibration images go through the same letterboxing as inference. Only Conv and Gemm
(the backbone, FPN, heads) are quantised: the matrix NMS uses MatMul on 0/1 masks and
the box arithmetic must stay in float, so neither is touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from clothparse.export.preprocess import prepare_batch

from clothparse.errors import DependencyError


def _reader_class() -> Any:
    try:
        from onnxruntime.quantization import CalibrationDataReader
    except ImportError:
        raise DependencyError("int8 quantisation needs onnxruntime (pip install onnxruntime)") from None
    return CalibrationDataReader


def make_reader(images: Sequence[np.ndarray], input_name: str, batch: int, height: int, width: int) -> Any:
    """A CalibrationDataReader yielding {input_name: uint8 [batch, 3, H, W]} letterboxed batches."""
    base = _reader_class()

    class _Reader(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = self._batches()

        def _batches(self) -> Iterator[dict[str, np.ndarray]]:
            for start in range(0, len(images), batch):
                arr, _ = prepare_batch(list(images[start : start + batch]), height, width, batch=batch)
                yield {input_name: arr}

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = self._batches()

    return _Reader()


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calib_images: Sequence[np.ndarray],
    batch: int,
    height: int,
    width: int,
    input_name: str = "images",
) -> Path:
    """Write a QDQ int8 copy of ``fp32_path`` to ``out_path`` (atomically).

    Activations uint8 (asymmetric), weights int8 per channel: the combination ONNX
    Runtime's x86 kernels run fastest. MinMax calibration over ``calib_images``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calib_images:
        raise ValueError("int8 quantisation needs at least one calibration image")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        quantize_static(
            str(fp32_path),
            tmp,
            make_reader(calib_images, input_name, batch, height, width),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "Gemm"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
