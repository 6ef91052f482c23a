"""The driver of ``cpt parse --ray``: plan the actors, run the Ray Data pipeline, collect the rows.

    list photos (driver) -> from_items(index, path, name) -> read bytes (tasks, num_cpus=0)
      -> PhotoParser actors (decode, model, refine, encode, write; ``--actors`` of them)
      -> result rows (driver) -> results_coco.json + results_manifest.parquet

Photos whose three outputs exist are ``skipped`` before anything starts, so re-running the
same command resumes where the last run stopped. The object store carries encoded bytes and
small result rows, never decoded images or masks. An actor that dies is restarted by Ray and
its unfinished block retried: Ray Data's actor pools default to ``max_restarts=-1`` and
``max_task_retries=-1`` (set explicitly they are deprecated ``ray_remote_args`` in Ray 2.60);
the new attempt skips the photos of that block the dead one had already written, so no photo
is written twice or lost. A bad photo is an ``error`` row; a bug in cpt fails the job.

Resources (``plan_actors``): on CUDA each actor requests ``--gpus-per-actor`` GPUs (default 1)
and the device ``cuda``; otherwise ``cpu``. Each actor also requests ``threads`` CPUs and caps
torch, Numba, the native SLIC and ONNX Runtime/OpenVINO at that many threads, so that
actors x threads <= the cores of the nodes they are packed on.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothparse.device import parse_device
from clothparse.distributed.actor import CRASH_HOOK_ENV, ParserSpec, PhotoParser, read_sources
from clothparse.distributed.manifest import RAY_EXTRA_HINT, Source, collect_sources, outputs_exist
from clothparse.distributed.results import (
    RESULTS_MANIFEST_NAME,
    Row,
    assemble,
    make_row,
    write_results_manifest,
)
from clothparse.errors import ConfigError, CptError, DataError, DependencyError
from clothparse.parse.batch import BatchSummary
from clothparse.parse.outputs import OverlayOptions

#: CPU threads per CPU actor when ``--actors`` is not given (actors = cores // this).
DEFAULT_CPU_THREADS = 4
#: Most rows per block (one read task, one unit of work for an actor, retried as a whole);
#: fewer when that leaves under ``BLOCKS_PER_ACTOR`` blocks per actor; never under ``--batch``.
ROWS_PER_BLOCK = 8
BLOCKS_PER_ACTOR = 4


@dataclass(frozen=True)
class RaySettings:
    """The ``--ray*`` options: ``address`` (None: ``RAY_ADDRESS`` or a new local instance;
    ``auto``: the cluster running on this node; ``ray://host:10001``: a remote one),
    ``actors`` (None: one per GPU, or cores // ``DEFAULT_CPU_THREADS`` on CPU),
    and ``gpus_per_actor`` (None: 1 on CUDA, 0 on CPU). ``--batch`` is ``ParserSpec.batch``."""

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None


@dataclass(frozen=True)
class ActorPlan:
    """How many ``PhotoParser`` actors run, each with ``threads`` CPUs, ``gpus`` GPUs, on ``device``."""

    actors: int
    threads: int
    gpus: float
    device: str


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line ``DependencyError`` naming the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise DependencyError(f"--ray needs Ray Data, which is not installed: {RAY_EXTRA_HINT}") from None
    return ray


def plan_actors(node_cpus: Sequence[float], total_gpus: float, settings: RaySettings, device: str,
                engine_threads: int = 0) -> ActorPlan:
    """The actors for a cluster whose alive nodes have ``node_cpus`` CPUs and ``total_gpus`` GPUs.

    GPU actors when ``--gpus-per-actor`` > 0, ``--device cuda[:N]``, or ``--device auto`` on a
    cluster with GPUs. Threads per actor: ``--threads`` if given, else the most that still
    packs every actor onto the nodes (cores // actors at most). ``ConfigError`` when the
    actors cannot all be placed (the job would wait for resources forever)."""
    kind, _ = parse_device(device)
    cpus = int(sum(node_cpus))
    if settings.actors is not None and settings.actors < 1:
        raise ConfigError(f"--actors must be >= 1, got {settings.actors}")
    if settings.gpus_per_actor is not None and settings.gpus_per_actor < 0:
        raise ConfigError(f"--gpus-per-actor must be >= 0, got {settings.gpus_per_actor}")
    if settings.gpus_per_actor is not None:
        gpu = settings.gpus_per_actor > 0
        if not gpu and kind == "cuda":
            raise ConfigError(f"--device {device} needs --gpus-per-actor > 0 (or leave it out)")
    else:
        gpu = kind == "cuda" or (kind == "auto" and total_gpus > 0)
    per = (settings.gpus_per_actor or 1.0) if gpu else 0.0
    if gpu:
        if total_gpus < per:
            raise ConfigError(f"--device {device}: the Ray cluster has {total_gpus:g} GPUs, an actor needs {per:g}")
        actors = settings.actors or max(1, int(total_gpus // per))
        if actors * per > total_gpus:
            raise ConfigError(f"--actors {actors} x --gpus-per-actor {per:g} > {total_gpus:g} GPUs in the Ray cluster")
    else:
        actors = settings.actors or max(1, cpus // DEFAULT_CPU_THREADS)
    want = engine_threads or max(1, cpus // actors)
    threads = next((t for t in range(want, 0, -1) if sum(int(c // t) for c in node_cpus) >= actors), 0)
    if threads == 0 or (engine_threads and threads != engine_threads):
        raise ConfigError(f"--actors {actors} x {want} threads do not fit the Ray cluster's CPUs "
                          f"({', '.join(f'{c:g}' for c in node_cpus)} per node)")
    return ActorPlan(actors, threads, per, "cuda" if gpu else "cpu")


def parse_on_ray(
    inputs: Sequence[str], manifest: str | Path | None, out_dir: Path, spec: ParserSpec, options: OverlayOptions,
    image_ids: dict[str, int] | None, settings: RaySettings, on_error: Callable[[CptError], None],
    quiet: bool = False,
) -> BatchSummary:
    """Parse every photo of ``inputs`` and ``manifest`` into ``out_dir`` on Ray; returns the
    summary ``cpt parse`` prints. Input errors and error rows go to ``on_error`` as they come;
    ``out_dir`` gets the per-photo files, ``results_coco.json`` and ``results_manifest.parquet``."""
    ray = import_ray()
    sources, input_errors = collect_sources(inputs, manifest, out_dir)
    for err in input_errors:
        on_error(err)
    if not sources:
        raise DataError("no images to parse")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[int, Row] = {}
    todo = []
    for s in sources:
        if outputs_exist(out_dir, s.name):
            rows[s.index] = make_row(s.index, s.path, s.name, "skipped")
        else:
            todo.append(s)
    if todo:
        started = _connect(ray, settings.address, quiet)
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            plan = plan_actors([float(n["Resources"].get("CPU", 0)) for n in nodes],
                               float(ray.cluster_resources().get("GPU", 0)), settings, spec.how.device,
                               spec.how.threads)
            for row in run_pipeline(todo, out_dir, spec, options, plan, quiet):
                rows[row["index"]] = row
                if row["status"] == "error":
                    on_error(CptError(row["error"]))
        finally:
            if started:
                ray.shutdown()
    lost = [s.path for s in sources if s.index not in rows]
    if lost:  # Ray returned fewer rows than it was given: a bug, not a photo's fault
        raise RuntimeError(f"{len(lost)} photos came back without a result, e.g. {lost[0]}")
    ordered = [rows[s.index] for s in sources]
    summary = assemble(out_dir, ordered, image_ids, input_errors)
    write_results_manifest(out_dir / RESULTS_MANIFEST_NAME, ordered)
    return summary


def _connect(ray: Any, address: str | None, quiet: bool) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local instance.
    Returns whether this call started Ray (so the caller shuts it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": logging.WARNING if quiet else logging.INFO}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    ray.init(address=address, **kwargs)
    return True


def run_pipeline(
    todo: Sequence[Source], out_dir: Path, spec: ParserSpec, options: OverlayOptions, plan: ActorPlan,
    quiet: bool = False,
) -> Iterator[Row]:
    """Run the Ray Data pipeline on ``todo`` (Ray already initialised); yields one result row
    per photo (``clothparse.distributed.results``), in completion order."""
    import ray.data

    batch = max(1, spec.batch)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not quiet
    if quiet:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    per_block = max(batch, min(ROWS_PER_BLOCK, math.ceil(len(todo) / (BLOCKS_PER_ACTOR * plan.actors))))
    items = [{"index": s.index, "path": s.path, "name": s.name} for s in todo]
    ds: Any = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / per_block)))
    # Reading is I/O: it takes no CPU slot, so it never waits behind actors holding every core.
    ds = ds.map_batches(read_sources, batch_format="pyarrow", batch_size=None, num_cpus=0,
                        compute=ray.data.TaskPoolStrategy(size=max(2, 2 * plan.actors)))
    ds = ds.map_batches(
        PhotoParser,
        fn_constructor_kwargs={
            "spec": spec, "out_dir": str(out_dir), "options": options, "threads": plan.threads,
            "device": plan.device, "crash_hook": os.environ.get(CRASH_HOOK_ENV),
        },
        batch_format="pyarrow", batch_size=batch, compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.threads,
        num_gpus=plan.gpus or None,
    )
    table: Any
    for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from table.to_pylist()
