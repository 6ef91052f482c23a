"""`cpt parse --ray`: the same files as `cpt parse`, error rows, a crashed actor, resuming, no Ray.

The Ray tests share one local instance (2 CPUs, module scope; starting Ray takes seconds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers_parse import save_tiny, synthetic_photo
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.distributed import ray_parse
from clothparse.distributed.actor import CRASH_HOOK_ENV
from clothparse.distributed.manifest import collect_sources, read_manifest
from clothparse.distributed.ray_parse import RaySettings, plan_actors
from clothparse.errors import ConfigError, DataError

runner = CliRunner()
OUTPUTS = (".json", "_labels.png", "_overlay.png")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    return save_tiny(d / "clothing"), save_tiny(d / "body", ["person"], seed=1)


def _photos(root: Path, n: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = root / (f"p{k}.png" if k % 2 else f"p{k}.jpg")
        Image.fromarray(synthetic_photo(120 + 8 * k, 100, seed=k)).save(p)
        paths.append(p)
    return paths


def _args(models: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    clothing, body = models
    return ["--model", str(clothing), "--body-model", str(body), "--out", str(out), "--device", "cpu",
            "--score-thresh", "0", "--body-score-thresh", "0", "--n-segments", "60", "--superpixels", "skimage",
            "--quiet", *extra]


def _parse(*args: str):
    return runner.invoke(app, ["parse", *args])


def _manifest_rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(out / "results_manifest.parquet").to_pylist()


def _without_timings(path: Path) -> dict:
    record = json.loads(path.read_text())
    assert set(record.pop("timings_ms")) >= {"decode", "clothing_model", "fusion", "encode"}
    return record


def test_ray_writes_what_cpt_parse_writes_then_skips(ray_local, models, tmp_path: Path, monkeypatch) -> None:
    photos = _photos(tmp_path / "in", 4)
    single, dist = tmp_path / "single", tmp_path / "ray"
    res = _parse(str(tmp_path / "in"), *_args(models, single, "--workers", "0"))
    assert res.exit_code == 0, res.output
    # One actor, one block: the actor's Parser sees the photos in `cpt parse`'s order. (A torch
    # engine's last digits depend on the photos it ran before: see the report of issue 12.)
    monkeypatch.setattr(ray_parse, "BLOCKS_PER_ACTOR", 1)
    res = _parse(str(tmp_path / "in"), *_args(models, dist, "--ray", "--actors", "1"))
    assert res.exit_code == 0, res.output
    assert "4 parsed, 0 skipped, 0 failed" in res.output
    for p in photos:
        for suffix in ("_labels.png", "_overlay.png"):
            assert (dist / f"{p.stem}{suffix}").read_bytes() == (single / f"{p.stem}{suffix}").read_bytes(), p
        assert _without_timings(dist / f"{p.stem}.json") == _without_timings(single / f"{p.stem}.json"), p
    assert (dist / "results_coco.json").read_bytes() == (single / "results_coco.json").read_bytes()
    assert json.loads((dist / "results_coco.json").read_text())  # not a trivially equal empty list
    rows = _manifest_rows(dist)
    assert [r["path"] for r in rows] == [str(p) for p in photos]
    assert all(r["status"] == "ok" and r["error"] is None and r["worker"] for r in rows)
    assert [r["items"] for r in rows] == [len(json.loads((dist / f"{p.stem}.json").read_text())["items"]) for p in photos]
    assert all(r["fusion_ms"] is not None for r in rows)

    stamps = {f.name: f.stat().st_mtime_ns for f in dist.iterdir() if f.suffix in (".png", ".json")}
    res = _parse(str(tmp_path / "in"), *_args(models, dist, "--ray", "--actors", "2"))
    assert res.exit_code == 0, res.output
    assert "0 parsed, 4 skipped, 0 failed" in res.output
    rows = _manifest_rows(dist)
    assert [r["status"] for r in rows] == ["skipped"] * 4 and all(r["items"] is not None for r in rows)
    for name, ns in stamps.items():
        if name != "results_coco.json":
            assert (dist / name).stat().st_mtime_ns == ns, name
    assert (dist / "results_coco.json").read_bytes() == (single / "results_coco.json").read_bytes()


def test_bad_photos_are_error_rows(ray_local, models, tmp_path: Path) -> None:
    root = tmp_path / "in"
    good = _photos(root, 2)
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not a photo at all\n")
    (root / "truncated.jpg").write_bytes(good[0].read_bytes()[:300])
    missing = tmp_path / "gone.jpg"
    manifest = tmp_path / "more.jsonl"
    manifest.write_text(json.dumps({"path": str(missing)}) + "\n")
    single = _parse(str(root), *_args(models, tmp_path / "single"))
    assert single.exit_code == 3, single.output
    res = _parse(str(root), *_args(models, tmp_path / "ray", "--ray", "--actors", "1", "--manifest", str(manifest)))
    assert res.exit_code == 3, res.output
    assert "2 parsed, 0 skipped, 4 failed" in res.output
    rows = {Path(r["path"]).name: r for r in _manifest_rows(tmp_path / "ray")}
    assert {n for n, r in rows.items() if r["status"] == "ok"} == {p.name for p in good}
    errors = {n: r["error"] for n, r in rows.items() if r["status"] == "error"}
    assert set(errors) == {"empty.jpg", "text.jpg", "truncated.jpg", "gone.jpg"}
    assert errors["gone.jpg"] == f"{missing}: no such file"
    # the same one-line messages as `cpt parse` prints, and on stderr too
    printed = sorted(ln for ln in single.stderr.splitlines() if ln.startswith("error: "))
    assert printed == sorted(f"error: {m}" for n, m in errors.items() if n != "gone.jpg")
    assert sorted(ln for ln in res.stderr.splitlines() if ln.startswith("error: ")) == sorted(
        f"error: {m}" for m in errors.values())
    for p in good:
        assert all((tmp_path / "ray" / f"{p.stem}{s}").is_file() for s in OUTPUTS)
    assert not list((tmp_path / "ray").glob("empty*")) and not list((tmp_path / "ray").glob("truncated*"))


def test_a_crashed_actor_loses_and_repeats_nothing(ray_local, models, tmp_path: Path, monkeypatch) -> None:
    photos = _photos(tmp_path / "in", 5)
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_HOOK_ENV, f"p1={marker}")  # the actor dies right after writing p1
    out = tmp_path / "out"
    res = _parse(str(tmp_path / "in"), *_args(models, out, "--ray", "--actors", "1"))
    assert res.exit_code == 0, res.output
    assert marker.is_file(), "the crash hook did not fire"
    ino, mtime = (int(v) for v in marker.read_text().split())
    st = (out / "p1.json").stat()
    assert (st.st_ino, st.st_mtime_ns) == (ino, mtime), "p1 was written again after the crash"
    rows = _manifest_rows(out)
    assert [r["index"] for r in rows] == list(range(5)) and [r["status"] for r in rows] == ["ok"] * 5
    for p in photos:
        assert all((out / f"{p.stem}{s}").is_file() for s in OUTPUTS)
    assert sorted(f.name for f in out.iterdir() if f.name.startswith(".")) == []  # no temporary files left


def test_without_ray_one_line_names_the_extra(models, tmp_path: Path, monkeypatch) -> None:
    _photos(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    res = _parse(str(tmp_path / "in"), *_args(models, tmp_path / "out", "--ray"))
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "clothparse[ray]" in lines[0], res.stderr


def test_ray_options_need_ray(models, tmp_path: Path) -> None:
    _photos(tmp_path / "in", 1)
    res = _parse(str(tmp_path / "in"), *_args(models, tmp_path / "out", "--actors", "2"))
    assert res.exit_code == 1 and "need --ray" in res.stderr, res.output
    res = _parse(*_args(models, tmp_path / "out"))
    assert res.exit_code == 2, res.output  # no inputs, no manifest: a usage error as before


def test_manifest_formats(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    photos = _photos(tmp_path / "in", 3)
    text = tmp_path / "m.txt"
    text.write_text(f"# photos\n{photos[0]}\n\n{photos[1]}\n")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps({"path": str(p), "extra": 1}) + "\n" for p in photos))
    parquet = tmp_path / "m.parquet"
    pq.write_table(pa.table({"path": [str(p) for p in photos[::-1]]}), parquet)
    assert read_manifest(text) == [str(photos[0]), str(photos[1])]
    assert read_manifest(jsonl) == [str(p) for p in photos]
    assert read_manifest(parquet) == [str(p) for p in photos[::-1]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.jpg"}\n{"file": "b.jpg"}\n')
    with pytest.raises(DataError, match="line 2"):
        read_manifest(bad)
    pq.write_table(pa.table({"file": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="'path' column"):
        read_manifest(tmp_path / "bad.parquet")
    # inputs first, then the manifest; duplicates once; names as `cpt parse` gives them
    sources, errors = collect_sources([str(photos[0])], jsonl, tmp_path / "out")
    assert not errors and [s.path for s in sources] == [str(p) for p in photos]
    assert [s.name for s in sources] == [p.stem for p in photos] and [s.index for s in sources] == [0, 1, 2]
    uri = collect_sources([], _write(tmp_path / "u.txt", "s3://bucket/a/x.jpg\n"), tmp_path / "out")[0]
    assert [(s.path, s.name) for s in uri] == [("s3://bucket/a/x.jpg", "x")]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_plan_actors_budget() -> None:
    cpu = plan_actors([8.0], 0.0, RaySettings(), "cpu")
    assert (cpu.actors, cpu.threads, cpu.gpus, cpu.device) == (2, 4, 0.0, "cpu")
    assert plan_actors([2.0], 0.0, RaySettings(actors=2), "auto").threads == 1
    # three nodes of 6 cores, 4 actors: 3 threads each packs 2 per node (4 would fit only 3)
    assert plan_actors([6.0, 6.0, 6.0], 0.0, RaySettings(actors=4), "cpu").threads == 3
    gpu = plan_actors([16.0, 16.0], 4.0, RaySettings(), "auto")
    assert (gpu.actors, gpu.threads, gpu.gpus, gpu.device) == (4, 8, 1.0, "cuda")
    assert plan_actors([8.0], 1.0, RaySettings(gpus_per_actor=0.5), "cuda").actors == 2
    for settings, device in ((RaySettings(), "cuda"), (RaySettings(actors=3), "cpu"), (RaySettings(gpus_per_actor=0), "cuda")):
        with pytest.raises(ConfigError):
            plan_actors([2.0], 0.0, settings, device, engine_threads=1 if settings.actors else 0)


def test_a_photo_that_always_kills_its_actor_becomes_an_error_row(ray_local, models, tmp_path: Path, monkeypatch) -> None:
    """Ray restarts the actor; after MAX_ATTEMPTS deaths on one photo it is an error row and the job ends."""
    from clothparse.distributed.actor import MAX_ATTEMPTS

    photos = _photos(tmp_path / "in", 3)
    monkeypatch.setenv(CRASH_HOOK_ENV, "p1=always")
    out = tmp_path / "out"
    res = _parse(str(tmp_path / "in"), *_args(models, out, "--ray", "--actors", "1"))
    assert res.exit_code == 3, res.output  # partial: one photo failed
    rows = _manifest_rows(out)
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert f"crashed the worker {MAX_ATTEMPTS} times" in rows[1]["error"] and "p1" in rows[1]["error"]
    for p in photos:
        written = all((out / f"{p.stem}{s}").is_file() for s in OUTPUTS)
        assert written == (p.stem != "p1")
    assert sorted(f.name for f in out.iterdir() if f.name.startswith(".")) == []  # attempt counts cleaned up
