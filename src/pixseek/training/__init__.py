"""Contrastive fine-tuning of CLIP-family models on a collection's images and texts."""

from pixseek.training.data import Pair, pairs_from_captions, pairs_from_labels
from pixseek.training.loop import TrainOptions, TrainReport, train

__all__ = [
    "Pair",
    "TrainOptions",
    "TrainReport",
    "pairs_from_captions",
    "pairs_from_labels",
    "train",
]
