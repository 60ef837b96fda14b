"""Contrastive fine-tuning of CLIP-family models on a collection, and retrieval evaluation."""

from pixseek.training.data import Pair, pairs_from_captions, pairs_from_labels
from pixseek.training.evaluate import EvalReport, evaluate
from pixseek.training.loop import TrainOptions, TrainReport, train

__all__ = [
    "EvalReport",
    "Pair",
    "TrainOptions",
    "TrainReport",
    "evaluate",
    "pairs_from_captions",
    "pairs_from_labels",
    "train",
]
