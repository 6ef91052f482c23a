"""TensorRT 11 parser restrictions in clothparse.export.graph_checks: TopK's K limit and
``sorted``, symmetric int8 Q/DQ only, UINT8 only at the network's edges, RoiAlign's
explicit ``sampling_ratio``, the opset range, and the op list's header."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from clothparse.export import graph_checks
from onnx import TensorProto, helper, numpy_helper


def _topk_model(k: int, *, sorted_: int = 1, k_as: str = "constant", n: int = 5000) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
    vals = helper.make_tensor_value_info("vals", TensorProto.FLOAT, [1, k])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [1, k])
    k_tensor = numpy_helper.from_array(np.array([k], dtype=np.int64), "k")
    nodes, inits, inputs = [], [], [x]
    if k_as == "constant":
        nodes.append(helper.make_node("Constant", [], ["k"], value=k_tensor))
    elif k_as == "initializer":
        inits.append(k_tensor)
    else:  # a graph input: not a constant
        inputs.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
    nodes.append(helper.make_node("TopK", ["x", "k"], ["vals", "idx"], name="topk", axis=1, sorted=sorted_))
    g = helper.make_graph(nodes, "g", inputs, [vals, idx], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_topk_k_within_tensorrt_11_limit() -> None:
    for k_as in ("constant", "initializer"):
        ok = graph_checks.check_graph(_topk_model(1000, k_as=k_as))
        assert ok.ok and ok.restricted == [], ok.summary()
        at_limit = graph_checks.check_graph(_topk_model(graph_checks.TRT_TOPK_MAX_K, k_as=k_as))
        assert at_limit.ok, at_limit.summary()
        over = graph_checks.check_graph(_topk_model(graph_checks.TRT_TOPK_MAX_K + 1, k_as=k_as))
        assert not over.ok and over.unsupported == [] and over.forbidden == []
        assert over.restricted == ["TopK 'topk': K=3841 is above TensorRT 11's TopK limit of 3840"]
        assert "TensorRT 11 restrictions: TopK 'topk': K=3841" in over.summary()
    unsorted = graph_checks.check_graph(_topk_model(10, sorted_=0))
    assert unsorted.restricted == ["TopK 'topk': TensorRT needs sorted=1"]
    dynamic_k = graph_checks.check_graph(_topk_model(10, k_as="input"))
    assert len(dynamic_k.restricted) == 1 and "K is not a constant" in dynamic_k.restricted[0]


def _qdq_model(zero_point: np.ndarray | None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    inits = [numpy_helper.from_array(np.array(0.1, dtype=np.float32), "scale")]
    q_in, dq_in = ["x", "scale"], ["q", "scale"]
    if zero_point is not None:
        inits.append(numpy_helper.from_array(zero_point, "zp"))
        q_in, dq_in = [*q_in, "zp"], [*dq_in, "zp"]
    nodes = [helper.make_node("QuantizeLinear", q_in, ["q"], name="q"),
             helper.make_node("DequantizeLinear", dq_in, ["y"], name="dq")]
    g = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_qdq_symmetric_int8_only() -> None:
    sym = graph_checks.check_graph(_qdq_model(np.array(0, dtype=np.int8)))
    assert sym.ok, sym.summary()
    shifted = graph_checks.check_graph(_qdq_model(np.array(3, dtype=np.int8)))
    assert shifted.restricted == [
        "QuantizeLinear 'q': zero point is not 0 (TensorRT takes symmetric Q/DQ only)",
        "DequantizeLinear 'dq': zero point is not 0 (TensorRT takes symmetric Q/DQ only)",
    ]
    for zp in (np.array(0, dtype=np.uint8), None):  # no zero point means uint8 in ONNX
        report = graph_checks.check_graph(_qdq_model(zp))
        assert not report.ok
        for node in ("QuantizeLinear 'q'", "DequantizeLinear 'dq'"):
            msg = f"{node}: quantized type UINT8; TensorRT's Q/DQ takes INT8, INT4, FP8 or FP4"
            assert msg in report.restricted
        assert any("tensor 'q' is UINT8" in p for p in report.restricted)


def test_int32_bias_dequantize_is_rejected() -> None:
    """onnxruntime's quantize_static quantizes Conv/Gemm biases to INT32 unless QuantizeBias=False;
    TensorRT's parser rejects a DequantizeLinear of INT32."""
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    inits = [numpy_helper.from_array(np.arange(4, dtype=np.int32), "bias_q"),
             numpy_helper.from_array(np.array(0.01, dtype=np.float32), "bias_scale"),
             numpy_helper.from_array(np.array(0, dtype=np.int32), "bias_zp")]
    g = helper.make_graph([helper.make_node("DequantizeLinear", ["bias_q", "bias_scale", "bias_zp"], ["y"],
                                            name="bias_dq")], "g", [], [y], initializer=inits)
    report = graph_checks.check_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.restricted == [
        "DequantizeLinear 'bias_dq': quantized type INT32; TensorRT's Q/DQ takes INT8, INT4, FP8 or FP4"
        " (an INT32 bias: quantize with QuantizeBias=False)"]


def test_uint8_only_at_network_inputs_and_outputs() -> None:
    img = helper.make_tensor_value_info("img", TensorProto.UINT8, [1, 3, 2, 2])
    out = helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 3, 2, 2])
    edges = helper.make_graph(
        [helper.make_node("Cast", ["img"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Relu", ["f"], ["r"]),
         helper.make_node("Cast", ["r"], ["out"], to=TensorProto.UINT8)],
        "g", [img], [out],
    )
    report = graph_checks.check_graph(helper.make_model(edges, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.ok, report.summary()
    inner = helper.make_graph(
        [helper.make_node("Cast", ["img"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["f"], ["u"], to=TensorProto.UINT8),
         helper.make_node("Cast", ["u"], ["out"], to=TensorProto.FLOAT)],
        "g", [img], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 2, 2])],
    )
    report = graph_checks.check_graph(helper.make_model(inner, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.restricted == [
        "tensor 'u' is UINT8, which TensorRT allows only as a network input or output"]


@pytest.mark.parametrize("sampling_ratio", [2, 0, None])
def test_roialign_needs_explicit_sampling_ratio(sampling_ratio: int | None) -> None:
    feats = helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 8, 16, 16])
    rois = helper.make_tensor_value_info("rois", TensorProto.FLOAT, [5, 4])
    bidx = helper.make_tensor_value_info("bidx", TensorProto.INT64, [5])
    pooled = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [5, 8, 7, 7])
    attrs: dict[str, Any] = {"output_height": 7, "output_width": 7, "spatial_scale": 0.25,
             "coordinate_transformation_mode": "output_half_pixel"}
    if sampling_ratio is not None:
        attrs["sampling_ratio"] = sampling_ratio
    g = helper.make_graph([helper.make_node("RoiAlign", ["feats", "rois", "bidx"], ["pooled"], name="roi", **attrs)],
                          "g", [feats, rois, bidx], [pooled])
    report = graph_checks.check_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    if sampling_ratio is None:
        assert report.restricted == ["RoiAlign 'roi': set sampling_ratio explicitly "
                                     "(TensorRT's importer defaults it to 1, ONNX to 0)"]
    else:
        assert report.ok, report.summary()


def test_opset_range_and_op_list() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    lo, hi = graph_checks.TRT_OPSETS
    assert (lo, hi) == (9, 24)
    for opset, ok in ((17, True), (hi, True), (hi + 1, False)):
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        report = graph_checks.check_graph(m, infer=False)
        assert report.ok is ok, report.summary()
    ops = graph_checks.trt_supported_ops()
    # TensorRT 11.1's table: what our graphs use (fp32, fp16 and int8 variants) ...
    assert {"RoiAlign", "TopK", "Cast", "Resize", "QuantizeLinear", "DequantizeLinear", "Swish"} <= ops
    # ... and "N" rows stay out.
    assert not ops & {"DFT", "Bernoulli", "MaxRoiPool", "Col2Im", "SequenceAt", "Unique", "Compress"}
