"""`cpt parse`: parse clothing in photos (Mask R-CNN + body + superpixels) and write the outputs.

  cpt parse photos/ 'more/*.jpg' one.png --model RUN --out OUT

Per photo NAME: NAME.json, NAME_labels.png (palette label map 0-14), NAME_overlay.png
(--view parse, clothing or body and the display toggles change this one alone); for the
batch: results_coco.json (for `cpt eval --results`) and a summary table.
--body-model none parses without a body model: nothing becomes skin/body (label 14).
A bad photo prints one line `error: PATH: problem`; the batch goes on and exits 3
(EXIT_PARTIAL; 1 when no photo was parsed). An unexpected exception (a bug) stops the batch
and prints one `internal error` line (exit 4; CPT_DEBUG=1 for the traceback).
Without --ann the image ids in results_coco.json are positions in this run, and it says so.
Photos are decoded, run through the model (--batch at a time) and post-processed (--workers
threads) at the same time, with every output and message in input order; --workers 0 runs
one photo after the other and writes the same bytes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clothparse.cli.errors import EXIT_ERROR, EXIT_PARTIAL, handle_errors, report
from clothparse.cli.options import (
    BodyModelOrNone,
    Device,
    EngineName,
    EnginePrecision,
    EngineThreads,
    ModelPath,
    OutDir,
    Quiet,
    ScoreThresh,
)
from clothparse.engines.base import Engine
from clothparse.errors import ConfigError, CptError, DataError
from clothparse.parse.batch import (
    BatchSummary,
    Outcome,
    drop_own_outputs,
    engine_batch,
    expand_inputs,
    load_image_ids,
    run_batch,
)
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.outputs import OverlayOptions
from clothparse.parse.pipeline import STAGES, Parser, SlicParams
from clothparse.parse.threads import DEFAULT_WORKERS
from clothparse.parse.views import MIN_BOX_AREA, VIEWS
from clothparse.taxonomy import MODANET_CLASSES

Inputs = Annotated[list[str], typer.Argument(help="Photos: files, folders (their images) and globs ('dir/**/*.jpg').")]
NoSuperpixel = Annotated[bool, typer.Option("--no-superpixel", help="Pixel level only: pasted masks, no SLIC/fusion.")]
Vote = Annotated[
    str,
    typer.Option(
        "--vote",
        help="Superpixel vote: area (share of the superpixel inside a mask), centroid (the original's: the centroid "
        "or one of its 4 neighbours inside a mask) or soft (mean mask probability >= --soft-thresh).",
    ),
]
SkinRule = Annotated[
    str,
    typer.Option(
        "--skin-rule",
        help="growth (the original's: skin-coloured superpixels are never grown into clothing, masked ones keep "
        "their class) or all (skin-coloured superpixels inside the body never become clothing).",
    ),
]
SoftThresh = Annotated[
    float, typer.Option("--soft-thresh", min=0.0, max=1.0, help="--vote soft: the mean mask probability a superpixel needs.")
]
BodyScore = Annotated[
    float, typer.Option("--body-score-thresh", min=0.0, max=1.0, help="Keep person detections with score >= this.")
]
ViewOpt = Annotated[
    str,
    typer.Option(
        "--view",
        help="Overlay view: parse (the refined parsing map), clothing (each clothing detection's pasted mask in its "
        "own colour, captions class+score, no body) or body (the person masks alone, one colour). It changes "
        "NAME_overlay.png only: NAME_labels.png and NAME.json are always the parse result.",
    ),
]
ShowBoxes = Annotated[
    bool,
    typer.Option(
        "--show-boxes",
        help=f"Overlay: box each connected region of each clothing class in the label map, in its class colour "
        f"(regions under {MIN_BOX_AREA} px get none); clothing and body views: the detector boxes.",
    ),
]
DetectorBoxes = Annotated[
    bool, typer.Option("--detector-boxes", help="Overlay: draw the detector boxes (the person boxes in the body view).")
]
ShowSp = Annotated[bool, typer.Option("--show-superpixels", help="Overlay: draw SLIC superpixel boundaries (in every view).")]
UnpredOnly = Annotated[
    bool,
    typer.Option(
        "--unpredicted-only",
        help="Overlay, parse view: colour only the superpixels that growth turned from unpredicted into clothing.",
    ),
]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Skip photos whose three outputs already exist.")]
SpBackend = Annotated[str, typer.Option("--superpixels", help="SLIC backend: auto, skimage or native.")]
# Checked (and defaulted) by SlicParams, the one place for both.
NSegments = Annotated[int, typer.Option("--n-segments", help="SLIC: about this many superpixels (>= 1).")]
Compactness = Annotated[float, typer.Option("--compactness", help="SLIC compactness (> 0).")]
Sigma = Annotated[float, typer.Option("--sigma", help="SLIC Gaussian smoothing sigma (>= 0).")]
BatchOpt = Annotated[
    int | None,
    typer.Option("--batch", min=1, help="Photos per engine call (default: the model's own: an export's fixed batch, else 1)."),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers", min=0,
        help="Post-model threads (superpixels, fusion, encoding, writing) beside the decoding and model threads; "
        "0: one photo after the other.",
    ),
]
PngLevel = Annotated[
    int,
    typer.Option("--png-level", min=0, max=9, help="Overlay PNG zlib level 0-9: 1 is fast, 9 smallest; the label map is always small."),
]
AnnOpt = Annotated[
    Path | None,
    typer.Option("--ann", help="COCO annotation JSON whose file_name -> id mapping names images in results_coco.json."),
]

POSITIONAL_IDS_WARNING = (
    "image ids are positions in this run (1..N), not dataset ids, so `cpt eval --results` "
    "may score the wrong images; pass --ann ANN.json (the COCO file of these photos) to use its ids"
)


@dataclass(frozen=True)
class EngineChoice:
    """How the engines are opened: ``kind`` (None: from each file's type), the openvino
    ``precision`` and the model's CPU ``threads`` (0: the runtime's default)."""

    kind: str | None
    device: str
    precision: str = "auto"
    threads: int = 0


def _clothing_engine(path: Path, how: EngineChoice, score_thresh: float | None, batch: int, quiet: bool) -> Engine:
    from clothparse.engines.loader import open_engine

    eng = open_engine(path, kind=how.kind, device=how.device, score_thresh=score_thresh, batch_size=batch,
                      precision=how.precision, threads=how.threads)
    _print_note("clothing", eng, quiet)
    return eng


def _print_note(role: str, eng: Engine, quiet: bool) -> None:
    note = getattr(eng, "note", None)
    if note and not quiet:
        print(f"note: {role} model: {note}", file=sys.stderr)


def _no_body(path: Path | None) -> bool:
    """``--body-model none`` (any case): parse without a body model."""
    return path is not None and str(path).lower() == "none"


def _body_engine(path: Path | None, how: EngineChoice, score_thresh: float, batch: int, quiet: bool) -> Engine:
    """The body model: a checkpoint/exported file, a torchvision COCO ``.pth``, or the default
    torchvision COCO Mask R-CNN from the local cache (a clear error when it is not there)."""
    from clothparse.engines.torch_engine import TorchEngine

    if path is None or path.suffix.lower() in (".pth", ".pt"):
        from clothparse.model.builder import body_config, build_body_model

        if path is not None and not path.is_file():
            raise DataError("no such weights file", path)
        from clothparse.model.weights import flag_hint

        with flag_hint("--body-model"):
            model = build_body_model(init="coco", weights_path=path)
        return TorchEngine(model, tuple(body_config().class_names), how.device, score_thresh=score_thresh,
                           batch_size=batch)
    from clothparse.engines.loader import can_open, open_engine

    # --engine names the clothing model's runtime; the body file's own type decides here
    # unless that runtime reads it too (e.g. openvino for both .onnx exports).
    kind = how.kind if how.kind is not None and can_open(how.kind, path) else None
    # --precision int8 names the clothing model's Q/DQ export; a float body export runs at auto.
    precision = how.precision if kind == "openvino" and how.precision != "int8" else "auto"
    eng = open_engine(path, kind=kind, device=how.device, score_thresh=score_thresh, batch_size=batch,
                      precision=precision, threads=how.threads)
    _print_note("body", eng, quiet)
    return eng


def parse(
    inputs: Inputs,
    model: ModelPath,
    out: OutDir,
    body_model: BodyModelOrNone = None,
    engine: EngineName = None,
    precision: EnginePrecision = "auto",
    threads: EngineThreads = 0,
    no_superpixel: NoSuperpixel = False,
    vote: Vote = FusionParams.vote,
    skin_rule: SkinRule = FusionParams.skin_rule,
    soft_thresh: SoftThresh = FusionParams.soft_thresh,
    score_thresh: ScoreThresh = None,
    body_score_thresh: BodyScore = 0.5,
    device: Device = "auto",
    view: ViewOpt = "parse",
    show_boxes: ShowBoxes = False,
    detector_boxes: DetectorBoxes = False,
    show_superpixels: ShowSp = False,
    unpredicted_only: UnpredOnly = False,
    skip_existing: SkipExisting = False,
    superpixels: SpBackend = "auto",
    n_segments: NSegments = SlicParams.n_segments,
    compactness: Compactness = SlicParams.compactness,
    sigma: Sigma = SlicParams.sigma,
    ann: AnnOpt = None,
    batch: BatchOpt = None,
    workers: WorkersOpt = DEFAULT_WORKERS,
    png_level: PngLevel = OverlayOptions.png_level,
    quiet: Quiet = False,
) -> None:
    """Parse clothing in photos: masks, a 0-14 label map, an overlay, and COCO results."""
    with handle_errors():
        fusion = _fusion_params(vote, skin_rule, soft_thresh)
        if no_superpixel and (show_superpixels or unpredicted_only):
            raise ConfigError("--show-superpixels and --unpredicted-only need the superpixel stage (drop --no-superpixel)")
        view = view.lower()
        if view not in VIEWS:
            raise ConfigError(f"--view: unknown view {view!r}; choose {', '.join(VIEWS[:-1])} or {VIEWS[-1]}")
        if unpredicted_only and view != "parse":
            raise ConfigError(f"--unpredicted-only colours the parse view's grown superpixels; drop it or --view {view}")
        options = OverlayOptions(show_boxes, show_superpixels, unpredicted_only, png_level, view, detector_boxes)
        paths, input_errors = expand_inputs(inputs)
        paths = drop_own_outputs(paths, out)
        for err in input_errors:
            report(err)
        if not paths:
            raise DataError("no images to parse")
        image_ids = load_image_ids(ann) if ann is not None else None
        parser = _build_parser(
            model, body_model, EngineChoice(engine, device, precision, threads), score_thresh, body_score_thresh,
            None if no_superpixel else superpixels, fusion, SlicParams(n_segments, compactness, sigma), batch or 1, quiet,
        )
        batch = _batch_size(parser.clothing, batch)
        summary = _run(parser, paths, out, options, skip_existing, image_ids, quiet, batch, workers)
        summary.input_errors = input_errors
        for p in summary.missing_ids:
            print(f"warning: {p}: not in {ann}; left out of results_coco.json", file=sys.stderr)
        if ann is None:
            print(f"warning: {summary.results_path}: {POSITIONAL_IDS_WARNING}", file=sys.stderr)
        _print_summary(summary, out)
        if summary.failed:
            raise typer.Exit(EXIT_PARTIAL if summary.count("ok") + summary.count("skipped") else EXIT_ERROR)


def _fusion_params(vote: str, skin_rule: str, soft_thresh: float) -> FusionParams:
    """The fusion settings of ``--vote``, ``--skin-rule`` and ``--soft-thresh`` (one-line errors naming the flag)."""
    if vote not in ("area", "centroid", "soft"):
        raise ConfigError(f"--vote: unknown vote {vote!r}; choose area, centroid or soft")
    if skin_rule not in ("growth", "all"):
        raise ConfigError(f"--skin-rule: unknown rule {skin_rule!r}; choose growth or all")
    if not 0.0 < soft_thresh <= 1.0:
        raise ConfigError(f"--soft-thresh must be in (0, 1], got {soft_thresh}")
    return FusionParams(vote=vote, skin_rule=skin_rule, soft_thresh=soft_thresh)  # type: ignore[arg-type]


def _batch_size(engine: Engine, asked: int | None) -> int:
    """``--batch``, or the engine's own; warns when an export's fixed batch does not divide
    the asked one (its calls get padded)."""
    fixed = engine_batch(engine)
    if asked is None:
        return fixed or 1
    if fixed and asked % fixed:
        print(f"warning: --batch {asked} is not a multiple of the model's fixed batch {fixed}; "
              "its last call of every batch is padded", file=sys.stderr)
    return asked


def _build_parser(
    model: Path, body_model: Path | None, how: EngineChoice, score_thresh: float | None,
    body_score_thresh: float, sp_backend: str | None, fusion: FusionParams, slic: SlicParams, batch: int, quiet: bool,
) -> Parser:
    backend: Any = None
    if sp_backend is not None:
        from clothparse.parse.superpixels import get_backend

        backend = get_backend(sp_backend)
    clothing = _clothing_engine(model, how, score_thresh, batch, quiet)
    body = None if _no_body(body_model) else _body_engine(body_model, how, body_score_thresh, batch, quiet)
    return Parser(clothing, body, backend, fusion, slic, body_score_thresh=body_score_thresh)


def _run(
    parser: Parser, paths: list[Path], out: Path, options: OverlayOptions, skip_existing: bool,
    image_ids: dict[str, int] | None, quiet: bool, batch: int, workers: int,
) -> BatchSummary:
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("parse"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
        console=console, transient=True, disable=quiet,
    )
    with progress:
        task = progress.add_task("", total=len(paths))

        def done(o: Outcome) -> None:
            progress.update(task, advance=1, description=o.path.name)

        def failed(err: CptError) -> None:
            report(err)  # the live display redirects stderr, so the line lands above the bar

        return run_batch(parser, paths, out, options, skip_existing, image_ids, on_error=failed, on_done=done,
                         batch=batch, workers=workers)


def _print_summary(summary: BatchSummary, out: Path) -> None:
    console = Console()
    counts = summary.items_per_class()
    table = Table(title=f"cpt parse -> {out}")
    table.add_column("class")
    table.add_column("items", justify="right")
    for name in MODANET_CLASSES:
        if counts[name]:
            table.add_row(name, str(counts[name]))
    table.add_row("[bold]all[/bold]", str(sum(counts.values())))
    console.print(table)
    timings = summary.mean_timings_ms()
    if timings:
        console.print("mean ms per photo: " + ", ".join(f"{k} {timings[k]:.1f}" for k in STAGES if k in timings))
    console.print(
        f"photos: {summary.count('ok')} parsed, {summary.count('skipped')} skipped, {summary.failed} failed; "
        f"COCO results: {summary.results_path}",
        highlight=False,
    )
