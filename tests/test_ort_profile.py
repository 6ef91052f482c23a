"""bench/ort_profile.py groups ORT's profiler events by op type and graph scope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from clothparse.bench.ort_profile import main, profile
from onnx import TensorProto, helper, numpy_helper


def _tiny_model(path):
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT, name="/pre/Cast"),
        helper.make_node("Conv", ["xf", "w"], ["y"], pads=[1, 1, 1, 1], name="/backbone/body/conv1/Conv"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)


def test_profile_groups_by_op_and_scope(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    _tiny_model(path)
    total, by_op, by_scope = profile(path, runs=2, threads=1)
    assert total > 0
    assert set(by_op) >= {"Conv", "Cast"}
    assert "/pre/Cast" in by_scope  # ORT may rename fused nodes (the Conv), not the Cast
    assert abs(sum(by_op.values()) - total) < 1e-6
    main([str(path), "--runs", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "| Conv |" in out and "| /pre/Cast |" in out
    assert not list(Path(".").glob("onnxruntime_profile_*.json")), "profile trace left behind"
