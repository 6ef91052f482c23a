"""`cpt export`: checkpoint -> static-shape ONNX (+ int8 QDQ) and/or TensorRT engine.

Every export is followed by the ONNX checker, the TensorRT-readiness graph checks and a
parity table (exported model vs the PyTorch wrapper, wrapper vs torchvision); a failed
check or parity fails the command (exit code 1). Reduced-precision files (int8, fp16)
get the same table for information: they are not expected to match bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clothparse.cli.errors import handle_errors
from clothparse.cli.options import OutDir, ScoreThresh
from clothparse.errors import ConfigError, ModelError

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _calibration_images(folder: Path | None, limit: int = 64) -> list:
    from clothparse.io.images import read_rgb

    if folder is None:
        raise ConfigError("--precision int8 needs calibration photos: --calib DIR")
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ConfigError("no images found for calibration", folder)
    return [read_rgb(p) for p in files]


def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint: run folder, .safetensors or .json.")],
    out: OutDir = Path("exported"),  # not "export": that is the source folder in a checkout
    fmt: Annotated[str, typer.Option("--format", help="Comma-separated: onnx, trt.")] = "onnx",
    height: Annotated[int, typer.Option("--height", help="Export height (multiple of 32).")] = 800,
    width: Annotated[int, typer.Option("--width", help="Export width (multiple of 32).")] = 1024,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Fixed batch size of the exported model.")] = 1,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Detections per image (padded with score 0).")] = 100,
    opset: Annotated[int, typer.Option("--opset", min=16, help="ONNX opset (RoiAlign needs >= 16).")] = 17,
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 (trt only) or int8.")] = "fp32",
    calib: Annotated[Path | None, typer.Option("--calib", help="Folder of photos for int8 calibration.")] = None,
    simplify: Annotated[bool, typer.Option("--simplify", help="Run onnxsim when installed.")] = False,
    body: Annotated[bool, typer.Option("--body", help="Keep only the `person` class (body model).")] = False,
    score_thresh: ScoreThresh = None,
) -> None:
    """Export a trained model; checks and a parity table run after every export."""
    with handle_errors():
        _export(checkpoint, out, fmt, height, width, batch, top_k, opset, precision, calib, simplify, body, score_thresh)


def _export(
    checkpoint: Path, out: Path, fmt: str, height: int, width: int, batch: int, top_k: int, opset: int,
    precision: str, calib: Path | None, simplify: bool, body: bool, score_thresh: float | None,
) -> None:
    import onnx

    from clothparse.export import graph_checks, onnx_export, parity, sidecar
    from clothparse.export.trt_builder import Precision
    from clothparse.export.wrapper import ExportWrapper
    from clothparse.model.checkpoint import load_checkpoint, resolve_checkpoint

    formats = [f.strip().lower() for f in fmt.split(",") if f.strip()]
    if not formats or any(f not in ("onnx", "trt") for f in formats):
        raise ConfigError(f"--format: expected onnx and/or trt, got {fmt!r}")
    if height % 32 or width % 32 or min(height, width) < 64:
        raise ConfigError(f"--height/--width must be multiples of 32 and >= 64, got {height}x{width}")
    try:
        prec = Precision(precision.lower())
    except ValueError:
        raise ConfigError(f"--precision: expected fp32, fp16 or int8, got {precision!r}") from None
    if prec == Precision.FP16 and "trt" not in formats:
        raise ConfigError("--precision fp16 is for --format trt (ONNX Runtime CPU has no fp16 kernels)")
    calib_images = _calibration_images(calib) if prec == Precision.INT8 else []

    loaded = load_checkpoint(checkpoint)
    names = list(loaded.class_names)
    keep = None
    if body:
        if "person" not in names:
            raise ModelError("--body: the model has no `person` class", checkpoint)
        keep = [names.index("person") + 1]
    wrapper = ExportWrapper(loaded.model, height, width, top_k=top_k, keep_labels=keep, score_thresh=score_thresh)
    weights, _ = resolve_checkpoint(checkpoint)
    source_sha = sidecar.sha256_file(weights)

    def write_meta(path: Path, runtime: str, file_prec: str) -> None:
        sc = sidecar.Sidecar(
            class_names=names, height=height, width=width, batch=batch, top_k=top_k, opset=opset,
            precision=file_prec, runtime=runtime, model_sha256=sidecar.sha256_file(path),
            score_thresh=wrapper.score_thresh, image_mean=wrapper.mean.flatten().tolist(),
            image_std=wrapper.std.flatten().tolist(), keep_labels=keep, source_checkpoint=str(weights),
            source_sha256=source_sha, mask_size=28,
        )
        sidecar.write_sidecar(path, sc)

    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    result = onnx_export.export_onnx(wrapper, onnx_path, batch=batch, opset=opset, do_simplify=simplify)
    for note in result.notes:
        typer.echo(f"note: {note}")
    report = graph_checks.check_graph(onnx.load(str(onnx_path)))
    typer.echo(report.summary())
    if not report.ok:
        raise ModelError(report.summary(), onnx_path)
    write_meta(onnx_path, "onnx", "fp32")

    from clothparse.engines.onnx_engine import OnnxEngine

    batches = parity.batched(parity.sample_images(height, width), batch, height, width)
    rows = parity.parity_rows("onnxruntime", loaded.model, wrapper, OnnxEngine(onnx_path, device="cpu").run_raw,
                              batches, names, top_k)
    info_rows = []
    written = [onnx_path]
    if "onnx" in formats and prec == Precision.INT8:
        from clothparse.export.quantize import quantize_int8

        q_path = quantize_int8(onnx_path, out / "model.int8.onnx", calib_images, batch, height, width)
        write_meta(q_path, "onnx", "int8")
        written.append(q_path)
        info_rows += parity.parity_rows("onnxruntime int8", loaded.model, wrapper,
                                        OnnxEngine(q_path, device="cpu").run_raw, batches, names, top_k, False)
    if "trt" in formats:
        from clothparse.engines.trt_engine import TrtEngine
        from clothparse.export.trt_builder import EngineBuilder

        engine_path = out / f"model.{prec.value}.engine"
        EngineBuilder(onnx_path).build(engine_path, prec, calib_images, out / "calib.cache", out / "timing.cache")
        write_meta(engine_path, "trt", prec.value)
        written.append(engine_path)
        trt_rows = parity.parity_rows(f"tensorrt {prec.value}", loaded.model, wrapper,
                                      TrtEngine(engine_path).run_raw, batches, names, top_k, False)
        (rows if prec == Precision.FP32 else info_rows).extend(trt_rows)
    typer.echo(parity.format_table(rows))
    if info_rows:
        typer.echo("reduced precision (for information, not a pass/fail check):")
        typer.echo(parity.format_table(info_rows))
    for path in written:
        typer.echo(f"wrote {path} (+ {sidecar.sidecar_path(path).name})")
    failed = [r.name for r in rows if not r.ok]
    if failed:
        raise ModelError(f"parity check failed: {', '.join(failed)}", onnx_path)
