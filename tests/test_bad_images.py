"""Awkward and broken photos: decoded correctly when valid, one-line errors otherwise,
the batch goes on, no partial outputs, non-zero exit code."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers_parse import save_tiny, synthetic_photo
from PIL import Image
from typer.testing import CliRunner

from clothparse.cli.app import app
from clothparse.cli.errors import EXIT_ERROR, EXIT_INTERNAL, EXIT_PARTIAL, EXIT_USAGE
from clothparse.errors import DataError
from clothparse.io.images import decode_rgb, read_rgb

runner = CliRunner()

#: Four quadrant colours, RGB, far apart so JPEG/CMYK round trips stay recognisable.
TL, TR, BL, BR = (220, 30, 40), (30, 200, 60), (40, 60, 210), (240, 220, 40)


def quadrants(h: int = 64, w: int = 96) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = TL
    img[: h // 2, w // 2 :] = TR
    img[h // 2 :, : w // 2] = BL
    img[h // 2 :, w // 2 :] = BR
    return img


def _huge_png(path: Path, side: int = 40000) -> None:
    """A valid PNG header claiming side x side RGB pixels (the data is tiny and wrong)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def make_zoo(d: Path) -> dict[str, Path]:
    """Every kind of awkward file, written with PIL into ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    q = quadrants()
    z: dict[str, Path] = {}
    z["cmyk"] = d / "cmyk.jpg"
    Image.fromarray(q).convert("CMYK").save(z["cmyk"], quality=95)
    z["gray16"] = d / "gray16.png"
    ramp = (np.arange(64 * 96).reshape(64, 96) * 10).astype(np.uint16)
    Image.fromarray(ramp).save(z["gray16"])
    z["rgba"] = d / "rgba.png"
    rgba = np.dstack([q, np.full(q.shape[:2], 255, np.uint8)])
    rgba[:, :8, 3] = 0  # transparent strip -> white
    Image.fromarray(rgba, "RGBA").save(z["rgba"])
    z["gray"] = d / "gray.jpg"
    Image.fromarray(q).convert("L").save(z["gray"], quality=95)
    z["exif6"] = d / "exif6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(q).save(z["exif6"], quality=95, exif=exif.tobytes())
    z["empty"] = d / "empty.jpg"
    z["empty"].write_bytes(b"")
    full = d / "full.jpg"
    Image.fromarray(synthetic_photo(128, 96)).save(full, quality=90)
    z["truncated"] = d / "truncated.jpg"
    z["truncated"].write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    z["text"] = d / "notes.jpg"
    z["text"].write_text("this is not a photo\n")
    # Valid photos below 8 px on a side: photos like any other (the model resizes them).
    z["tiny"] = d / "tiny.png"
    Image.fromarray(q[:1, :1]).save(z["tiny"])
    z["tiny75"] = d / "tiny75.jpg"
    Image.fromarray(q[:5, :7]).save(z["tiny75"], quality=95)
    z["huge"] = d / "huge.png"
    _huge_png(z["huge"])
    return z


BAD = {"empty": "empty", "truncated": "truncated", "text": "not an image", "huge": "too large"}
#: (height, width) of each valid photo after EXIF orientation.
GOOD = {"cmyk": (64, 96), "gray16": (64, 96), "rgba": (64, 96), "gray": (64, 96), "exif6": (96, 64),
        "tiny": (1, 1), "tiny75": (5, 7)}


@pytest.fixture()
def zoo(tmp_path: Path) -> dict[str, Path]:
    return make_zoo(tmp_path / "zoo")


def _close(a: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.abs(a.astype(int) - np.array(rgb)).max() <= tol)


def test_valid_awkward_images_decode_correctly(zoo: dict[str, Path]) -> None:
    cmyk = read_rgb(zoo["cmyk"])
    assert cmyk.shape == (64, 96, 3) and cmyk.dtype == np.uint8
    assert _close(cmyk[10, 10], TL) and _close(cmyk[50, 80], BR)
    g16 = read_rgb(zoo["gray16"])
    raw = (np.arange(64 * 96).reshape(64, 96) * 10).astype(np.float64)
    np.testing.assert_allclose(g16[..., 0], np.round(raw / 65535 * 255), atol=1)
    assert (g16[..., 0] == g16[..., 2]).all()
    rgba = read_rgb(zoo["rgba"])
    assert (rgba[:, :8] == 255).all() and _close(rgba[10, 20], TL, 0)
    gray = read_rgb(zoo["gray"])
    assert gray.shape == (64, 96, 3) and (gray[..., 0] == gray[..., 1]).all()
    rot = read_rgb(zoo["exif6"])
    # Orientation 6: displayed image = stored image rotated 90 degrees clockwise,
    # so the stored bottom-left quadrant ends up top-left.
    assert rot.shape == (96, 64, 3)
    assert _close(rot[5, 5], BL) and _close(rot[5, 60], TL) and _close(rot[90, 60], TR) and _close(rot[90, 5], BR)
    tiny = read_rgb(zoo["tiny"])
    assert tiny.shape == (1, 1, 3) and tiny.dtype == np.uint8 and _close(tiny[0, 0], TL, 0)
    assert read_rgb(zoo["tiny75"]).shape == (5, 7, 3)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_bytes_and_files_decode_the_same(zoo: dict[str, Path], kind: str) -> None:
    got = decode_rgb(zoo[kind].read_bytes(), zoo[kind].name)
    assert got.shape[:2] == GOOD[kind] and np.array_equal(got, read_rgb(zoo[kind]))


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bytes_get_the_same_checks_as_files(zoo: dict[str, Path], kind: str) -> None:
    """One decoder: bytes are refused for the same reasons as files (the size/bomb checks too)."""
    with pytest.raises(DataError) as info:
        decode_rgb(zoo[kind].read_bytes(), "photo.jpg")
    msg = str(info.value)
    assert msg.startswith("photo.jpg: ") and BAD[kind] in msg and "\n" not in msg


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_images_raise_one_line(zoo: dict[str, Path], kind: str) -> None:
    with pytest.raises(DataError) as info:
        read_rgb(zoo[kind])
    msg = str(info.value)
    assert msg.startswith(str(zoo[kind]) + ": ") and BAD[kind] in msg and "\n" not in msg


def test_dark_16bit_keeps_its_range(tmp_path: Path) -> None:
    """A dark 16-bit photo stays dark (16-bit modes mean 0-65535 whatever the content)."""
    p = tmp_path / "dark16.png"
    Image.fromarray(np.full((16, 16), 200, np.uint16)).save(p)
    assert read_rgb(p).max() <= 1


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    return save_tiny(d / "clothing"), save_tiny(d / "body", ["person"], seed=1)


def _parse(models: tuple[Path, Path], inputs: list[str], out: Path, *extra: str):
    clothing, body = models
    args = ["parse", *inputs, "--model", str(clothing), "--body-model", str(body), "--out", str(out),
            "--device", "cpu", "--score-thresh", "0", "--body-score-thresh", "0", "--n-segments", "40",
            "--superpixels", "skimage", "--quiet", *extra]
    return runner.invoke(app, args)


def test_batch_goes_on_past_bad_images(models, zoo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _parse(models, [str(zoo["empty"].parent), str(zoo["text"])], out)
    assert res.exit_code == EXIT_PARTIAL, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == len(BAD), res.output
    for kind, problem in BAD.items():
        line = next(ln for ln in errors if str(zoo[kind]) in ln)
        assert line.startswith(f"error: {zoo[kind]}: ") and problem in line
        assert not list(out.glob(f"{zoo[kind].stem}*")), f"outputs left for {kind}"
    for kind in GOOD:
        rec = json.loads((out / f"{kind}.json").read_text())
        assert (out / f"{kind}_labels.png").is_file() and (out / f"{kind}_overlay.png").is_file()
        expected = GOOD[kind]  # (height, width)
        assert (rec["image"]["height"], rec["image"]["width"]) == expected
        assert Image.open(out / f"{kind}_labels.png").size == expected[::-1]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert f"{len(GOOD)} parsed, 0 skipped, {len(BAD)} failed" in res.output


def test_missing_input_fails_but_others_parse(models, zoo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _parse(models, [str(zoo["gray"]), str(tmp_path / "missing.jpg")], out)
    assert res.exit_code == EXIT_PARTIAL
    assert f"error: {tmp_path / 'missing.jpg'}: no such file" in res.output
    assert (out / "gray.json").is_file()


def test_all_inputs_bad_exits_1(models, zoo: dict[str, Path], tmp_path: Path) -> None:
    res = _parse(models, [str(zoo["empty"]), str(zoo["text"])], tmp_path / "out")
    assert res.exit_code == 1 and res.output.count("error: ") == 2


def test_no_partial_outputs_when_writing_fails(models, zoo: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the PNGs were written (here: the JSON write) removes that photo's PNGs."""
    import clothparse.parse.batch as batch

    real = batch.write_json

    def failing_write_json(path, obj, indent=2):
        if Path(path).name == "gray.json":
            raise OSError(28, "No space left on device", str(path))
        return real(path, obj, indent)

    monkeypatch.setattr(batch, "write_json", failing_write_json)
    out = tmp_path / "out"
    res = _parse(models, [str(zoo["gray"]), str(zoo["rgba"])], out)
    assert res.exit_code == EXIT_PARTIAL
    assert "No space left on device" in res.output
    assert not list(out.glob("gray*"))
    assert sorted(p.name for p in out.glob("rgba*")) == ["rgba.json", "rgba_labels.png", "rgba_overlay.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_unexpected_error_is_one_internal_error(models, zoo: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (here: a TypeError in every parse) is not N failed photos: the batch stops at the
    first one and prints one `internal error` line saying how to see the traceback."""
    from clothparse.parse.pipeline import Parser

    calls: list[int] = []

    def broken_parse(self, image, detected):
        calls.append(1)
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'")

    # Parser.refine is every photo's post-model stage; --workers 0 runs photos one by one, so
    # "stopped at the first photo" is exact (the pipelined run: tests/test_parse_stream.py).
    monkeypatch.setattr(Parser, "refine", broken_parse)
    inputs = [str(zoo[k]) for k in GOOD]
    res = _parse(models, inputs, tmp_path / "out", "--workers", "0")
    assert res.exit_code == EXIT_INTERNAL, res.output
    assert len({0, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERNAL}) == 5 and EXIT_USAGE == 2  # Click's code
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("internal error: TypeError: unsupported operand") and "CPT_DEBUG=1" in lines[0]
    assert len(calls) == 1 and len(inputs) > 1  # stopped at the first photo
    assert "Traceback" not in res.output
    monkeypatch.setenv("CPT_DEBUG", "1")
    res = _parse(models, inputs, tmp_path / "out2", "--workers", "0")
    assert res.exit_code == EXIT_INTERNAL and "Traceback" in res.stderr and "broken_parse" in res.stderr
    assert res.stderr.count("internal error: ") == 1


def test_expected_errors_stay_one_line_each(models, zoo: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A CptError raised while parsing is the photo's problem: one `error:` line per photo, the batch goes on."""
    from clothparse.errors import ModelError
    from clothparse.parse.pipeline import Parser

    real = Parser.refine
    calls: list[int] = []

    def picky_parse(self, image, detected):
        calls.append(1)
        if len(calls) <= 2:
            raise ModelError("the engine refused this photo")
        return real(self, image, detected)

    monkeypatch.setattr(Parser, "refine", picky_parse)
    inputs = [str(zoo[k]) for k in GOOD]
    assert len(inputs) > 2
    res = _parse(models, inputs, tmp_path / "out", "--workers", "0")  # which photos refine first: input order
    assert res.exit_code == EXIT_PARTIAL, res.output
    assert "internal error" not in res.output and len(calls) == len(inputs)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: {p}: the engine refused this photo" for p in inputs[:2]], res.stderr
