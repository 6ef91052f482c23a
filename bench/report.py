"""Reports of the benchmark suite: machine/versions, JSON, Markdown, PNG plot, rich table, --compare.

Report dict (``bench.json``): ``format``, ``created``, ``machine`` (cpu, cores, gpu,
platform), ``versions`` (python, torch, torchvision, onnxruntime, numba, clothparse
git commit...), ``settings``, ``notes``, ``rows`` (one per grid cell; ``status`` "ok"
with ``stages`` {stage: stats in ms}, ``end_to_end`` (per batch), ``throughput_ips``,
``post_model_share``, ``peak_rss_mb``, ``peak_gpu_mb``; "skipped" with ``reason`` (does
not apply here, or a missing optional dependency: what to install); or "failed" with
``error`` and ``traceback``: a crash, which makes ``cpt bench`` exit non-zero) and
``baselines`` (see ``clothparse.bench.baselines``; a crashed one is "failed" too).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clothparse.errors import DataError
from clothparse.parse.pipeline import STAGES as PIPELINE_STAGES

#: Stages of a bench row, in pipeline order: the parse pipeline's stages (their one home is
#: ``clothparse.parse.pipeline.STAGES``) with ``preprocess`` after ``decode``. Preprocessing
#: is timed alone and is also inside ``clothing_model``.
STAGES: tuple[str, ...] = (PIPELINE_STAGES[0], "preprocess", *PIPELINE_STAGES[1:])
#: Stages drawn in the stacked bar (preprocess is inside clothing_model, so it is not stacked).
PLOT_STAGES: tuple[str, ...] = PIPELINE_STAGES
REQUIRED_KEYS = ("format", "machine", "versions", "settings", "rows", "baselines")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores (and those this process may use), GPU name, OS."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "gpu": None,
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # no usable torch/driver: CPU-only report
        pass
    return info


def git_commit() -> str | None:
    """The clothparse checkout's commit (with ``-dirty`` when modified), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """Versions of python and the packages that shape the figures (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("clothparse", "torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "numba", "scikit-image", "numpy", "tensorrt", "fast-slic"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    out["clothparse_commit"] = git_commit()
    return out


def load_report(path: Path) -> dict[str, Any]:
    """Read a ``bench.json``; DataError naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise DataError("no such report file", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable benchmark report ({exc})", path) from None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED_KEYS) or not isinstance(data["rows"], list):
        raise DataError(f"not a cpt bench report (needs keys {', '.join(REQUIRED_KEYS)})", path)
    return data


def _ms(row: dict[str, Any], stage: str) -> float:
    return float(row["stages"][stage]["median_ms"])


# -- Markdown --------------------------------------------------------------------------
def to_markdown(report: dict[str, Any]) -> str:
    """Markdown for BENCHMARKS.md: header lines, the grid table (medians, ms), baselines, skipped rows."""
    m, v, s = report["machine"], report["versions"], report["settings"]
    lines = [
        f"Machine: {m.get('cpu')} ({m.get('cores_usable')} usable of {m.get('cores')} cores), GPU: {m.get('gpu') or 'none'}; "
        f"torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}, numba {v.get('numba')}, commit {v.get('clothparse_commit')}.",
        f"Device {s.get('device')}, warm-up {s.get('warmup')}, repeat {s.get('repeat')}; images: {'; '.join(s.get('images', []))}.",
        "",
        "| config | " + " | ".join(STAGES) + " | end to end (p90) | img/s | post-model share | peak RSS MB | peak GPU MB |",
        "|---" * (len(STAGES) + 6) + "|",
    ]
    for r in report["rows"]:
        if r.get("status") != "ok":
            continue
        e = r["end_to_end"]
        gpu = r.get("peak_gpu_mb")
        share = r.get("post_model_share")
        lines.append(
            f"| {r['name']} | " + " | ".join(f"{_ms(r, st):.1f}" for st in STAGES)
            + f" | {e['median_ms']:.1f} ({e['p90_ms']:.1f}) | {r['throughput_ips']:.2f} | "
            + (f"{100 * share:.1f}%" if share is not None else "–")
            + f" | {r['peak_rss_mb']:.0f} | {'–' if gpu is None else f'{gpu:.0f}'} |"
        )
    lines += ["", "Stage times are per image (median ms); end to end is per batch.", ""]
    if report["baselines"]:
        lines += ["| baseline | size | ours | ms | theirs | ms | theirs / ours |", "|---|---|---|---|---|---|---|"]
        for b in report["baselines"]:
            if b.get("status") == "ok":
                lines.append(f"| {b['name']} | {b['size']} | {b['ours']} | {b['ours_ms']:.1f} | {b['theirs']} | {b['theirs_ms']:.1f} | {b['ratio']:.2f}× |")
            elif b.get("status") == "failed":
                lines.append(f"| {b['name']} | {b['size']} | FAILED: {b.get('error', '')} | | | | |")
            else:
                lines.append(f"| {b['name']} | {b['size']} | skipped: {b.get('reason', '')} | | | | |")
        lines.append("")
    failed = [r for r in report["rows"] if r.get("status") == "failed"]
    if failed:
        lines += ["FAILED (crashed; the traceback is in bench.json):", *[f"- {r['name']}: {r.get('error', '')}" for r in failed], ""]
    skipped = [r for r in report["rows"] if r.get("status") not in ("ok", "failed")]
    if skipped:
        lines += ["Skipped:", *[f"- {r['name']}: {r.get('reason', '')}" for r in skipped], ""]
    if report.get("notes"):
        lines += ["Notes:", *[f"- {n}" for n in report["notes"]], ""]
    return "\n".join(lines)


# -- plot ------------------------------------------------------------------------------
def plot_png(report: dict[str, Any], path: Path) -> None:
    """Stacked horizontal bars of median stage times (ms per image) per configuration, as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clothparse.io.atomic import write_bytes

    rows = [r for r in report["rows"] if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.5 * max(1, len(rows))))
    names = [r["name"] for r in rows]
    left = [0.0] * len(rows)
    for stage in PLOT_STAGES:
        widths = [_ms(r, stage) for r in rows]
        ax.barh(names, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel("median ms per image")
    ax.set_title("cpt bench: stage breakdown" if rows else "cpt bench: no configuration ran")
    ax.invert_yaxis()
    if rows:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # outside: never hides a bar
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


# -- compare ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareRow:
    """One configuration in both reports: medians (ms) and new / old ratios (< 1: faster now)."""

    name: str
    old_ms: float
    new_ms: float
    ratio: float
    stage_ratios: dict[str, float | None]


def compare(new: dict[str, Any], old: dict[str, Any]) -> tuple[list[CompareRow], list[str]]:
    """Rows present (status ok) in both reports, matched by name: end-to-end ratio and per-stage ratios.

    Returns (rows, names present in only one of them). A stage with 0 ms in the old run has ratio None.
    """
    old_ok = {r["name"]: r for r in old["rows"] if r.get("status") == "ok"}
    new_ok = {r["name"]: r for r in new["rows"] if r.get("status") == "ok"}
    out = []
    for name, r in new_ok.items():
        o = old_ok.get(name)
        if o is None:
            continue
        om, nm = float(o["end_to_end"]["median_ms"]), float(r["end_to_end"]["median_ms"])
        stages: dict[str, float | None] = {}
        for st in STAGES:
            if st in r.get("stages", {}) and st in o.get("stages", {}):
                a = _ms(o, st)
                stages[st] = round(_ms(r, st) / a, 4) if a > 0 else None
        out.append(CompareRow(name, om, nm, round(nm / om, 4) if om > 0 else float("inf"), stages))
    unmatched = sorted(set(old_ok) ^ set(new_ok))
    return out, unmatched


# -- terminal --------------------------------------------------------------------------
def print_tables(report: dict[str, Any], comparison: list[CompareRow] | None = None, console: Any = None) -> None:
    """The grid (and comparison) as rich tables; numbers are never cut, long names fold."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            # A log or pipe gets rich's 80 columns, too narrow for a dozen numeric columns.
            console = Console(width=200)
    short = {"decode": "dec", "preprocess": "pre", "clothing_model": "cloth", "body_model": "body", "superpixels": "sp", "fusion": "fuse", "encode": "enc"}
    heads = (*(short[s] for s in STAGES), "e2e", "p90", "img/s", "post/model")
    ok = [r for r in report["rows"] if r.get("status") == "ok"]
    cells = {}
    for r in ok:
        share = r.get("post_model_share")
        cells[r["name"]] = (
            *(f"{_ms(r, s):.1f}" for s in STAGES), f"{r['end_to_end']['median_ms']:.1f}",
            f"{r['end_to_end']['p90_ms']:.1f}", f"{r['throughput_ips']:.2f}", f"{100 * share:.1f}%" if share is not None else "–",
        )
    title = "cpt bench: median ms per image (e2e: per batch)"
    if console.width >= 130:
        t = Table(title=title)
        t.add_column("config", overflow="fold")
        for col in heads:
            t.add_column(col, justify="right", no_wrap=True)
        for name, row in cells.items():
            t.add_row(name, *row)
        console.print(t)
    else:
        # Narrow terminal: one column per configuration (three per table), so no number is cut.
        names = list(cells)
        for i in range(0, len(names), 3):
            t = Table(title=title if i == 0 else None)
            t.add_column("ms", no_wrap=True)
            for name in names[i : i + 3]:
                t.add_column(name, justify="right", overflow="fold")
            for j, head in enumerate(heads):
                t.add_row(head, *(cells[n][j] for n in names[i : i + 3]))
            console.print(t)
    for r in report["rows"]:
        if r.get("status") == "failed":
            console.print(f"[bold red]FAILED[/] {escape(r['name'])}: {escape(str(r.get('error', '')))}", soft_wrap=True, highlight=False)
        elif r.get("status") != "ok":
            console.print(f"[yellow]skipped[/] {r['name']}: {r.get('reason', '')}", soft_wrap=True)
    if report["baselines"]:
        b = Table(title="baselines (same run): theirs / ours")
        b.add_column("baseline", overflow="fold")
        for col in ("size", "ours ms", "theirs ms", "ratio"):
            b.add_column(col, no_wrap=True)
        for row in report["baselines"]:
            if row.get("status") == "ok":
                b.add_row(row["name"], row["size"], f"{row['ours_ms']:.1f}", f"{row['theirs_ms']:.1f}", f"{row['ratio']:.2f}×")
            elif row.get("status") == "failed":
                b.add_row(f"{escape(row['name'])} [bold red](FAILED: {escape(str(row.get('error', '')))})[/]", row["size"], "", "", "")
            else:
                b.add_row(f"{row['name']} [yellow](skipped: {row.get('reason', '')})[/]", row["size"], "", "", "")
        console.print(b)
    if comparison is not None:
        c = Table(title="compared with the old report (new / old; < 1 is faster)")
        c.add_column("config", overflow="fold")
        for col in ("old ms", "new ms", "ratio"):
            c.add_column(col, no_wrap=True)
        for cr in comparison:
            c.add_row(cr.name, f"{cr.old_ms:.1f}", f"{cr.new_ms:.1f}", f"{cr.ratio:.3f}")
        console.print(c)


def write_outputs(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write bench.json, bench.md and bench.png into ``out`` (atomically); returns their paths."""
    from clothparse.io.atomic import write_json, write_text

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "png": out / "bench.png"}
    write_json(paths["json"], report)
    write_text(paths["md"], to_markdown(report))
    plot_png(report, paths["png"])
    return paths
