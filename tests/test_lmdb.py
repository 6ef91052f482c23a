"""Paperdoll LMDB extraction on a small LMDB built here: extract, resume, count problems."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.cli.errors import EXIT_PARTIAL
from clothparse.data import lmdb_extract
from clothparse.data.lmdb_extract import check_image_bytes, extract_images
from clothparse.errors import DataError

runner = CliRunner()


def _encode(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (24, 16)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _make_lmdb(path: Path, items: dict[bytes, bytes], subdir: bool = True) -> None:
    env = lmdb.open(str(path), map_size=1 << 22, subdir=subdir)
    with env.begin(write=True) as txn:
        for k, v in items.items():
            txn.put(k, v)
    env.close()


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    """LMDB with ids 100014 (JPEG), 100015 (PNG), 100016 (JPEG), 100017 (garbage),
    100018 (truncated JPEG); the annotation file also names 100019, which is absent."""
    values = {
        b"100014": _encode(1),
        b"100015": _encode(2, "PNG"),
        b"100016": _encode(3, size=(16, 24)),  # the annotation says 24x16
        b"100017": b"this is not an image at all",
        b"100018": _encode(4)[:-200],
        b"999999": _encode(5),  # not named by the annotation file: must not be extracted
    }
    _make_lmdb(tmp_path / "photos.lmdb", values)
    images = [
        {"id": i, "file_name": f"sub/{i}.jpg", "width": 24, "height": 16}
        for i in (100014, 100015, 100016, 100017, 100018, 100019)
    ]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": []}))
    return {
        "lmdb": tmp_path / "photos.lmdb",
        "ann": ann,
        "out": tmp_path / "images",
        "values": values,
    }


def test_extract_counts_and_bytes(setup: dict[str, Any]) -> None:
    calls: list[tuple[int, int]] = []
    rep = extract_images(
        setup["lmdb"], setup["ann"], setup["out"], progress=lambda n, t: calls.append((n, t))
    )
    assert (rep.wanted, rep.extracted, rep.skipped) == (6, 3, 0)
    assert (rep.missing_keys, rep.undecodable, rep.failed) == (1, 2, 3)
    assert rep.examples["missing_keys"] == ["100019"]
    assert rep.size_mismatch == 1
    out = setup["out"] / "sub"
    assert sorted(p.name for p in out.iterdir()) == ["100014.jpg", "100015.jpg", "100016.jpg"]
    for key in (b"100014", b"100015", b"100016"):
        assert (out / f"{key.decode()}.jpg").read_bytes() == setup["values"][key]
    assert calls == [(1, 6)] * 6
    text = "\n".join(rep.lines())
    assert "3 extracted" in text and "1 missing keys" in text and "100019" in text


def test_resume_after_partial_run(setup: dict[str, Any]) -> None:
    extract_images(setup["lmdb"], setup["ann"], setup["out"])
    out = setup["out"] / "sub"
    (out / "100014.jpg").unlink()
    (out / "100015.jpg").write_bytes(setup["values"][b"100015"][:50])  # a partial file
    stale = out / ".100016.jpg.abc123xy.tmp"  # what a killed atomic write leaves
    stale.write_bytes(b"partial")
    mtime = (out / "100016.jpg").stat().st_mtime_ns
    rep = extract_images(setup["lmdb"], setup["ann"], setup["out"])
    assert (rep.extracted, rep.skipped, rep.missing_keys, rep.undecodable) == (2, 1, 1, 2)
    assert (out / "100015.jpg").read_bytes() == setup["values"][b"100015"]
    assert (out / "100014.jpg").read_bytes() == setup["values"][b"100014"]
    assert (out / "100016.jpg").stat().st_mtime_ns == mtime  # complete file untouched
    assert not stale.exists()


def test_interrupted_write_leaves_no_partial_file(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    count = {"n": 0}

    def flaky_fsync(fd: int) -> None:
        count["n"] += 1
        if count["n"] == 2:  # killed after writing the second file's bytes, before rename
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(KeyboardInterrupt):
        extract_images(setup["lmdb"], setup["ann"], setup["out"])
    out = setup["out"] / "sub"
    assert [p.name for p in out.iterdir()] == ["100014.jpg"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    rep = extract_images(setup["lmdb"], setup["ann"], setup["out"])
    assert (rep.extracted, rep.skipped) == (2, 1)


def test_lmdb_as_single_file_and_unsafe_names(tmp_path: Path) -> None:
    _make_lmdb(tmp_path / "photos.mdb", {b"1": _encode(0), b"2": _encode(1)}, subdir=False)
    images = [
        {"id": 1, "file_name": "1.jpg", "width": 24, "height": 16},
        {"id": 2, "file_name": "../escape.jpg", "width": 24, "height": 16},
        {"id": "x", "file_name": "x.jpg"},
    ]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": images}))
    rep = extract_images(tmp_path / "photos.mdb", ann, tmp_path / "out")
    assert (rep.extracted, rep.bad_names, rep.failed) == (1, 2, 2)
    assert not (tmp_path / "escape.jpg").exists()


def test_check_image_bytes() -> None:
    assert check_image_bytes(_encode(0)) == (24, 16)
    assert check_image_bytes(_encode(0, "PNG", (9, 7))) == (9, 7)
    assert check_image_bytes(_encode(0)[:-300]) is None  # truncated JPEG: no end marker
    assert check_image_bytes(b"\xff\xd8\xff" + b"\x00" * 50 + b"\xff\xd9") is None  # magic only
    assert check_image_bytes(b"") is None


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such LMDB"):
        lmdb_extract.open_lmdb(tmp_path / "nope.lmdb")
    junk = tmp_path / "junk.mdb"
    junk.write_bytes(b"\x00" * 10000)
    with pytest.raises(DataError, match="cannot open as LMDB"):
        lmdb_extract.open_lmdb(junk)


def test_cli_exit_codes(setup: dict[str, Any], tmp_path: Path) -> None:
    args = ["data", "lmdb", str(setup["lmdb"]), str(setup["ann"]), "--out", str(setup["out"])]
    res = runner.invoke(app, args)
    assert res.exit_code == EXIT_PARTIAL, res.output  # some ids missing / undecodable
    assert "3 extracted" in res.stdout and "1 missing keys" in res.stdout

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"images": [{"id": 100014, "file_name": "a.jpg"}]}))
    res = runner.invoke(
        app, ["data", "lmdb", str(setup["lmdb"]), str(good), "--out", str(tmp_path / "o2"), "-q"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o2" / "a.jpg").read_bytes() == setup["values"][b"100014"]
    res = runner.invoke(
        app, ["data", "lmdb", str(setup["lmdb"]), str(good), "--out", str(tmp_path / "o2")]
    )
    assert res.exit_code == 0 and "0 extracted, 1 already present" in res.stdout

    missing = tmp_path / "absent.lmdb"
    res = runner.invoke(
        app, ["data", "lmdb", str(missing), str(good), "--out", str(tmp_path / "o3")]
    )
    assert res.exit_code == 1
    err = res.stderr.strip()
    assert err.startswith("error:") and str(missing) in err and "\n" not in err
