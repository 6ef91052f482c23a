"""ONNX Runtime execution providers: order, device ids, TensorRT engine and timing caches."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_trt import tiny_onnx

from clothparse.contract.sidecar import sha256_file
from clothparse.engines import ort_providers
from clothparse.engines.ort_providers import (
    CPU_EP,
    CUDA_EP,
    TRT_EP,
    choose_providers,
    trt_cache_dirs,
)
from clothparse.errors import ConfigError, DependencyError

ALL_EPS = [CPU_EP, CUDA_EP, TRT_EP]



def test_cpu_device_gets_only_the_cpu_provider() -> None:
    assert choose_providers(ALL_EPS, "cpu") == [(CPU_EP, {})]
    assert choose_providers([CPU_EP], " CPU ") == [(CPU_EP, {})]


def test_auto_orders_tensorrt_cuda_cpu_on_gpu_0(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    chosen = choose_providers(ALL_EPS, "auto", model_path=model)
    assert [name for name, _ in chosen] == [TRT_EP, CUDA_EP, CPU_EP]
    assert chosen[0][1]["device_id"] == 0 and chosen[1][1] == {"device_id": 0}
    assert choose_providers([CPU_EP], "auto") == [(CPU_EP, {})]
    assert [n for n, _ in choose_providers([CPU_EP, CUDA_EP], "auto")] == [CUDA_EP, CPU_EP]


def test_cuda_n_options_carry_the_device_and_the_caches(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    sha = sha256_file(model)
    chosen = dict(choose_providers(ALL_EPS, "cuda:1", model_path=model, model_sha256=sha))
    trt_opts = chosen[TRT_EP]
    engine_dir = tmp_path / "model.onnx.trt_cache" / f"engines-{sha[:16]}"
    timing_dir = tmp_path / "model.onnx.trt_cache" / "timing"
    assert trt_opts == {
        "device_id": 1,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engine_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(timing_dir),
    }
    assert engine_dir.is_dir() and timing_dir.is_dir()  # the EP would not create the parent
    assert chosen[CUDA_EP] == {"device_id": 1}
    # Without the hash it is computed from the file: same folders.
    assert dict(choose_providers(ALL_EPS, "cuda:1", model_path=model))[TRT_EP] == trt_opts


def test_engine_cache_follows_the_model_hash_timing_cache_does_not(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "model.onnx")
    before = dict(choose_providers([TRT_EP], "cuda", model_path=model))[TRT_EP]
    tiny_onnx(model, precision="fp16")  # same name, same tensor names, new content
    after = dict(choose_providers([TRT_EP], "cuda", model_path=model))[TRT_EP]
    assert before["trt_engine_cache_path"] != after["trt_engine_cache_path"]
    assert before["trt_timing_cache_path"] == after["trt_timing_cache_path"]
    assert trt_cache_dirs(model, "a" * 64)[0] != trt_cache_dirs(model, "b" * 64)[0]


def test_cuda_without_gpu_provider_names_the_gpu_extra() -> None:
    with pytest.raises(DependencyError, match=r"pip install 'clothparse\[gpu\]'"):
        choose_providers([CPU_EP], "cuda:0")


@pytest.mark.parametrize("device", ["tpu9", "cuda:x", "mps"])
def test_unknown_device_is_a_config_error(device: str) -> None:
    with pytest.raises(ConfigError, match="--device"):
        choose_providers(ALL_EPS, device)


def test_split_providers_gives_the_two_list_form() -> None:
    names, opts = ort_providers.split_providers([(CUDA_EP, {"device_id": 2}), (CPU_EP, {})])
    assert names == [CUDA_EP, CPU_EP] and opts == [{"device_id": 2}, {}]
