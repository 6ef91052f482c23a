"""clothparse: parse clothing in fashion photographs.

Joint pixel-level (Mask R-CNN) and superpixel-level (SLIC + fusion) clothing
parsing, with export to ONNX and TensorRT. The CLI is ``cpt``.
"""

__version__ = "0.1.0"
