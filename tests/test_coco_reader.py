"""One reader for COCO annotation files (``clothparse.data.coco_json.read_coco_json``).

The loader, evaluation, ``cpt parse --ann`` and the parsing-quality bench all read an
annotation file through it, so each gives the same one-line DataError naming the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clothparse.data.coco import load_coco
from clothparse.data.coco_json import read_coco_json, read_json
from clothparse.errors import DataError
from clothparse.evaluate.coco_eval import load_gt, sanitize_gt
from clothparse.evaluate.runner import load_results, parsing_stems
from clothparse.parse.batch import load_image_ids

CATS = [{"id": 1, "name": "bag"}]
IMAGE = {"id": 1, "file_name": "im1.png", "width": 8, "height": 6}


def _split_images(path: Path) -> Any:
    from clothparse.bench.parsing_quality import split_images

    return split_images(path.parent, path.stem)


READERS: dict[str, Callable[[Path], Any]] = {
    "load_coco": load_coco,
    "load_gt": load_gt,
    "load_image_ids": load_image_ids,
    "parsing_quality": _split_images,
    "read_coco_json": read_coco_json,
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON, so not a COCO annotation file (Expecting property name"),
        (b"\xff\xfe\xff", "not valid JSON, so not a COCO annotation file ("),
        ("[1, 2]", "not a COCO annotation file (top level is not a JSON object)"),
        ('{"annotations": []}', "not a COCO annotation file (no 'images' list)"),
        ('{"images": {}}', "not a COCO annotation file (no 'images' list)"),
        ('{"images": [], "annotations": {}}', "not a COCO annotation file ('annotations' is not a list)"),
        ('{"images": [1]}', "not a COCO annotation file ('images' holds non-objects)"),
        ('{"images": [], "categories": {"1": "bag"}}', "not a COCO annotation file ('categories' is not a list)"),
    ],
)
def test_every_reader_gives_the_same_one_line_error(
    tmp_path: Path, reader: str, content: str | bytes, message: str
) -> None:
    p = tmp_path / "val.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(DataError) as exc:
        READERS[reader](p)
    text = str(exc.value)
    assert text.startswith(f"{p}: {message}"), text
    assert "\n" not in text


@pytest.mark.parametrize("reader", sorted(READERS))
def test_missing_and_unreadable_files(tmp_path: Path, reader: str) -> None:
    p = tmp_path / "val.json"
    with pytest.raises(DataError) as exc:
        READERS[reader](p)
    assert str(exc.value) == f"{p}: no such annotation file"
    p.mkdir()
    with pytest.raises(DataError) as exc:
        READERS[reader](p)
    assert str(exc.value) == f"{p}: is a folder, not a file (annotation file expected)"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "val.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("reader", "drop", "message"),
    [
        ("load_gt", "id", "image #1 has no 'id'"),
        ("load_gt", "height", "image #1 has no 'height'"),
        ("load_gt", "width", "image #1 has no 'width'"),
        ("load_image_ids", "id", "image #1 has no 'id'"),
        ("load_image_ids", "file_name", "image #1 has no 'file_name'"),
        ("parsing_quality", "id", "image #1 has no 'id'"),
        ("parsing_quality", "file_name", "image #1 has no 'file_name'"),
    ],
)
def test_image_without_a_needed_field(tmp_path: Path, reader: str, drop: str, message: str) -> None:
    bad = {k: v for k, v in {**IMAGE, "id": 2}.items() if k != drop}
    p = _write(tmp_path, {"images": [IMAGE, bad], "annotations": [], "categories": CATS})
    with pytest.raises(DataError) as exc:
        READERS[reader](p)
    assert str(exc.value) == f"{p}: {message}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "x", "image #0 has a non-integer 'id' ('x')"),
        ("height", None, "image #0 has a non-integer 'height' (None)"),
        ("width", 0, "image #0 has a non-positive 'width' (0)"),
        ("file_name", "", "image #0 has a 'file_name' that is not a non-empty string ('')"),
        ("file_name", 7, "image #0 has a 'file_name' that is not a non-empty string (7)"),
    ],
)
def test_image_field_values_are_checked(tmp_path: Path, field: str, value: Any, message: str) -> None:
    p = _write(tmp_path, {"images": [{**IMAGE, field: value}], "categories": CATS})
    with pytest.raises(DataError) as exc:
        read_coco_json(p, image_fields=("id", "file_name", "height", "width"))
    assert str(exc.value) == f"{p}: {message}"


def test_fields_only_checked_where_needed(tmp_path: Path) -> None:
    # `cpt parse --ann` needs no image sizes; the loader counts bad image records, not fails.
    p = _write(tmp_path, {"images": [{"id": 5, "file_name": "a.jpg"}, {"file_name": "b.jpg"}]})
    with pytest.raises(DataError, match="image #1 has no 'id'"):
        load_image_ids(p)
    idx = load_coco(p, categories=["bag"])
    assert idx.images == [] and idx.report.bad_image_records == 2
    assert read_coco_json(p)["images"][0]["id"] == 5
    p = _write(tmp_path, {"images": [{"id": 5, "file_name": "a.jpg"}], "categories": CATS})
    assert load_image_ids(p) == {"a.jpg": 5}
    with pytest.raises(DataError, match="image #0 has no 'height'"):
        load_gt(p)


@pytest.mark.parametrize(
    ("categories", "message"),
    [
        (None, "no categories (the file has no 'categories' list)"),
        ([], "no categories (the file has no 'categories' list)"),
        (["bag"], "category #0 is not an object ('bag')"),
        ([{"name": "bag"}], "category #0 has no 'id'"),
        ([{"id": "one", "name": "bag"}], "category #0 has a non-integer 'id' ('one')"),
        ([{"id": 1}], "category #0 has no 'name'"),
        ([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}], "duplicate category ids [1, 1]"),
    ],
)
def test_evaluation_and_loader_need_categories(tmp_path: Path, categories: Any, message: str) -> None:
    doc: dict[str, Any] = {"images": [IMAGE], "annotations": []}
    if categories is not None:
        doc["categories"] = categories
    p = _write(tmp_path, doc)
    with pytest.raises(DataError) as exc:
        load_gt(p)
    assert str(exc.value) == f"{p}: {message}"
    with pytest.raises(DataError) as exc:  # the same check on an in-memory dict
        sanitize_gt(doc, p)
    assert str(exc.value) == f"{p}: {message}"
    with pytest.raises(DataError) as exc:  # the loader, unless given categories
        load_coco(p)
    assert str(exc.value) == f"{p}: {message}"
    assert load_coco(p, categories=["bag"]).class_names == ("bag",)
    assert load_image_ids(p) == {"im1.png": 1}  # ids need no categories


def test_readers_agree_on_a_good_file(tmp_path: Path) -> None:
    images = [
        {"id": 7, "file_name": "sub/b.png", "width": 8, "height": 6},
        {"id": 3, "file_name": "a.png", "width": 8, "height": 6},
    ]
    p = _write(tmp_path, {"images": images, "annotations": [], "categories": CATS})
    assert load_image_ids(p) == {"sub/b.png": 7, "a.png": 3, "b.png": 7}
    assert [im["id"] for im in _split_images(p)] == [3, 7]
    assert load_gt(p).image_ids() == [3, 7]
    assert sorted(im.id for im in load_coco(p).images) == [3, 7]
    (tmp_path / "labels").mkdir()
    stems, _ = parsing_stems(tmp_path, "val")
    assert stems == ["a", "b"]


def test_results_file_errors(tmp_path: Path) -> None:
    gt = load_gt(_write(tmp_path, {"images": [IMAGE], "annotations": [], "categories": CATS}))
    res = tmp_path / "res.json"
    with pytest.raises(DataError) as exc:
        load_results(res, gt)
    assert str(exc.value) == f"{res}: no such results file"
    res.write_text("[{")
    with pytest.raises(DataError) as exc:
        read_json(res, "results file")
    assert str(exc.value).startswith(f"{res}: not valid JSON, so not a COCO results file (")
    res.write_text("{}")
    with pytest.raises(DataError, match="not a COCO results file"):
        load_results(res, gt)


def test_parsing_quality_reads_the_split_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clothparse.bench import parsing_quality

    (tmp_path / "val.json").write_text(json.dumps({"images": [{"id": 1}]}))
    args = ["--model", str(tmp_path / "nope"), "--body-model", str(tmp_path / "nope"), "--data", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:  # the models are never opened
        parsing_quality.main(args)
    assert exc.value.code == f"error: {tmp_path / 'val.json'}: image #0 has no 'file_name'"


def test_eval_results_does_not_import_torch(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    (data / "test.json").write_text(json.dumps({"images": [IMAGE], "annotations": [], "categories": CATS}))
    res = tmp_path / "res.json"
    res.write_text("[]")
    code = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        from clothparse.cli.app import app
        r = CliRunner().invoke(app, ["eval", "--results", {str(res)!r}, "--data", {str(data)!r}, "-q"])
        print("exit", r.exit_code)
        print("torch", "torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "exit 0" in out.stdout, out.stdout + out.stderr
    assert "torch False" in out.stdout, out.stdout
