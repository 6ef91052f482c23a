"""`cpt bench`: time every stage of the parse pipeline over a grid of configurations.

Writes ``bench.json``, ``bench.md`` and ``bench.png`` into ``--out`` and prints rich
tables; ``--compare OLD.json`` adds the new/old ratio of every configuration present in
both. A configuration that does not apply here, or whose optional dependency is missing, is
a skipped row with the reason (what to install). A configuration that crashes is a failed row
with the error (and its traceback in bench.json): the grid goes on, the reports are written,
and the command exits 3 (EXIT_PARTIAL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clothparse.cli.errors import EXIT_PARTIAL, handle_errors
from clothparse.cli.options import BodyModelPath, Device, OutDir

_SP = "Superpixel backends (auto,skimage,native)."


def bench(
    engines: Annotated[str, typer.Option("--engines", help="Comma-separated engines: torch,onnx,openvino,trt.")] = "torch,onnx",
    precision: Annotated[str, typer.Option("--precision", help="Comma-separated: fp32,fp16,int8 (the export's), bf16 (openvino on CPUs with bfloat16).")] = "fp32",
    sizes: Annotated[str, typer.Option("--sizes", help="Comma-separated input sizes HxW, e.g. 800x1024,600x400.")] = "800x1024",
    batch: Annotated[str, typer.Option("--batch", help="Comma-separated batch sizes, e.g. 1,2.")] = "1",
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Clothing checkpoint or exported .onnx/.engine (default: random-init --backbone).")] = None,
    body_model: BodyModelPath = None,
    backbone: Annotated[str, typer.Option("--backbone", help="Backbone of the random-init model when no --model: small, resnet50, resnet101.")] = "resnet101",
    images: Annotated[Path | None, typer.Option("--images", help="Folder of photos (default: synthetic scenes).")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed iterations per configuration.")] = 2,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed iterations per configuration.")] = 10,
    superpixels: Annotated[str, typer.Option("--superpixels", help=_SP)] = "auto",
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Also time the seed's way, fast-slic and scikit-image vs native SLIC.")] = True,
    out: OutDir = Path("bench_out"),
    compare: Annotated[Path | None, typer.Option("--compare", help="An older bench.json: print new/old ratios per configuration.")] = None,
    device: Device = "auto",
) -> None:
    """Benchmark the parse pipeline stage by stage (decode ... encode) and end to end."""
    with handle_errors():
        from clothparse.bench import report as rep
        from clothparse.bench.suite import SuiteConfig, failures, parse_list, parse_sizes, run_suite
        from clothparse.errors import ConfigError

        old = rep.load_report(compare) if compare is not None else None
        try:
            batches = [int(b) for b in parse_list(batch)]
        except ValueError:
            raise ConfigError(f"--batch: expected comma-separated integers, got {batch!r}") from None
        cfg = SuiteConfig(
            engines=parse_list(engines), precisions=parse_list(precision), sizes=parse_sizes(sizes), batches=batches,
            superpixels=parse_list(superpixels), model=model,
            body_model=str(body_model) if body_model is not None else None, backbone=backbone, images=images,
            warmup=warmup, repeat=repeat, baselines=baselines, out=out, device=device,
        )
        report = run_suite(cfg, log=lambda msg: typer.echo(msg, err=True))
        comparison = None
        if old is not None:
            comparison, unmatched = rep.compare(report, old)
            report["compare"] = {
                "old": str(compare),
                "rows": [{"name": c.name, "old_ms": c.old_ms, "new_ms": c.new_ms, "ratio": c.ratio, "stages": c.stage_ratios} for c in comparison],
                "unmatched": unmatched,
            }
        paths = rep.write_outputs(report, out)
        rep.print_tables(report, comparison)
        for p in paths.values():
            typer.echo(f"wrote {p}")
        failed = failures(report)
        for r in failed:
            where = f"{r['name']} {r['size']}" if "size" in r else r["name"]  # baselines rows carry a size
            typer.echo(f"error: {where}: {r['error']}", err=True)
        if failed:
            typer.echo(f"error: {len(failed)} benchmark configuration(s) failed; tracebacks in {paths['json']}", err=True)
            raise typer.Exit(EXIT_PARTIAL)
