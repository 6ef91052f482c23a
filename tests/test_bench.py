"""The benchmark suite produces well-formed reports (never timed as a test).

A tiny configuration (small-backbone random model, 128 px, warm-up 0, repeat 1) runs
through the CLI; the checks are on the report structure, the skipped-engine rows, the
--compare arithmetic on hand-made reports and through the CLI, exit codes, and the GPU
check's script run end to end on its CPU paths (``--dry-run``; what its fusion section under
the CUDA simulator can and cannot show: tests/test_fusion_cuda.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clothparse.bench import report as rep
from clothparse.bench.timing import STAT_KEYS, summarize
from typer.testing import CliRunner

from clothparse.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["bench", "--sizes", "128x128", "--backbone", "small", "--body-model", "random", "--warmup", "0", "--repeat", "1", "--superpixels", "skimage"]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("bench")
    result = CliRunner().invoke(app, [*TINY, "--engines", "torch,trt", "--precision", "fp32,int8", "--out", str(out)])
    return out, result


def test_tiny_suite_writes_wellformed_reports(tiny_report: tuple[Path, object]) -> None:
    out, result = tiny_report
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads((out / "bench.json").read_text())
    for key in ("format", "machine", "versions", "settings", "rows", "baselines", "notes"):
        assert key in data
    for key in ("cpu", "cores", "gpu"):
        assert key in data["machine"]
    for key in ("python", "torch", "torchvision", "onnxruntime", "numba", "clothparse_commit"):
        assert key in data["versions"]
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    assert [r["name"] for r in ok] == ["torch fp32 128x128 b1 sp=skimage"]
    row = ok[0]
    assert set(row["stages"]) == set(rep.STAGES)
    for stats in (*row["stages"].values(), row["end_to_end"]):
        assert set(stats) == set(STAT_KEYS) and stats["n"] == 1 and stats["min_ms"] >= 0
    assert row["end_to_end"]["median_ms"] >= row["stages"]["clothing_model"]["median_ms"]
    assert row["throughput_ips"] > 0 and row["peak_rss_mb"] > 0 and row["detections_mean"] > 0
    md = (out / "bench.md").read_text()
    assert "| torch fp32 128x128 b1 sp=skimage |" in md
    assert md.count("|---") >= 1
    assert (out / "bench.png").read_bytes()[:8] == PNG_MAGIC
    names = {b["name"] for b in data["baselines"]}
    assert "seed superpixel stage (SLIC + fusion)" in names and "fast-slic (peer)" in names


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_tables_never_cut_numbers(tiny_report: tuple[Path, object], width: int) -> None:
    import io

    from rich.console import Console

    out, _ = tiny_report
    data = json.loads((out / "bench.json").read_text())
    buf = io.StringIO()
    rep.print_tables(data, console=Console(file=buf, width=width))
    text = buf.getvalue()
    assert "…" not in text
    row = next(r for r in data["rows"] if r["status"] == "ok")
    for value in (row["end_to_end"]["median_ms"], row["end_to_end"]["p90_ms"], *(st["median_ms"] for st in row["stages"].values())):
        assert f"{value:.1f}" in text


def test_unavailable_engines_are_reported_as_skipped(tiny_report: tuple[Path, object]) -> None:
    out, _ = tiny_report
    data = json.loads((out / "bench.json").read_text())
    skipped = {r["name"]: r["reason"] for r in data["rows"] if r["status"] == "skipped"}
    assert "int8" in skipped["torch int8 128x128 b1 sp=skimage"]
    assert "TensorRT" in skipped["trt fp32 128x128 b1 sp=skimage"]
    assert "TensorRT" in skipped["trt int8 128x128 b1 sp=skimage"]
    assert len(data["rows"]) == 4  # 2 engines x 2 precisions, none dropped silently
    assert "trt fp32 128x128 b1 sp=skimage" in (out / "bench.md").read_text()


def _report(rows: dict[str, tuple[float, float]]) -> dict:
    """A hand-made report: name -> (end-to-end median, fusion median)."""
    def stats(ms: float) -> dict:
        return {k: (1 if k == "n" else ms) for k in STAT_KEYS}

    out_rows = [
        {"name": n, "status": "ok", "end_to_end": stats(e), "stages": {s: stats(f if s == "fusion" else 1.0) for s in rep.STAGES}}
        for n, (e, f) in rows.items()
    ]
    out_rows.append({"name": "trt", "status": "skipped", "reason": "no TensorRT"})
    return {"format": "x", "machine": {}, "versions": {}, "settings": {}, "rows": out_rows, "baselines": []}


def test_compare_ratio_per_row() -> None:
    old = _report({"a": (100.0, 10.0), "b": (50.0, 0.0), "gone": (1.0, 1.0)})
    new = _report({"a": (80.0, 5.0), "b": (75.0, 2.0), "fresh": (1.0, 1.0)})
    rows, unmatched = rep.compare(new, old)
    by = {r.name: r for r in rows}
    assert set(by) == {"a", "b"}
    assert by["a"].ratio == pytest.approx(0.8) and by["b"].ratio == pytest.approx(1.5)
    assert by["a"].stage_ratios["fusion"] == pytest.approx(0.5)
    assert by["b"].stage_ratios["fusion"] is None  # old stage took 0 ms: no ratio
    assert unmatched == ["fresh", "gone"]


def test_cli_bad_options_and_compare_files_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, [*TINY, "--engines", "torch,foo", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "--engines" in bad.output
    bad = runner.invoke(app, [*TINY, "--sizes", "128", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "--sizes" in bad.output
    missing = runner.invoke(app, [*TINY, "--compare", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "nope.json" in missing.output
    (tmp_path / "junk.json").write_text("[1, 2]")
    junk = runner.invoke(app, [*TINY, "--compare", str(tmp_path / "junk.json"), "--out", str(tmp_path / "x")])
    assert junk.exit_code == 1 and "not a cpt bench report" in junk.output


def test_cli_compare_writes_ratios_against_the_old_report(tmp_path: Path, tiny_report: tuple[Path, object]) -> None:
    """``--compare`` matches the new run's rows to an older report by name and records new/old."""
    out, _ = tiny_report
    old = json.loads((out / "bench.json").read_text())
    name = "torch fp32 128x128 b1 sp=skimage"
    row = next(r for r in old["rows"] if r["name"] == name)
    row["end_to_end"]["median_ms"] = 1000.0  # the old run: a known median
    row["stages"]["fusion"]["median_ms"] = 0.0  # a stage that took 0 ms then: no ratio
    old["rows"].append({**row, "name": "gone"})
    (tmp_path / "old.json").write_text(json.dumps(old))
    res = CliRunner().invoke(app, [*TINY, "--engines", "torch", "--precision", "fp32", "--no-baselines",
                                   "--compare", str(tmp_path / "old.json"), "--out", str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "new" / "bench.json").read_text())
    new_ms = next(r for r in data["rows"] if r["name"] == name)["end_to_end"]["median_ms"]
    cmp = data["compare"]
    assert cmp["old"] == str(tmp_path / "old.json") and cmp["unmatched"] == ["gone"]
    [c] = cmp["rows"]
    assert c["name"] == name and c["old_ms"] == 1000.0 and c["new_ms"] == new_ms
    assert c["ratio"] == pytest.approx(new_ms / 1000.0, abs=1e-4) and c["ratio"] > 0
    assert c["stages"]["fusion"] is None and c["stages"]["clothing_model"] is not None


def test_alternating_timer_calls_round_robin() -> None:
    from clothparse.bench.timing import time_alternating

    calls: list[str] = []
    times = time_alternating({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeat=3)
    assert calls == ["a", "b"] * 4
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)
    with pytest.raises(ValueError):
        time_alternating({"a": lambda: None}, warmup=0, repeat=0)


def test_summarize_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    s = rng.uniform(0.001, 0.1, 37)
    st = summarize(list(s))
    ms = s * 1000
    assert st.median_ms == pytest.approx(np.median(ms)) and st.p90_ms == pytest.approx(np.percentile(ms, 90))
    assert st.p99_ms == pytest.approx(np.percentile(ms, 99)) and st.min_ms == pytest.approx(ms.min())
    assert st.max_ms == pytest.approx(ms.max()) and st.n == 37
    with pytest.raises(ValueError):
        summarize([])


def test_gpu_check_script_usage_and_dry_run(tmp_path: Path) -> None:
    """``bash bench/gpu_check.sh OUT --dry-run`` runs end to end here (import check, PYTHONPATH,
    nvidia-smi fallback, gpu_check.py's CPU paths, exit status) and writes both reports."""
    import os
    import sys

    from clothparse.bench import gpu_check

    script = str(ROOT / "bench" / "gpu_check.sh")
    env = {**os.environ, "PYTHON": sys.executable}
    usage = subprocess.run(["bash", script], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    res = subprocess.run(["bash", script, str(tmp_path), "--dry-run", "--budget", "200"], capture_output=True, text=True, env=env, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "nvidia-smi.txt").exists()
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    sec = data["sections"]
    assert data["dry_run"] is True
    assert sec["env"]["tensorrt_note"]
    model = sec["model-resnet50"]
    assert model["eager_fp32"]["status"] == "ok" and model["wrapper_eager_fp32"]["status"] == "ok"
    assert model["wrapper_cuda_graph_fp16"]["status"] == gpu_check.NO_CUDA
    assert sec["compile-resnet50"]["status"] == gpu_check.NO_CUDA and sec["suite"]["status"] == gpu_check.NO_CUDA
    # The fusion section ran its kernels under the CUDA simulator (what that does and does
    # not show: tests/test_fusion_cuda.py).
    fusion = sec["fusion"]
    assert fusion["status"].startswith("simulator"), fusion
    assert fusion["identical"] is True and set(fusion["mismatches"]) >= {"coverage", "label_map", "stats"}
    md = (tmp_path / "gpu_check.md").read_text()
    assert "TensorRT is not installed" in md or "TensorRT is installed" in md


def test_crashing_engine_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that raises is a failed row (error + traceback in the report) and a non-zero
    exit, not a skip; the other cells of the grid still run and the reports are written."""
    from clothparse.bench import suite

    from clothparse.cli.errors import EXIT_PARTIAL

    real = suite.Suite.clothing_engine

    def clothing_engine(self, cell, calib):
        engine = real(self, cell, calib)
        if cell.superpixels == "auto":  # the sp=skimage cell keeps the real engine
            def crash(*args, **kwargs):
                raise RuntimeError("engine exploded: illegal memory access")

            monkeypatch.setattr(engine, "infer", crash)
        return engine

    monkeypatch.setattr(suite.Suite, "clothing_engine", clothing_engine)
    out = tmp_path / "b"
    args = [a for a in TINY if a not in ("--superpixels", "skimage")]
    res = CliRunner().invoke(app, [*args, "--engines", "torch", "--superpixels", "skimage,auto", "--no-baselines", "--out", str(out)])
    assert res.exit_code == EXIT_PARTIAL and res.exit_code != 0, res.output
    data = json.loads((out / "bench.json").read_text())
    by = {r["name"]: r for r in data["rows"]}
    assert by["torch fp32 128x128 b1 sp=skimage"]["status"] == "ok"
    bad = by["torch fp32 128x128 b1 sp=auto"]
    assert bad["status"] == "failed" and "engine exploded" in bad["error"] and "RuntimeError" in bad["error"]
    assert "Traceback" in bad["traceback"] and "crash" in bad["traceback"]
    assert "error: torch fp32 128x128 b1 sp=auto: RuntimeError: engine exploded" in res.stderr
    assert "FAILED" in (out / "bench.md").read_text() and "skipped" not in json.dumps(bad)


def test_missing_optional_dependency_is_a_skip_that_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clothparse.bench import suite

    def clothing_engine(self, cell, calib):
        raise ModuleNotFoundError("No module named 'tensorrt'", name="tensorrt")

    monkeypatch.setattr(suite.Suite, "clothing_engine", clothing_engine)
    out = tmp_path / "b"
    res = CliRunner().invoke(app, [*TINY, "--engines", "torch", "--no-baselines", "--out", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads((out / "bench.json").read_text())["rows"][0]
    assert row["status"] == "skipped" and "tensorrt is not installed" in row["reason"] and "pip install" in row["reason"]
    # A clothparse module that does not import is a broken install: a failure, not a skip.
    assert suite.missing_dependency(ModuleNotFoundError("x", name="clothparse.engines.nope")) is None
    assert suite.missing_dependency(RuntimeError("boom")) is None


def test_openvino_rows_run_or_say_why(tmp_path: Path) -> None:
    """`cpt bench --engines openvino`: the fp32 row runs (the engine reads the ONNX export);
    bf16 runs where the CPU has bfloat16 and is otherwise skipped with that reason. (int8
    through OpenVINO: tests/test_openvino_engine.py.)"""
    from clothparse.engines.openvino_engine import cpu_has_bf16

    args = [*TINY, "--engines", "openvino", "--precision", "fp32,bf16", "--no-baselines", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "bench.json").read_text())["rows"]}
    row = rows["openvino fp32 128x128 b1 sp=skimage"]
    assert row["status"] == "ok" and row["stages"]["clothing_model"]["median_ms"] > 0, row
    bf16 = rows["openvino bf16 128x128 b1 sp=skimage"]
    if cpu_has_bf16():
        assert bf16["status"] == "ok", bf16
    else:
        assert bf16["status"] == "skipped" and "bfloat16" in bf16["reason"]
