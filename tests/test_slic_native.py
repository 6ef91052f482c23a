"""Native SLIC (clothparse._slic via clothparse.parse.slic_native) against plain references.

The clustering is checked against a numpy re-implementation of the same algorithm, the Lab
planes against scikit-image + scipy, and the connectivity pass against a scipy.ndimage.label
reference; hypothesis checks the label invariants on random small images.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.measure import label as label_regions
from skimage.util import regular_grid

from clothparse.errors import ConfigError, DataError, DependencyError
from clothparse.parse import slic_native

needs_native = pytest.mark.skipif(not slic_native.available(), reason=slic_native.BUILD_HINT)


def blocks(h: int, w: int, block: int, seed: int, noise: float = 6.0) -> np.ndarray:
    """RGB uint8 [h, w, 3]: random flat blocks plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, ((h + block - 1) // block, (w + block - 1) // block, 3))
    img = np.repeat(np.repeat(colours, block, 0), block, 1)[:h, :w].astype(float)
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def grid_info(h: int, w: int, n: int) -> tuple[list[tuple[int, int]], float, int, int]:
    """Seeds (y, x), spatial step, and window radii as skimage's regular_grid defines them."""
    sl = regular_grid((1, h, w), n)
    ys, xs = range(h)[sl[1]], range(w)[sl[2]]
    steps = [float(s.step) if s.step is not None else 1.0 for s in sl]
    k = len(ys) * len(xs)
    wsl = regular_grid((1, h, w), k)
    rad = [max(1, int(s.step) if s.step is not None else 1) for s in wsl[1:]]
    return [(y, x) for y in ys for x in xs], max(steps), rad[0], rad[1]


def reference_slic(
    planes: np.ndarray, n: int, compactness: float, max_iter: int = 10
) -> np.ndarray:
    """Plain numpy SLIC on float [3, H, W] Lab planes; labels renumbered by centre index."""
    _, h, w = planes.shape
    seeds, step, ry, rx = grid_info(h, w, n)
    ys = np.array([s[0] for s in seeds])
    xs = np.array([s[1] for s in seeds])
    nx = len(set(xs.tolist()))
    ny = len(seeds) // nx
    start_y, start_x = ys.min(), xs.min()
    sy = ys[nx] - ys[0] if ny > 1 else max(1, h)
    sx = xs[1] - xs[0] if nx > 1 else max(1, w)
    centres = np.array([[y, x, *planes[:, y, x]] for y, x in seeds], dtype=np.float32)
    weight = (compactness / step) ** 2
    iy = np.clip(np.floor((np.arange(h) - start_y) / sy + 0.5).astype(int), 0, ny - 1)
    ix = np.clip(np.floor((np.arange(w) - start_x) / sx + 0.5).astype(int), 0, nx - 1)
    labels = iy[:, None] * nx + ix[None, :]
    yy, xx = np.mgrid[:h, :w]
    for it in range(max_iter):
        dist = np.full((h, w), np.inf)
        for k, (cy, cx, *col) in enumerate(centres.astype(np.float64)):
            y0, y1 = int(max(cy - ry, 0)), int(min(cy + ry, h))
            x0, x1 = int(max(cx - rx, 0)), int(min(cx + rx, w))
            win = (slice(y0, y1), slice(x0, x1))
            d = sum((planes[c][win] - col[c]) ** 2 for c in range(3))
            d = d + weight * ((yy[win] - cy) ** 2 + (xx[win] - cx) ** 2)
            better = d < dist[win]
            dist[win][better] = d[better]
            labels[win][better] = k
        if it + 1 == max_iter:
            break
        flat = labels.ravel()
        count = np.bincount(flat, minlength=len(centres)).astype(float)
        feats = [yy.ravel(), xx.ravel(), *(p.ravel() for p in planes)]
        sums = np.stack([np.bincount(flat, weights=f, minlength=len(centres)) for f in feats], 1)
        ok = count > 0
        centres[ok] = (sums[ok] / count[ok, None]).astype(np.float32)
    used = np.unique(labels)
    return np.searchsorted(used, labels).astype(np.int32)


def reference_connectivity(raw: np.ndarray, min_size: int) -> np.ndarray:
    """Components of equal labels; a piece under min_size takes the label left of (else above) its first pixel."""
    h, w = raw.shape
    comp = np.zeros((h, w), dtype=np.int64)
    n_comp = 0
    for v in np.unique(raw):
        lab, n = ndimage.label(raw == v)
        comp[lab > 0] = lab[lab > 0] + n_comp
        n_comp += n
    flat = comp.ravel()
    first = np.full(n_comp + 1, h * w)
    np.minimum.at(first, flat, np.arange(h * w))
    size = np.bincount(flat, minlength=n_comp + 1)
    final = np.full(n_comp + 1, -1)
    out = np.full(h * w, -1)
    nxt = 0
    for c in np.argsort(first[1:]) + 1:
        p = first[c]
        if size[c] < min_size and p > 0:
            final[c] = out[p - 1] if p % w else out[p - w]
        else:
            final[c] = nxt
            nxt += 1
        out[flat == c] = final[c]
    return out.reshape(h, w)


def assert_contiguous_connected(labels: np.ndarray) -> None:
    """Labels 0..S-1 all present, and each label one 4-connected component."""
    s = int(labels.max()) + 1
    assert labels.min() == 0
    assert np.all(np.bincount(labels.ravel(), minlength=s) > 0)
    # skimage labels 4-connected regions of equal value: one region per label when connected.
    assert label_regions(labels, connectivity=1, background=-1).max() == s


@needs_native
@pytest.mark.parametrize("sigma", [0.0, 1.5])
def test_lab_planes_match_skimage_and_scipy(sigma: float) -> None:
    img = blocks(37, 53, 6, seed=1)
    img[0, 0] = (3, 250, 17)  # byte range not 0..255 overall: exercises the stretch
    got = slic_native.lab_planes(img, sigma)
    f = img.astype(np.float64)
    f = (f - f.min()) / (f.max() - f.min())
    want = np.moveaxis(rgb2lab(f), -1, 0)
    if sigma > 0:
        want = np.stack(
            [ndimage.gaussian_filter(p, sigma, mode="reflect", truncate=4.0) for p in want]
        )
    assert got.shape == (3, 37, 53) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-3)


@needs_native
@pytest.mark.parametrize(
    ("h", "w", "n", "compactness"),
    [(48, 64, 30, 20.0), (41, 29, 12, 5.0), (20, 90, 9, 40.0)],
)
def test_clustering_matches_numpy_reference(h: int, w: int, n: int, compactness: float) -> None:
    img = blocks(h, w, 7, seed=h * w)
    planes = slic_native.lab_planes(img, 1.0)
    got = slic_native.slic(img, n, compactness, 1.0, enforce_connectivity=False)
    want = reference_slic(planes.astype(np.float64), n, compactness)
    # float32 vs float64 distances may flip an exact tie; nothing more.
    assert np.mean(got != want) <= 0.002


@needs_native
def test_long_bright_runs_sum_exactly() -> None:
    # Two seeds 6000 px apart on a white row: runs of ~6000 white pixels sum to more than
    # 6000 * 100 * 4096 > 2^31 in the centre accumulation's integer units, so runs over
    # 4096 px must be summed in pieces. One dark pixel keeps the byte-range stretch the identity.
    img = np.full((2, 12000, 3), 250, np.uint8)
    img[:, 10000:] = 120
    img[0, 0] = 0
    planes = slic_native.lab_planes(img, 0.0)
    got = slic_native.slic(img, 2, 20.0, 0.0, enforce_connectivity=False)
    want = reference_slic(planes.astype(np.float64), 2, 20.0)
    np.testing.assert_array_equal(got, want)


@needs_native
def test_connectivity_matches_reference() -> None:
    img = blocks(64, 80, 5, seed=3, noise=25.0)
    n = 40
    raw = slic_native.slic(img, n, 8.0, 0.5, enforce_connectivity=False)
    k = len(grid_info(64, 80, n)[0])
    min_size = int(0.5 * 64 * 80 / k)
    got = slic_native.slic(img, n, 8.0, 0.5, min_size_factor=0.5, max_size_factor=1e9)
    np.testing.assert_array_equal(got, reference_connectivity(raw, min_size))
    assert_contiguous_connected(got)


@needs_native
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    n=st.integers(1, 2000),
    compactness=st.floats(0.5, 50.0),
    sigma=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**16),
    max_factor=st.floats(0.5, 4.0),
)
def test_invariants_on_random_images(
    h: int, w: int, n: int, compactness: float, sigma: float, seed: int, max_factor: float
) -> None:
    img = blocks(h, w, 1 + seed % 9, seed)
    labels = slic_native.slic(img, n, compactness, sigma, max_size_factor=max_factor)
    assert labels.shape == (h, w) and labels.dtype == np.int32
    assert labels.max() + 1 <= h * w
    assert_contiguous_connected(labels)
    again = slic_native.slic(img, n, compactness, sigma, max_size_factor=max_factor, num_threads=1)
    np.testing.assert_array_equal(labels, again)


@needs_native
def test_threads_do_not_change_the_result() -> None:
    img = blocks(120, 160, 9, seed=7)
    one = slic_native.slic(img, 200, 20.0, 2.0, num_threads=1)
    for t in (2, 3):
        np.testing.assert_array_equal(one, slic_native.slic(img, 200, 20.0, 2.0, num_threads=t))


@needs_native
def test_uniform_image_gives_the_seed_grid() -> None:
    img = np.full((60, 90, 3), 77, np.uint8)
    labels = slic_native.slic(img, 54, 20.0, 2.0)
    assert labels.max() + 1 == 54  # 6 x 9 cells of 10 px
    sizes = np.bincount(labels.ravel())
    assert sizes.min() >= 80 and sizes.max() <= 125


@needs_native
def test_tiny_images_and_more_segments_than_pixels() -> None:
    one = slic_native.slic(np.zeros((1, 1, 3), np.uint8), 5)
    assert one.tolist() == [[0]]
    img = np.array([[[0, 0, 0], [255, 255, 255]], [[255, 0, 0], [0, 0, 255]]], np.uint8)
    labels = slic_native.slic(img, 100, enforce_connectivity=False)
    assert sorted(labels.ravel().tolist()) == [0, 1, 2, 3]


@needs_native
def test_non_contiguous_input_equals_contiguous() -> None:
    img = blocks(50, 70, 8, seed=5)
    wide = np.zeros((50, 140, 3), np.uint8)
    wide[:, ::2] = img
    np.testing.assert_array_equal(slic_native.slic(wide[:, ::2], 60), slic_native.slic(img, 60))


@needs_native
def test_superpixels_native_backend_uses_the_extension() -> None:
    from clothparse.parse.superpixels import get_backend

    img = blocks(64, 64, 8, seed=9)
    backend = get_backend("native")
    assert backend.name == "native"
    np.testing.assert_array_equal(
        backend.segment(img, 50, 20.0, 2.0), slic_native.slic(img, 50, 20.0, 2.0)
    )


@needs_native
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"image": np.zeros((4, 4), np.uint8)}, DataError),
        ({"image": np.zeros((4, 4, 3), np.float32)}, DataError),
        ({"image": np.zeros((0, 4, 3), np.uint8)}, DataError),
        ({"image": [[0, 0, 0]]}, DataError),
        ({"n_segments": 0}, ConfigError),
        ({"n_segments": 2.5}, ConfigError),
        ({"compactness": 0.0}, ConfigError),
        ({"compactness": float("nan")}, ConfigError),
        ({"sigma": -1.0}, ConfigError),
        ({"min_size_factor": -0.1}, ConfigError),
        ({"min_size_factor": 2.0, "max_size_factor": 1.0}, ConfigError),
        ({"max_iter": 0}, ConfigError),
        ({"num_threads": -1}, ConfigError),
    ],
)
def test_bad_arguments_raise_cpt_errors(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"image": np.zeros((4, 4, 3), np.uint8), "n_segments": 4}
    args.update(kwargs)
    with pytest.raises(error):
        slic_native.slic(**args)  # type: ignore[arg-type]


def test_missing_extension_says_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slic_native, "_module", lambda: None)
    assert not slic_native.available()
    with pytest.raises(DependencyError, match="pip install"):
        slic_native.slic(np.zeros((4, 4, 3), np.uint8))


@needs_native
def test_native_defaults_agree_with_slic_params() -> None:
    """The C++ core's Params defaults, the binding's and slic_native's are SlicParams' numbers."""
    import dataclasses
    import importlib
    import inspect

    from clothparse.parse.superpixels import SlicParams

    native = importlib.import_module("clothparse._slic").DEFAULT_PARAMS
    assert {k: native[k] for k in ("n_segments", "compactness", "sigma")} == dataclasses.asdict(SlicParams())
    params = inspect.signature(slic_native.slic).parameters
    assert {k: params[k].default for k in native} == native
