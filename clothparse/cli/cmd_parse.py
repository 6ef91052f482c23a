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
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clothparse.cli.errors import EXIT_ERROR, EXIT_PARTIAL, handle_errors, report
from clothparse.cli.options import (
    BodyModelOrNone,
    BodyScore,
    Device,
    EngineName,
    EnginePrecision,
    EngineThreads,
    ModelPath,
    OutDir,
    Quiet,
    ScoreThresh,
    SpBackend,
)
from clothparse.errors import ConfigError, CptError, DataError
from clothparse.parse.batch import (
    BatchSummary,
    Outcome,
    drop_own_outputs,
    expand_inputs,
    load_image_ids,
    run_batch,
)
from clothparse.parse.build import EngineChoice, batch_size, build_parser, fusion_params
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.outputs import OverlayOptions
from clothparse.parse.pipeline import STAGES, Parser, SlicParams
from clothparse.parse.threads import DEFAULT_WORKERS
from clothparse.parse.views import MIN_BOX_AREA, VIEWS
from clothparse.taxonomy import MODANET_CLASSES

Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="INPUTS", help="Photos: files, folders (their images) and globs ('dir/**/*.jpg'); optional with --manifest."
    ),
]
RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run on Ray Data (pip install 'clothparse\\[ray]'): the same files, plus results_manifest.parquet (a row "
        "per photo); photos whose outputs exist are skipped (--skip-existing is implied, --workers unused), so "
        "re-running resumes.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option("--ray-address", help="--ray: the cluster (auto, ray://HOST:10001); default RAY_ADDRESS or a new local one."),
]
ActorsOpt = Annotated[
    int | None,
    typer.Option("--actors", min=1, help="--ray: parsing actors (default: one per GPU; on CPU cores // 4)."),
]
GpusPerActor = Annotated[
    float | None,
    typer.Option("--gpus-per-actor", min=0.0, help="--ray: GPUs per actor (default: 1 on CUDA, 0 on CPU; fractions share a GPU)."),
]
ManifestOpt = Annotated[
    str | None,
    typer.Option(
        "--manifest",
        help="--ray: more photos, from a file: text (a path a line), JSONL (a 'path' field) or Parquet (a 'path' "
        "column); local paths or URIs pyarrow opens (s3://...).",
    ),
]
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


def parse(
    model: ModelPath,
    out: OutDir,
    inputs: Inputs = None,
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
    ray: RayOpt = False,
    ray_address: RayAddress = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusPerActor = None,
    manifest: ManifestOpt = None,
) -> None:
    """Parse clothing in photos: masks, a 0-14 label map, an overlay, and COCO results."""
    if not inputs and not manifest:  # a usage error (exit 2), raised where Click handles it
        raise typer.BadParameter("give photos (or --manifest FILE with --ray)", param_hint="'INPUTS...'")
    with handle_errors():
        fusion = fusion_params(vote, skin_rule, soft_thresh)
        if no_superpixel and (show_superpixels or unpredicted_only):
            raise ConfigError("--show-superpixels and --unpredicted-only need the superpixel stage (drop --no-superpixel)")
        view = view.lower()
        if view not in VIEWS:
            raise ConfigError(f"--view: unknown view {view!r}; choose {', '.join(VIEWS[:-1])} or {VIEWS[-1]}")
        if unpredicted_only and view != "parse":
            raise ConfigError(f"--unpredicted-only colours the parse view's grown superpixels; drop it or --view {view}")
        options = OverlayOptions(show_boxes, show_superpixels, unpredicted_only, png_level, view, detector_boxes)
        if not ray and (ray_address is not None or actors is not None or gpus_per_actor is not None or manifest):
            raise ConfigError("--ray-address, --actors, --gpus-per-actor and --manifest need --ray")
        if ray:
            from clothparse.distributed.actor import ParserSpec
            from clothparse.distributed.ray_parse import RaySettings, parse_on_ray

            spec = ParserSpec(model, body_model, EngineChoice(engine, device, precision, threads), score_thresh,
                              body_score_thresh, None if no_superpixel else superpixels, fusion,
                              SlicParams(n_segments, compactness, sigma), batch or 1, quiet)
            summary = parse_on_ray(inputs or [], manifest, out, spec, options,
                                   load_image_ids(ann) if ann is not None else None,
                                   RaySettings(ray_address, actors, gpus_per_actor), report, quiet)
        else:
            paths, input_errors = expand_inputs(inputs or [])
            paths = drop_own_outputs(paths, out)
            for err in input_errors:
                report(err)
            if not paths:
                raise DataError("no images to parse")
            image_ids = load_image_ids(ann) if ann is not None else None
            parser = build_parser(
                model, body_model, EngineChoice(engine, device, precision, threads), score_thresh, body_score_thresh,
                None if no_superpixel else superpixels, fusion, SlicParams(n_segments, compactness, sigma), batch or 1, quiet,
            )
            batch = batch_size(parser.clothing, batch)
            summary = _run(parser, paths, out, options, skip_existing, image_ids, quiet, batch, workers)
            summary.input_errors = input_errors
        for p in summary.missing_ids:
            print(f"warning: {p}: not in {ann}; left out of results_coco.json", file=sys.stderr)
        if ann is None:
            print(f"warning: {summary.results_path}: {POSITIONAL_IDS_WARNING}", file=sys.stderr)
        _print_summary(summary, out)
        if summary.failed:
            raise typer.Exit(EXIT_PARTIAL if summary.count("ok") + summary.count("skipped") else EXIT_ERROR)


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
