"""`cpt data split` and clothparse.data.split: deterministic, ratio-faithful, by image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.data.split import assign_split, check_ratios, parse_ratios, split_annotations
from clothparse.errors import ConfigError

runner = CliRunner()


def _coco(n: int, anns_per_image: int = 2, cat: int = 1) -> dict[str, Any]:
    images = [
        {"id": 1000 + i, "file_name": f"{i}.jpg", "width": 10, "height": 10} for i in range(n)
    ]
    anns = [
        {"id": k, "image_id": im["id"], "category_id": cat, "bbox": [0, 0, 1, 1], "iscrowd": 0}
        for k, im in enumerate(images * anns_per_image)
    ]
    return {
        "info": {"v": 1},
        "images": images,
        "annotations": anns,
        "categories": [{"id": cat, "name": "c"}],
    }


def _run_split(ann: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["data", "split", str(ann), "--out", str(out), *extra])


def _ids(path: Path) -> list[int]:
    return sorted(im["id"] for im in json.loads(path.read_text())["images"])


@pytest.fixture
def ann(tmp_path: Path) -> Path:
    p = tmp_path / "clothing.json"
    p.write_text(json.dumps(_coco(50)))
    return p


def test_cli_writes_three_files_with_counts(ann: Path, tmp_path: Path) -> None:
    res = _run_split(ann, tmp_path / "out", "--seed", "3")
    assert res.exit_code == 0, res.output
    files = {n: tmp_path / "out" / f"{n}.json" for n in ("train", "val", "test")}
    sizes = {n: len(_ids(p)) for n, p in files.items()}
    assert sizes == {"train": 40, "val": 5, "test": 5}
    assert "train" in res.output and "40 images" in res.output and "80 annotations" in res.output
    all_ids = sorted(i for p in files.values() for i in _ids(p))
    assert all_ids == list(range(1000, 1050))  # a partition of the images
    for p in files.values():
        sub = json.loads(p.read_text())
        assert sub["info"] == {"v": 1} and sub["categories"] == [{"id": 1, "name": "c"}]
        ids = {im["id"] for im in sub["images"]}
        assert {a["image_id"] for a in sub["annotations"]} == ids  # annotations follow images
        assert len(sub["annotations"]) == 2 * len(ids)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_same_seed_same_split_different_seed_different(ann: Path, tmp_path: Path) -> None:
    for out, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert _run_split(ann, tmp_path / out, "--seed", seed).exit_code == 0
    for name in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{name}.json").read_bytes() == (
            tmp_path / "b" / f"{name}.json"
        ).read_bytes()
    # 50 images: two seeds giving the same val set has probability 1 / C(50, 5)
    assert _ids(tmp_path / "a" / "val.json") != _ids(tmp_path / "c" / "val.json")


def test_body_and_clothing_split_identically(ann: Path, tmp_path: Path) -> None:
    body = _coco(50, anns_per_image=1, cat=1)
    body["images"] = list(reversed(body["images"]))  # order in the file must not matter
    body_path = tmp_path / "body.json"
    body_path.write_text(json.dumps(body))
    out = tmp_path / "out"
    assert _run_split(ann, out, "--seed", "11").exit_code == 0
    res = _run_split(body_path, out, "--seed", "11", "--prefix", "body_")
    assert res.exit_code == 0, res.output
    for name in ("train", "val", "test"):
        assert _ids(out / f"{name}.json") == _ids(out / f"body_{name}.json")


@pytest.mark.parametrize(
    "ratios", ["0.5,0.5,0.5", "0.8,0.1", "a,b,c", "-0.2,0.6,0.6", "nan,0.5,0.5", "0.8,0.2,0,0"]
)
def test_bad_ratios_exit_nonzero_with_one_line(ann: Path, tmp_path: Path, ratios: str) -> None:
    res = _run_split(ann, tmp_path / "out", "--ratios", ratios)
    assert res.exit_code != 0
    err = res.stderr.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "out" / "train.json").exists()


def test_malformed_input_exit_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    res = _run_split(bad, tmp_path / "out")
    assert res.exit_code == 1 and str(bad) in res.stderr
    no_id = tmp_path / "noid.json"
    no_id.write_text(json.dumps({"images": [{"file_name": "x.jpg"}], "annotations": []}))
    res = _run_split(no_id, tmp_path / "out")
    assert res.exit_code == 1 and "integer id" in res.stderr
    res = _run_split(tmp_path / "missing.json", tmp_path / "out")
    assert res.exit_code == 1 and "missing.json" in res.stderr


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    weights=st.lists(st.integers(0, 20), min_size=3, max_size=3).filter(lambda w: sum(w) > 0),
    seed=st.integers(0, 2**32),
)
def test_ratios_respected_within_one_image(n: int, weights: list[int], seed: int) -> None:
    ratios = [w / sum(weights) for w in weights]
    ratios[-1] = 1.0 - sum(ratios[:-1])
    ids = list(range(5, 5 + n))
    got = assign_split(ids, ratios, seed)
    assert sorted(got) == ids
    for name, r in zip(("train", "val", "test"), ratios, strict=True):
        assert abs(sum(v == name for v in got.values()) - r * n) < 1.0 + 1e-9
    # the assignment depends on the set of ids only, not their order or duplicates
    assert assign_split(list(reversed(ids)) + ids[:3], ratios, seed) == got


def test_ratio_checks() -> None:
    assert parse_ratios("0.8, 0.1, 0.1") == (0.8, 0.1, 0.1)
    for bad in ([], [float("nan"), 1.0], [float("inf"), -float("inf"), 1.0], [0.9]):
        with pytest.raises(ConfigError):
            check_ratios(bad)
    with pytest.raises(ConfigError, match="seed"):
        assign_split([1, 2], [0.5, 0.5, 0.0], -1)


def test_annotations_of_unlisted_images_dropped() -> None:
    coco = _coco(4)
    coco["annotations"].append({"id": 99, "image_id": 12345, "category_id": 1})
    coco["annotations"].append({"id": 100, "category_id": 1})  # no image_id at all
    subs = split_annotations(coco, [0.5, 0.25, 0.25], seed=0)
    assert sum(len(s["annotations"]) for s in subs.values()) == 8
