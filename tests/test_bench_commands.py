"""The bench commands BENCHMARKS.md cites for issue 14: slic_builds and encode_profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clothparse.bench import encode_profile, slic_builds

from clothparse.parse import slic_native


class _Shifted:
    """A fake build whose labels differ from the real one's on one pixel."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def slic(self, image: np.ndarray, *args: Any) -> np.ndarray:
        out = np.array(self.real.slic(image, *args), dtype=np.int32)
        out[0, 0] += 1
        return out


needs_native = pytest.mark.skipif(not slic_native.available(), reason="native SLIC not built")


def test_slic_builds_has_50_cases() -> None:
    names = [name for name, _ in slic_builds.images()]
    assert len(names) * len(slic_builds.SIGMAS) == 50
    assert len(set(names)) == len(names)


@needs_native
def test_slic_builds_same_build_is_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = slic_builds.installed_build().__file__
    out = tmp_path / "rows.json"
    slic_builds.main(["--other-build", path, "--json", str(out)])
    assert "identical: 50 of 50 cases" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert len(rows) == 50 and all(r["identical"] for r in rows)


@needs_native
def test_slic_builds_reports_a_difference() -> None:
    real = slic_builds.installed_build()
    rows = slic_builds.compare(real, _Shifted(real))
    assert not any(r["identical"] for r in rows)
    assert all(0 < r["differing_pixels"] < 0.01 for r in rows)


def test_encode_profile_breakdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "profile.json"
    encode_profile.main(["--runs", "1", "--top", "3", "--json", str(out)])
    text = capsys.readouterr().out
    assert "encode_result on 1024x768, 100 items" in text
    doc = json.loads(out.read_text())
    parts = doc["profiled_ms"]
    assert set(parts) == {label for label, _, _ in encode_profile.PARTS}
    total = parts["encode_result (total)"]
    assert total > 0
    for label in ("polygons", "RLE", "overlay", "PNG encoding (overlay)", "label PNG"):
        assert 0 < parts[label] <= total
