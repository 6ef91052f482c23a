"""`cpt export`: checkpoint -> static-shape ONNX (fp32, fp16 mixed precision, int8 Q/DQ)
and TensorRT engines built from those files; or `--from model.onnx` -> TensorRT engine.

Every ONNX export is followed by the ONNX checker, the TensorRT-readiness graph checks and
an engine-level parity table: each exported file, opened as an engine, against the torch
engine on photos of several sizes and aspect ratios, at the score floor and at the
run-time threshold. A failed check or parity fails the command (exit code 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import Device, OutDir
from clothparse.errors import ConfigError, ModelError

Formats = Annotated[str, typer.Option("--format", help="Comma-separated: onnx, trt (a TensorRT engine from each ONNX file).")]
Height = Annotated[int | None, typer.Option("--height", help="Canvas height (multiple of 32; default: the checkpoint's max_size, rounded up).")]
Width = Annotated[int | None, typer.Option("--width", help="Canvas width (multiple of 32; default: as --height).")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Fixed batch size of the exported model.")]
TopK = Annotated[int | None, typer.Option("--top-k", min=1, help="Detections per image (default: the model's detections_per_img).")]
Opset = Annotated[int, typer.Option("--opset", min=16, help="ONNX opset (RoiAlign needs >= 16).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="Comma-separated: fp32, fp16 (mixed precision), int8 (Q/DQ). fp32 is always written.")]
Calib = Annotated[Path | None, typer.Option("--calib", help="Folder of photos for int8 calibration.")]
Simplify = Annotated[bool, typer.Option("--simplify", help="Run onnxsim when installed.")]
Body = Annotated[bool, typer.Option("--body", help="Keep only the `person` class (body model).")]
DefaultThresh = Annotated[
    float | None,
    typer.Option("--score-thresh", min=0.0, max=1.0, help="Default run-time threshold stored with the export (default: the model's own)."),
]
Floor = Annotated[
    float | None,
    typer.Option("--score-floor", min=0.0, max=1.0, help="The graph keeps detections above this; lower run-time thresholds are refused (default: 0.05 or lower)."),
]
FromOnnx = Annotated[Path | None, typer.Option("--from", help="Build a TensorRT engine from this exported .onnx instead of a checkpoint.")]

_CALIB_LIMIT = 64


def _calibration_images(folder: Path | None) -> list[Any]:
    """Up to 64 photos of ``folder``; an unreadable one is reported and left out."""
    from clothparse.cli.errors import report
    from clothparse.errors import DataError
    from clothparse.io.images import IMAGE_SUFFIXES, read_rgb

    if folder is None:
        raise ConfigError("--precision int8 needs calibration photos: --calib DIR")
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:_CALIB_LIMIT]
    images = []
    for p in files:
        try:
            images.append(read_rgb(p))
        except DataError as exc:
            report(exc, "warning")  # one bad photo must not abort the export
    if not images:
        raise ConfigError("no readable images found for calibration", folder)
    return images


def _split(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    if not items or any(v not in allowed for v in items):
        raise ConfigError(f"{option}: expected a comma-separated list of {', '.join(allowed)}, got {value!r}")
    return list(dict.fromkeys(items))


def export(
    checkpoint: Annotated[Path | None, typer.Argument(help="Checkpoint: run folder, .safetensors or .json.")] = None,
    out: OutDir = Path("exported"),  # not "export": that is the source folder in a checkout
    fmt: Formats = "onnx",
    height: Height = None,
    width: Width = None,
    batch: BatchOpt = 1,
    top_k: TopK = None,
    opset: Opset = 17,
    precision: PrecisionOpt = "fp32",
    calib: Calib = None,
    simplify: Simplify = False,
    body: Body = False,
    score_thresh: DefaultThresh = None,
    score_floor: Floor = None,
    from_onnx: FromOnnx = None,
    device: Device = "auto",
) -> None:
    """Export a trained model; checks and an engine-level parity table run after every export."""
    with handle_errors():
        formats = _split(fmt, ("onnx", "trt"), "--format")
        if from_onnx is not None:
            if checkpoint is not None or formats != ["trt"]:
                raise ConfigError("--from builds a TensorRT engine from an ONNX file: give --format trt and no checkpoint")
            _build_trt([from_onnx], device)
            return
        if checkpoint is None:
            raise ConfigError("give a checkpoint to export (or --from model.onnx --format trt)")
        precisions = _split(precision, ("fp32", "fp16", "int8"), "--precision")
        from clothparse.export.exporter import ExportSpec

        spec = ExportSpec(height, width, batch, top_k, opset, score_thresh, score_floor, None, simplify)
        onnx_files = _export_onnx(checkpoint, out, spec, precisions, calib, body)
        if "trt" in formats:
            _build_trt(onnx_files, device)


def _export_onnx(checkpoint: Path, out: Path, spec: Any, precisions: list[str], calib: Path | None, body: bool) -> list[Path]:
    from dataclasses import replace

    from clothparse.export import parity
    from clothparse.export.exporter import derive_precision, export_onnx_model
    from clothparse.model.checkpoint import load_checkpoint, resolve_checkpoint

    calib_images = _calibration_images(calib) if "int8" in precisions else []
    loaded = load_checkpoint(checkpoint)
    names = list(loaded.class_names)
    if body:
        if "person" not in names:
            raise ModelError("--body: the model has no `person` class", checkpoint)
        spec = replace(spec, keep_labels=(names.index("person") + 1,))
    weights, _ = resolve_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx_model(loaded.model, names, out / "model.onnx", spec, source=weights)
    for note in fp32.notes:
        typer.echo(f"note: {note}")
    exported = [fp32]
    for prec in precisions:
        if prec != "fp32":
            variant = derive_precision(fp32.path, prec, out / f"model.{prec}.onnx", calib_images)
            exported.append(variant)
            for note in variant.notes:
                typer.echo(f"note: {note}")
    rows = parity.export_parity(loaded.model, [e.path for e in exported])
    typer.echo(parity.format_table(rows))
    for e in exported:
        typer.echo(f"wrote {e.path} (+ {e.path.name}.json)")
    failed = [r.name for r in rows if not r.ok]
    if failed:
        raise ModelError(f"parity check failed: {', '.join(failed)}", fp32.path)
    return [e.path for e in exported]


def _build_trt(onnx_files: list[Path], device: str) -> None:
    """A TensorRT engine from each ONNX file, then parity of each engine against its ONNX
    file in ONNX Runtime (which was checked against the torch engine when it was exported)."""
    from clothparse.contract.sidecar import load_sidecar
    from clothparse.engines.onnx_engine import OnnxEngine
    from clothparse.engines.trt_engine import TrtEngine
    from clothparse.export import parity
    from clothparse.export.trt_builder import build_engine

    rows = []
    for path in onnx_files:
        if not path.is_file():
            raise ModelError("no such ONNX file", path)
        result = build_engine(path, path.with_suffix(".engine"), device=device, timing_cache=path.parent / "timing-cache")
        typer.echo(f"wrote {result.path} (TensorRT {result.trt_version})")
        sc = load_sidecar(result.path)
        photos = parity.parity_photos(sc.min_size)
        ref = OnnxEngine(path, device="cpu", score_thresh=sc.score_floor)
        test = TrtEngine(result.path, device=device, score_thresh=sc.score_floor)
        tol = parity.FP32 if sc.precision == "fp32" else parity.REDUCED[sc.precision]
        name = f"tensorrt {sc.precision} vs onnxruntime ({len(photos)} photos)"
        rows.append(parity.engine_parity(name, ref, test, photos, sc.score_floor, tol))
    typer.echo(parity.format_table(rows))
    failed = [r.name for r in rows if not r.ok]
    if failed:
        raise ModelError(f"parity check failed: {', '.join(failed)}", onnx_files[0])
