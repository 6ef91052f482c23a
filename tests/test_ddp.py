"""DDP: two CPU processes (gloo) train 2 steps through the real loop and end identical."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from clothparse.config import ModelConfig, TrainConfig

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, tmp: str) -> None:
    # What torchrun would set; fit() then joins the gloo group by itself.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from clothparse.train.distributed import cleanup_distributed
    from clothparse.train.loop import fit
    from clothparse.train.toy import TOY_CLASSES, ToyShapes

    mc = ModelConfig.small(class_names=list(TOY_CLASSES), min_size=64, max_size=64,
                           small_widths=[8, 8, 16, 16, 32], fpn_channels=16, fc_size=64, mask_head_channels=16)
    tc = TrainConfig.small(epochs=1, steps_per_epoch=2, validation_steps=1, batch_size=2, warmup_steps=1, seed=0)
    try:
        res = fit(mc, tc, ToyShapes(8, size=64), ToyShapes(2, size=64, seed=1),
                  Path(tmp) / f"run{rank}", device="cpu", quiet=True)
        params = {k: v.detach().clone() for k, v in res.model.named_parameters()}
        save_file(params, str(Path(tmp) / f"rank{rank}.safetensors"))
        (Path(tmp) / f"rank{rank}.txt").write_text(f"{res.steps} {int(res.is_main)}")
    finally:
        cleanup_distributed()


def test_two_gloo_processes_stay_in_sync(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    p0 = load_file(str(tmp_path / "rank0.safetensors"))
    p1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert set(p0) == set(p1) and len(p0) > 50
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    assert (tmp_path / "rank0.txt").read_text() == "2 1" and (tmp_path / "rank1.txt").read_text() == "2 0"
    # only rank 0 writes the run folder
    assert (tmp_path / "run0" / "last.safetensors").is_file() and not (tmp_path / "run1").exists()
    # and the two ranks really trained (on different shards): weights moved from the shared init
    from clothparse.model.checkpoint import load_checkpoint

    trained = load_checkpoint(tmp_path / "run0" / "last.safetensors").model.state_dict()
    torch.manual_seed(0)
    from clothparse.model.builder import build_model

    init = build_model(load_checkpoint(tmp_path / "run0").config).state_dict()
    assert not torch.equal(trained["backbone.body.stem.0.weight"], init["backbone.body.stem.0.weight"])
