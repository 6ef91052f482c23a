"""CI cannot pass by skipping the native SLIC: ``CLOTHPARSE_REQUIRE_NATIVE=1`` (exported by
``.ci/run``) turns "optional" into "required".

With the variable set, ``test_native_extension_is_built_when_required`` fails (it never skips)
when ``clothparse._slic`` does not import, ``make ctest`` fails without CMake, and the CMake
configure step fails without a C++ compiler. Without it nothing changes for users. The other
tests here show each of those by hiding the extension (a plugin that blocks the import), hiding
CMake (a PATH without it) or hiding the compiler (``CXX`` pointing nowhere); nothing is
uninstalled.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAG = "CLOTHPARSE_REQUIRE_NATIVE"
REQUIRED = os.environ.get(FLAG, "").strip() not in ("", "0")
THIS_TEST = f"{Path(__file__).resolve()}::test_native_extension_is_built_when_required"


def native_problem() -> str | None:
    """None when the native SLIC imports and answers; else what is wrong, one line."""
    from clothparse.parse import slic_native

    try:
        mod = importlib.import_module("clothparse._slic")
    except ImportError as exc:
        return f"clothparse._slic does not import ({exc}); {slic_native.BUILD_HINT}"
    if not slic_native.available() or int(mod.default_threads()) < 1:
        return "clothparse._slic imports but the native backend is not usable"
    return None


def test_native_extension_is_built_when_required() -> None:
    if not REQUIRED:
        pytest.skip(f"{FLAG} is not set: the native SLIC is optional on this machine")
    problem = native_problem()
    assert problem is None, problem


# -- the check above really fails when the extension is missing ------------------------------
def _run_required_check(tmp_path: Path, flag: str | None, hide: bool) -> subprocess.CompletedProcess[str]:
    """Run the test above in a fresh interpreter, with ``flag`` as CLOTHPARSE_REQUIRE_NATIVE and,
    when ``hide``, ``clothparse._slic`` made unimportable (as on a machine where it did not build)."""
    (tmp_path / "cpt_hide_native.py").write_text('import sys\nsys.modules["clothparse._slic"] = None  # import -> ImportError\n')
    env = {k: v for k, v in os.environ.items() if k != FLAG}
    if flag is not None:
        env[FLAG] = flag
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH", "")) if p)
    plugin = ["-p", "cpt_hide_native"] if hide else []
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *plugin, THIS_TEST],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_required_check_fails_when_the_extension_is_hidden(tmp_path: Path) -> None:
    res = _run_required_check(tmp_path, "1", hide=True)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out  # 1: tests failed (not 0, not 5 "nothing ran")
    assert "1 failed" in out and "skipped" not in out, out
    assert "clothparse._slic does not import" in out, out


def test_without_the_flag_a_missing_extension_is_a_skip(tmp_path: Path) -> None:
    for flag in (None, "0"):
        res = _run_required_check(tmp_path, flag, hide=True)
        out = res.stdout + res.stderr
        assert res.returncode == 0 and "1 skipped" in out and FLAG in out, out


@pytest.mark.skipif(importlib.util.find_spec("clothparse._slic") is None, reason="needs the built native SLIC")
def test_required_check_passes_with_the_extension(tmp_path: Path) -> None:
    res = _run_required_check(tmp_path, "1", hide=False)
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr


# -- make ctest without CMake ----------------------------------------------------------------
def _make_ctest_without_cmake(tmp_path: Path, flag: str | None) -> subprocess.CompletedProcess[str]:
    """``make ctest`` with a PATH that holds only ``make`` (so ``command -v cmake`` finds nothing)."""
    make = shutil.which("make")
    assert make is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "make").exists():
        (bin_dir / "make").symlink_to(make)
    env = {k: v for k, v in os.environ.items() if k not in (FLAG, "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PATH"] = str(bin_dir)
    if flag is not None:
        env[FLAG] = flag
    return subprocess.run([str(bin_dir / "make"), "--no-print-directory", "-C", str(ROOT), "ctest"],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_ctest_fails_without_cmake_when_required(tmp_path: Path) -> None:
    res = _make_ctest_without_cmake(tmp_path, "1")
    assert res.returncode != 0, res.stdout + res.stderr
    assert "cmake not found" in res.stderr and FLAG in res.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_ctest_skips_without_cmake_for_users(tmp_path: Path) -> None:
    for flag in (None, "0"):
        res = _make_ctest_without_cmake(tmp_path, flag)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "C++ unit tests skipped" in res.stdout


# -- the CMake configure step without a C++ compiler -----------------------------------------
def _configure_without_compiler(tmp_path: Path, *defines: str, flag: str | None = None) -> subprocess.CompletedProcess[str]:
    cmake = shutil.which("cmake")
    assert cmake is not None
    env = {k: v for k, v in os.environ.items() if k != FLAG}
    env["CXX"] = str(tmp_path / "no-such-compiler")  # check_language(CXX) finds no compiler
    if flag is not None:
        env[FLAG] = flag
    build = tmp_path / f"build{len(list(tmp_path.glob('build*')))}"
    return subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), "-DCLOTHPARSE_BUILD_TESTS=ON", "-DCLOTHPARSE_BUILD_PYTHON=OFF", *defines],
        env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_cmake_fails_without_a_compiler_only_when_required(tmp_path: Path) -> None:
    optional = _configure_without_compiler(tmp_path)
    assert optional.returncode == 0, optional.stdout + optional.stderr
    assert "scikit-image backend will be used" in optional.stderr
    by_define = _configure_without_compiler(tmp_path, "-DCLOTHPARSE_REQUIRE_NATIVE=ON")
    by_env = _configure_without_compiler(tmp_path, flag="1")
    for res in (by_define, by_env):
        assert res.returncode != 0, res.stdout + res.stderr
        assert "no C++ compiler found" in res.stderr and "must be built" in res.stderr
