"""`cpt eval`: COCO AP + the seed's merged-mask metrics of a model, or parsing mIoU of label maps.

Three modes:
  cpt eval --model CKPT --data DIR        run the model over a split, then score it
  cpt eval --results PRED.json --data DIR score an existing COCO results file
  cpt eval --parsing --pred D1 [--pred D2] --data DIR
                                          mIoU / boundary F / pixel accuracy of NAME_labels.png maps
Prints rich tables and writes a JSON report (``--out``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clothparse.cli.errors import EXIT_PARTIAL, handle_errors
from clothparse.cli.options import DataDir, Device, EngineName, EnginePrecision, Quiet, Split
from clothparse.errors import ConfigError
from clothparse.evaluate import report
from clothparse.evaluate.coco_eval import AP_SCORE_THRESH, CocoMetrics, GroundTruth, load_gt
from clothparse.evaluate.parsing_metrics import BOUNDARY_TOL
from clothparse.evaluate.runner import (
    evaluate_detections,
    evaluate_parsing,
    load_results,
    select_images,
    split_annotation_path,
)
from clothparse.evaluate.seed_metrics import DEFAULT_THRESHOLDS
from clothparse.io.atomic import write_json

ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model to run over the split: a checkpoint (run folder or .safetensors), or an exported .onnx/.engine."),
]
Task = Annotated[str, typer.Option("--task", help="clothing (DIR/<split>.json) or body (DIR/body_<split>.json).")]
EvalScoreThresh = Annotated[
    float,
    typer.Option(
        "--score-thresh", min=0.0, max=1.0,
        help="Keep detections with score >= this for AP (low on purpose: AP needs the low-score tail; "
        "the seed's 0.9 is a display threshold).",
    ),
]
MaxImages = Annotated[int | None, typer.Option("--max-images", min=1, help="Evaluate only the first N images (by id).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]
OutFile = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="JSON report (default: eval_<split>.json next to the checkpoint/results)."),
]
ResultsOpt = Annotated[
    Path | None, typer.Option("--results", help="Score this COCO results JSON (e.g. from `cpt parse`) instead of a model.")
]
ParsingFlag = Annotated[bool, typer.Option("--parsing", help="Evaluate parsing label maps (needs --pred).")]
BoundaryTol = Annotated[
    float,
    typer.Option(
        "--boundary-tol", min=0.0,
        help="--parsing: boundary F-score tolerance in pixels (a predicted boundary pixel within this "
        "distance of a ground-truth one of the same class is a hit, and vice versa).",
    ),
]
PredDirs = Annotated[
    list[Path] | None,
    typer.Option("--pred", help="Folder of NAME_labels.png maps; repeat for an ablation table (one column each)."),
]


def _default_out(anchor: Path, name: str) -> Path:
    """The report sits in the checkpoint folder, or beside a checkpoint/results file."""
    return (anchor if anchor.is_dir() else anchor.parent) / name


def _run_model(
    model_path: Path, gt: GroundTruth, data: Path, image_ids: list[int], *, task: str, engine: str | None,
    device: str, score_thresh: float, batch_size: int, quiet: bool, precision: str = "auto",
) -> tuple[list[dict[str, Any]], list[int], list[tuple[int, str]], dict[str, Any]]:
    """Open the model with its engine, check its classes against the annotations, run it over the images."""
    # Imported here: torch costs seconds, and the other eval modes never need it.
    from clothparse.engines.loader import engine_kind, open_engine
    from clothparse.evaluate.predict import label_mapping, predict_coco

    kind = engine or engine_kind(model_path)
    eng = open_engine(model_path, kind=kind, device=device, score_thresh=score_thresh, batch_size=batch_size,
                      precision=precision)
    note = getattr(eng, "note", None)
    if note and not quiet:
        print(f"note: {note}", file=sys.stderr)
    # A COCO body model knows 90 classes; the body split scores its person class only.
    mapping = label_mapping(eng.class_names, gt, allow_extra=task == "body")
    with Progress(
        TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=quiet, transient=True,
    ) as progress:
        bar = progress.add_task("images", total=len(image_ids))
        run = predict_coco(eng, gt, data / "images", image_ids, mapping, batch_size=batch_size,
                           on_image=lambda: progress.advance(bar))
    meta = {"model": str(model_path), "engine": kind, "class_names": list(eng.class_names), "device": device}
    sidecar = getattr(eng, "sidecar", None)
    if sidecar is not None:
        # The engine's own precision where it has one (openvino: f32, bf16, int8+bf16...).
        meta["precision"] = getattr(eng, "precision", sidecar.precision)
    return run.results, run.image_ids, run.failed, meta


def _print_detection_report(console: Console, payload: dict[str, Any], metrics: CocoMetrics) -> None:
    console.print(report.summary_table(metrics, f"COCO AP - {payload['task']} / {payload['split']} ({metrics.n_images} images)"))
    console.print(report.per_class_table(metrics))
    console.print(report.seed_table({float(t): s for t, s in payload["seed"].items()}))


def _parsing(
    data: Path, split: str, pred: list[Path], max_images: int | None, out: Path | None, console: Console,
    boundary_tol: float = BOUNDARY_TOL,
) -> None:
    columns = evaluate_parsing(pred, data, split, max_images, boundary_tol=boundary_tol)
    console.print(report.parsing_table(columns))
    for name, m in columns:
        if m.missing:
            console.print(f"[yellow]{name}: {len(m.missing)} ground-truth image(s) without a prediction, e.g. {m.missing[0]}_labels.png")
    out = out or _default_out(pred[0], f"eval_parsing_{split}.json")
    write_json(out, {
        "split": split, "data": str(data), "boundary_tol_px": boundary_tol,
        "columns": {n: m.to_dict() for n, m in columns},
    })
    console.print(f"report: {out}")


def evaluate(
    data: DataDir,
    model: ModelOpt = None,
    engine: EngineName = None,
    precision: EnginePrecision = "auto",
    split: Split = "test",
    task: Task = "clothing",
    score_thresh: EvalScoreThresh = AP_SCORE_THRESH,
    max_images: MaxImages = None,
    device: Device = "auto",
    batch_size: BatchSize = 2,
    out: OutFile = None,
    results: ResultsOpt = None,
    parsing: ParsingFlag = False,
    pred: PredDirs = None,
    boundary_tol: BoundaryTol = BOUNDARY_TOL,
    quiet: Quiet = False,
) -> None:
    """Score a model (COCO bbox/segm AP, per-class AP, seed merged-mask metrics) or parsing maps (mIoU, boundary F)."""
    console = Console()
    failed: list[tuple[int, str]] = []
    with handle_errors():
        if parsing:
            _parsing(data, split, list(pred or []), max_images, out, console, boundary_tol)
            return
        if (model is None) == (results is None):
            raise ConfigError("give exactly one of --model CKPT or --results PRED.json (or --parsing --pred DIR)")
        ann_path = split_annotation_path(data, split, task)
        gt = load_gt(ann_path)
        image_ids = select_images(gt, max_images)
        payload: dict[str, Any] = {"task": task, "split": split, "data": str(data), "annotations": str(ann_path)}
        if model is not None:
            preds, image_ids, failed, meta = _run_model(
                model, gt, data, image_ids, task=task, engine=engine,
                device=device, score_thresh=score_thresh, batch_size=batch_size, quiet=quiet, precision=precision,
            )
            payload.update(meta, score_thresh=score_thresh)
            out = out or _default_out(model, f"eval_{split}.json")
            results_path = out.with_name(f"{out.stem}_results.json")
            write_json(results_path, preds, indent=None)
            payload["results_file"] = str(results_path)
        else:
            assert results is not None
            preds, n_outside = load_results(results, gt)
            payload.update(results_file=str(results), results_outside_split=n_outside)
            out = out or _default_out(results, f"eval_{split}.json")
        if min(DEFAULT_THRESHOLDS) < score_thresh and model is not None:
            console.print(f"[yellow]note: --score-thresh {score_thresh} is above {min(DEFAULT_THRESHOLDS)}; seed metrics at lower thresholds see only detections >= {score_thresh}")
        metrics_dict = evaluate_detections(gt, preds, image_ids)
        payload.update(metrics_dict, failed=[{"image_id": i, "error": e} for i, e in failed])
        write_json(out, payload)
        metrics = CocoMetrics(
            {k: metrics_dict[k] for k in ("bbox", "segm")}, metrics_dict["per_class"],
            metrics_dict["n_images"], metrics_dict["n_detections"],
        )
        _print_detection_report(console, payload, metrics)
        for _, err in failed:
            typer.echo(f"error: {err}", err=True)
        console.print(f"report: {out}")
    if failed:
        raise typer.Exit(EXIT_PARTIAL)
