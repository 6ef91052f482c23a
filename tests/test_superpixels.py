"""Superpixel backends: scikit-image backend vs scikit-image itself, get_backend, relabelling."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from skimage.segmentation import slic

from clothparse.errors import ConfigError, DataError, DependencyError
from clothparse.parse import slic_native
from clothparse.parse import superpixels as sp


def _photo(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = np.stack([xx * 3, yy * 3, (xx + yy) * 2], axis=-1) % 256
    return np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


def test_skimage_backend_equals_skimage_slic() -> None:
    img = _photo()
    got = sp.get_backend("skimage").segment(img, n_segments=40, compactness=20.0, sigma=2.0)
    want = slic(img, n_segments=40, compactness=20.0, sigma=2.0, convert2lab=True, start_label=0, channel_axis=-1)
    assert got.dtype == np.int32 and got.shape == img.shape[:2]
    assert np.array_equal(got, sp.relabel_contiguous(want))
    assert np.array_equal(np.unique(got), np.arange(got.max() + 1))


def test_default_parameters_are_the_seeds() -> None:
    img = _photo(96, 96, seed=1)
    got = sp.SkimageSlic().segment(img)
    want = slic(img, n_segments=900, compactness=20, sigma=2, convert2lab=True, start_label=0, channel_axis=-1)
    assert np.array_equal(got, sp.relabel_contiguous(want))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (2, 2)])
def test_tiny_images(shape: tuple[int, int]) -> None:
    img = np.full((*shape, 3), 120, np.uint8)
    lab = sp.get_backend("skimage").segment(img)
    assert lab.shape == shape and lab.dtype == np.int32 and lab.min() == 0
    assert np.array_equal(np.unique(lab), np.arange(lab.max() + 1))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)],
)
def test_bad_images_raise_data_error(bad: np.ndarray) -> None:
    with pytest.raises(DataError):
        sp.SkimageSlic().segment(bad)


BAD_PARAMS = [
    ({"n_segments": 0}, "n_segments must be >= 1, got 0"),
    ({"n_segments": 2.5}, "n_segments must be an integer, got 2.5"),
    ({"n_segments": True}, "n_segments must be an integer, got True"),
    ({"compactness": 0.0}, "compactness must be > 0, got 0.0"),
    ({"compactness": 0.0005}, None),  # fine: any positive compactness
    ({"compactness": float("nan")}, "compactness must be > 0, got nan"),
    ({"compactness": "x"}, "compactness must be a number, got 'x'"),
    ({"sigma": -1.0}, "sigma must be >= 0, got -1.0"),
    ({"sigma": float("inf")}, "sigma must be >= 0, got inf"),
]


def _entry_points() -> dict[str, object]:
    """Every way SLIC settings come in; all must answer a bad setting the same way."""
    out: dict[str, object] = {
        "SlicParams": lambda **kw: sp.SlicParams(**kw),
        "skimage backend": lambda **kw: sp.SkimageSlic().segment(_photo(8, 8), **kw),
    }
    if slic_native.available():
        out["native backend"] = lambda **kw: sp.NativeSlic().segment(_photo(8, 8), **kw)
        out["slic_native.slic"] = lambda **kw: slic_native.slic(_photo(8, 8), **kw)
    return out


@pytest.mark.parametrize("entry", sorted(_entry_points()))
@pytest.mark.parametrize(("kw", "message"), BAD_PARAMS)
def test_slic_settings_are_checked_once_for_every_entry_point(
    entry: str, kw: dict[str, object], message: str | None
) -> None:
    call = _entry_points()[entry]
    if message is None:
        call(**kw)  # type: ignore[operator]
        return
    with pytest.raises(ConfigError) as info:
        call(**kw)  # type: ignore[operator]
    assert str(info.value) == message


def test_slic_defaults_live_in_slic_params() -> None:
    import inspect

    from clothparse.cli.cmd_parse import parse
    from clothparse.parse.pipeline import Parser

    seed = sp.SlicParams()
    assert (seed.n_segments, seed.compactness, seed.sigma) == (900, 20.0, 2.0)  # the seed's settings
    assert type(seed.n_segments) is int and type(seed.compactness) is float
    for fn in (sp.SkimageSlic.segment, sp.NativeSlic.segment, slic_native.slic, parse):
        params = inspect.signature(fn).parameters
        got = {k: params[k].default for k in ("n_segments", "compactness", "sigma")}
        assert got == {"n_segments": 900, "compactness": 20.0, "sigma": 2.0}, fn
    assert Parser(_FakeEngine()).slic == seed


class _FakeEngine:
    class_names = ("bag",)


def test_cli_slic_settings_error_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image
    from typer.testing import CliRunner

    from clothparse.cli.app import app

    Image.fromarray(_photo(16, 16)).save(tmp_path / "a.png")
    for flag, value, message in [
        ("--n-segments", "0", "n_segments must be >= 1, got 0"),
        ("--compactness", "0", "compactness must be > 0, got 0.0"),
        ("--sigma", "-1", "sigma must be >= 0, got -1.0"),
    ]:
        r = CliRunner().invoke(
            app, ["parse", str(tmp_path / "a.png"), "--model", str(tmp_path / "none.safetensors"),
                  "--out", str(tmp_path / "out"), flag, value],
        )
        assert r.exit_code != 0 and message in r.output and r.output.count("\n") == 1, r.output


def test_relabel_contiguous() -> None:
    lab = np.array([[5, 5, 9], [2, 9, 9]])
    out = sp.relabel_contiguous(lab)
    assert out.dtype == np.int32
    assert np.array_equal(out, [[1, 1, 2], [0, 2, 2]])
    same = np.array([[0, 1], [2, 1]], np.int32)
    assert np.array_equal(sp.relabel_contiguous(same), same)
    with pytest.raises(ValueError):
        sp.relabel_contiguous(np.array([[-1, 0]]))


def test_get_backend_names(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError):
        sp.get_backend("opencv")
    sk = sp.get_backend("skimage")
    two = np.zeros((16, 16, 3), np.uint8)
    two[:, 8:] = 255
    lab = sk.segment(two, n_segments=4, compactness=10, sigma=0)  # no superpixel crosses the edge
    assert sk.name == "skimage" and lab.shape == (16, 16)
    assert set(np.unique(lab[:, :8])).isdisjoint(np.unique(lab[:, 8:])) and len(np.unique(lab)) > 1
    monkeypatch.setattr(sp, "_native_available", lambda: False)
    monkeypatch.setattr(sp, "_told_fallback", False)
    with pytest.raises(DependencyError, match=r"clothparse\._slic"):
        sp.get_backend("native")
    with caplog.at_level(logging.WARNING, logger=sp.__name__):
        assert sp.get_backend("auto").name == "skimage"
        assert sp.get_backend().name == "skimage"
    told = [r for r in caplog.records if "clothparse._slic" in r.getMessage()]
    assert len(told) == 1  # the user is told once, not per image


@pytest.mark.skipif(not slic_native.available(), reason="native SLIC (clothparse._slic) is not built")
def test_auto_prefers_native_when_built() -> None:
    backend = sp.get_backend("auto")
    assert backend.name == "native" and sp.get_backend("native").name == "native"
    img = _photo(48, 40)
    got = backend.segment(img, n_segments=30, compactness=10.0, sigma=1.0)
    assert got.dtype == np.int32 and got.shape == img.shape[:2]
    assert np.array_equal(got, slic_native.slic(img, 30, 10.0, 1.0))
    assert np.array_equal(np.unique(got), np.arange(got.max() + 1))
