"""Export an ``ExportWrapper`` to ONNX with the legacy (TorchScript) exporter, then check it.

The new exporter (``dynamo=True``) cannot trace torchvision's detection code, and the
wrapper is written for tracing anyway: it has no data-dependent Python control flow.
After export the file gets the full ``onnx.checker`` check and ONNX shape inference
(the inferred shapes are stored in the file, so TensorRT and tools see static shapes),
and is optionally simplified with onnxsim when that package is installed.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch
from clothparse.export.wrapper import ExportWrapper

from clothparse.contract.sidecar import INPUT_NAMES, OUTPUT_NAMES
from clothparse.errors import ModelError
from clothparse.io.atomic import write_bytes

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


@dataclass
class OnnxExportResult:
    """What ``export_onnx`` wrote and what it noticed on the way."""

    path: Path
    opset: int
    simplified: bool
    notes: list[str] = field(default_factory=list)


def trace_to_onnx(wrapper: ExportWrapper, batch: int, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``wrapper`` at uint8 [batch, 3, H, W] + int32 [batch, 2] and return the ONNX
    model (not yet checked)."""
    wrapper = wrapper.eval()
    dummy = torch.zeros(batch, 3, wrapper.height, wrapper.width, dtype=torch.uint8)
    sizes = torch.tensor([[wrapper.height, wrapper.width]] * batch, dtype=torch.int32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # Tracer warnings are about Python ints taken from static shapes: intended here.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (dummy, sizes),
            buf,  # type: ignore[arg-type]  # file-like objects are accepted at runtime
            dynamo=False,
            opset_version=opset,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def check_and_infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Full ``onnx.checker`` check, then strict shape inference (with data propagation)."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"exported graph failed the ONNX check: {' '.join(str(exc).split())[:300]}") from None
    return inferred


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """Run onnxsim when installed; returns (model, note). The note says why it was skipped."""
    try:
        import onnxsim
    except ImportError:
        return model, "onnxsim is not installed (pip install onnxsim): --simplify skipped"
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        return model, "onnxsim could not validate the simplified model: kept the original"
    return simplified, None


def export_onnx(
    wrapper: ExportWrapper,
    path: str | Path,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    do_simplify: bool = False,
) -> OnnxExportResult:
    """Export ``wrapper`` at a fixed batch to ``path`` (atomically), checked and shape-inferred."""
    path = Path(path)
    model = trace_to_onnx(wrapper, batch, opset)
    notes: list[str] = []
    simplified = False
    if do_simplify:
        model, note = simplify(model)
        simplified = note is None
        if note:
            notes.append(note)
    model = check_and_infer(model)
    model.producer_name = "clothparse"
    write_bytes(path, model.SerializeToString())
    return OnnxExportResult(path, opset, simplified, notes)
