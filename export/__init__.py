"""clothparse.export: static-shape export wrapper, ONNX export, TensorRT builder, parity checks."""
