"""Inference engines (torch, onnx, trt) behind one small interface (``base.Engine``)."""
