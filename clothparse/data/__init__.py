"""Datasets: the COCO/ModaNet loader, splitting, Paperdoll LMDB extraction, synthetic data."""
