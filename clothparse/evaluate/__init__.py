"""Evaluation: COCO AP, the seed's merged-mask metrics, parsing mIoU."""
