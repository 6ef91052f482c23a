"""Superpixel-level parsing: superpixel backends, the fusion kernel, the Parser pipeline."""
