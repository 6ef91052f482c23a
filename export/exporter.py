"""The one exporter: a torchvision Mask R-CNN -> checked static-shape ONNX + sidecar, and
its reduced-precision variants (fp16 mixed precision, int8 Q/DQ) as further ONNX files.

``cpt export`` and the benchmarks both call ``export_onnx_model`` and ``derive_precision``;
TensorRT engines are built from these files (``clothparse.export.trt_builder``), so the
precision of an engine is the precision of its ONNX graph. The canvas defaults to what
the checkpoint was trained for (``clothparse.contract.canvas.CanvasSpec.for_model``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from clothparse.export import graph_checks, onnx_export
from clothparse.export.wrapper import DEFAULT_SCORE_FLOOR, ExportWrapper

from clothparse.contract import sidecar as sc_mod
from clothparse.contract.canvas import CanvasSpec
from clothparse.errors import ConfigError, ModelError

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportSpec:
    """What to export. ``height``/``width`` None = the checkpoint's default canvas;
    ``score_thresh`` None = the model's own threshold (the run-time default);
    ``score_floor`` None = min(0.05, the model's threshold, ``score_thresh``)."""

    height: int | None = None
    width: int | None = None
    batch: int = 1
    #: Detections per image; None = the model's own ``detections_per_img`` (as the torch engine).
    top_k: int | None = None
    opset: int = onnx_export.DEFAULT_OPSET
    score_thresh: float | None = None
    score_floor: float | None = None
    keep_labels: tuple[int, ...] | None = None
    simplify: bool = False


@dataclass
class Exported:
    """An exported ONNX file, its sidecar, and what the exporter noticed."""

    path: Path
    sidecar: sc_mod.Sidecar
    notes: list[str]


def canvas_for(model: Any, spec: ExportSpec) -> CanvasSpec:
    """The export canvas of ``model`` under ``spec`` (ConfigError for a bad size)."""
    from clothparse.engines.torch_engine import model_canvas

    try:
        return model_canvas(model, spec.height, spec.width)
    except ValueError as exc:
        raise ConfigError(f"--height/--width: {exc}") from None


def thresholds(model: Any, spec: ExportSpec) -> tuple[float, float]:
    """(run-time default threshold, graph floor) for ``spec``; ConfigError when floor > threshold."""
    own = float(model.roi_heads.score_thresh)
    thresh = own if spec.score_thresh is None else float(spec.score_thresh)
    floor = min(DEFAULT_SCORE_FLOOR, own, thresh) if spec.score_floor is None else float(spec.score_floor)
    if not 0.0 <= floor <= thresh <= 1.0:
        raise ConfigError(f"need 0 <= --score-floor <= --score-thresh <= 1, got {floor:g} and {thresh:g}")
    return thresh, floor


def export_onnx_model(
    model: Any,
    class_names: Sequence[str],
    path: str | Path,
    spec: ExportSpec = ExportSpec(),
    source: Path | None = None,
) -> Exported:
    """Trace, check (ONNX checker, TensorRT-readiness graph checks) and write ``path`` + sidecar.

    model: a torchvision Mask R-CNN (eval mode is set). source: the checkpoint file it was
    loaded from (its hash goes into the sidecar). Raises ModelError when a check fails.
    """
    path = Path(path)
    canvas = canvas_for(model, spec)
    thresh, floor = thresholds(model, spec)
    top_k = int(model.roi_heads.detections_per_img if spec.top_k is None else spec.top_k)
    wrapper = ExportWrapper(
        model.eval(), canvas.height, canvas.width, top_k=top_k,
        keep_labels=list(spec.keep_labels) if spec.keep_labels else None, score_floor=floor,
    )
    result = onnx_export.export_onnx(wrapper, path, batch=spec.batch, opset=spec.opset, do_simplify=spec.simplify)
    notes = list(result.notes)
    if not canvas.fits_all:
        notes.append(
            f"canvas {canvas.height}x{canvas.width} is smaller than the model's max_size {canvas.max_size}: "
            "photos that do not fit are shrunk below the scale the model was trained at"
        )
    import onnx

    report = graph_checks.check_graph(onnx.load(str(path)))
    if not report.ok:
        raise ModelError(report.summary(), path)
    notes.append(report.summary())
    sidecar = sc_mod.Sidecar(
        class_names=list(class_names), height=canvas.height, width=canvas.width, batch=spec.batch,
        top_k=top_k, opset=spec.opset, precision="fp32", runtime="onnx",
        model_sha256=sc_mod.sha256_file(path), score_thresh=thresh, score_floor=floor,
        min_size=canvas.min_size, max_size=canvas.max_size,
        keep_labels=list(spec.keep_labels) if spec.keep_labels else None,
        source_checkpoint=str(source or ""), source_sha256=sc_mod.sha256_file(source) if source else "",
        mask_size=28,
    )
    sc_mod.write_sidecar(path, sidecar)
    return Exported(path, sidecar, notes)


def derive_precision(
    fp32_path: str | Path, precision: str, out_path: str | Path, calib_images: Sequence[np.ndarray] = ()
) -> Exported:
    """Write the ``precision`` variant of an exported fp32 ONNX file (+ its sidecar).

    fp16: mixed precision (``clothparse.export.fp16``), fp32 kept where fp16 would
    overflow or lose boxes; int8: explicit Q/DQ (``clothparse.export.quantize``)
    calibrated on ``calib_images`` (RGB uint8 photos) through the same canvas contract.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    base = sc_mod.load_sidecar(fp32_path)
    if base.precision != "fp32" or base.runtime != "onnx":
        raise ModelError(f"expected an fp32 ONNX export, got {base.precision} {base.runtime}", fp32_path)
    notes: list[str] = []
    if precision == "fp32":
        if out_path != fp32_path:
            shutil.copyfile(fp32_path, out_path)
    elif precision == "fp16":
        from clothparse.export.fp16 import convert_fp16

        notes += convert_fp16(fp32_path, out_path)
    elif precision == "int8":
        from clothparse.export.quantize import quantize_int8

        if not calib_images:
            raise ConfigError("--precision int8 needs calibration photos: --calib DIR")
        quantize_int8(fp32_path, out_path, calib_images, base)
    else:
        raise ConfigError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    import onnx

    # The variant is what TensorRT will build: it gets the same readiness checks as fp32.
    report = graph_checks.check_graph(onnx.load(str(out_path)))
    if not report.ok:
        raise ModelError(report.summary(), out_path)
    notes.append(f"{precision}: {report.summary()}")
    sidecar = replace(base, precision=precision, model_sha256=sc_mod.sha256_file(out_path))
    sc_mod.write_sidecar(out_path, sidecar)
    return Exported(out_path, sidecar, notes)
