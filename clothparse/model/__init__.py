"""Mask R-CNN models: builder, pretrained initialisation, safetensors checkpoints."""
