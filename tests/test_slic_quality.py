"""Superpixel quality metrics (bench/slic_quality.py) and the native-vs-scikit-image quality bar."""

from __future__ import annotations

import numpy as np
import pytest
from clothparse.bench import slic_quality as q
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.segmentation import slic as sk_slic

from clothparse.parse import slic_native

needs_native = pytest.mark.skipif(not slic_native.available(), reason=slic_native.BUILD_HINT)

label_maps = arrays(
    np.int32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 4)
)


def brute_ue(sp: np.ndarray, gt: np.ndarray) -> float:
    total = 0
    for g in np.unique(gt):
        for s in np.unique(sp):
            inside = int(np.sum((sp == s) & (gt == g)))
            if inside:
                total += min(inside, int(np.sum((sp == s) & (gt != g))))
    return total / sp.size


def brute_asa(sp: np.ndarray, gt: np.ndarray) -> float:
    return (
        sum(max(int(np.sum((sp == s) & (gt == g))) for g in np.unique(gt)) for s in np.unique(sp))
        / sp.size
    )


def brute_recall(sp: np.ndarray, gt: np.ndarray, tol: int) -> float:
    gt_edge, sp_edge = q.boundaries(gt), q.boundaries(sp)
    ys, xs = np.nonzero(gt_edge)
    if len(ys) == 0:
        return 1.0
    hits = [
        sp_edge[max(0, y - tol) : y + tol + 1, max(0, x - tol) : x + tol + 1].any()
        for y, x in zip(ys, xs, strict=True)
    ]
    return float(np.mean(hits))


@settings(max_examples=60, deadline=None)
@given(sp=label_maps, data=st.data())
def test_metrics_match_brute_force(sp: np.ndarray, data: st.DataObject) -> None:
    gt = data.draw(arrays(np.int32, sp.shape, elements=st.integers(0, 3)))
    tol = data.draw(st.integers(0, 3))
    assert q.undersegmentation_error(sp, gt) == pytest.approx(brute_ue(sp, gt))
    assert q.achievable_segmentation_accuracy(sp, gt) == pytest.approx(brute_asa(sp, gt))
    assert q.boundary_recall(sp, gt, tol) == pytest.approx(brute_recall(sp, gt, tol))


def test_metrics_on_perfect_and_coarse_segmentations() -> None:
    gt = np.zeros((8, 8), np.int32)
    gt[:, 4:] = 1
    assert q.score(gt, gt) == q.Scores(1.0, 0.0, 1.0, 2)
    one = np.zeros_like(gt)
    s = q.score(one, gt)
    assert s.boundary_recall == 0.0 and s.asa == 0.5 and s.undersegmentation_error == 1.0


@pytest.mark.skipif(not slic_native.available(), reason=slic_native.BUILD_HINT)
def test_native_quality_within_001_of_skimage() -> None:
    from clothparse.data.synth.scene import render_scene

    rng = np.random.default_rng(11)
    scenes = [render_scene(rng, 160) for _ in range(3)]
    native, ref = [], []
    for scene in scenes:
        gt = scene.owner + 1
        native.append(q.score(slic_native.slic(scene.image, 200, 20.0, 2.0), gt))
        ref.append(
            q.score(
                sk_slic(scene.image, n_segments=200, compactness=20.0, sigma=2.0, start_label=0), gt
            )
        )
    mean = lambda xs, k: float(np.mean([getattr(x, k) for x in xs]))  # noqa: E731
    assert mean(native, "boundary_recall") >= mean(ref, "boundary_recall") - 0.01
    assert mean(native, "undersegmentation_error") <= mean(ref, "undersegmentation_error") + 0.01
    assert mean(native, "asa") >= mean(ref, "asa") - 0.01
    # Same parameters, same scale of result: the segment counts stay close.
    assert abs(mean(native, "n_superpixels") / mean(ref, "n_superpixels") - 1) < 0.1


def test_speed_bench_report_is_well_formed() -> None:
    from clothparse.bench import slic_bench

    rows = slic_bench.run(repeat=1, threads=1, skimage_repeat=1, sizes=((48, 32),))
    impls = {r["impl"] for r in rows}
    assert "skimage" in impls
    assert (slic_bench.native_name(1) in impls) == slic_native.available()
    for r in rows:
        assert r["size"] == "48x32" and r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"]
    table = slic_bench.markdown(rows).splitlines()
    assert len(table) == 2 + len(rows) and all(line.count("|") == 8 for line in table)


@needs_native
def test_speed_bench_times_another_build_and_rejects_bad_files(tmp_path) -> None:
    from clothparse.bench import slic_bench

    from clothparse import _slic
    from clothparse.errors import DependencyError

    rows = slic_bench.run(repeat=1, threads=1, skimage_repeat=1, sizes=((48, 32),), other_build=_slic.__file__)
    assert "native, other build (1 thread)" in {r["impl"] for r in rows}
    for bad in (tmp_path / "missing.so", tmp_path / "junk.so"):
        if bad.name == "junk.so":
            bad.write_bytes(b"not an ELF file")
        with pytest.raises(DependencyError, match=bad.name):
            slic_bench.load_other_build(str(bad))


def test_quality_report_is_well_formed() -> None:
    img = np.zeros((24, 24, 3), np.uint8)
    img[:, 12:] = 200
    gt = (np.arange(24)[None, :] >= 12).repeat(24, 0).astype(np.int32)
    rows = q.evaluate(iter([("halves", img, gt)]), q.backends())
    assert {r["backend"] for r in rows} >= {"skimage"}
    assert all(0.0 <= r["asa"] <= 1.0 and r["boundary_recall"] > 0.9 for r in rows)
    assert set(q.summary(rows)) == {r["backend"] for r in rows}
    assert q.markdown(rows).count("\n") == 1 + 2 * len(rows)
