"""Detections against ground truth, as COCO matches them: per class, greedy by score.

Each prediction takes the unmatched ground-truth box of its class it overlaps most (IoU at
least the threshold): a true positive. A prediction left over is a *wrong class* when it
overlaps a box of another class that well, else a *false positive*; a ground-truth box left
over is a *false negative* (missed). Crowd boxes (``iscrowd``) are never missed and absorb
predictions on them, as COCO ignores both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pixseek.core.records import BoxTuple

TP, FP, FN, WRONG_CLASS, IGNORED = "TP", "FP", "FN", "wrong_class", "ignored"
OUTCOMES = (TP, FP, FN, WRONG_CLASS)


@dataclass(frozen=True, slots=True)
class Box:
    box: BoxTuple
    label: str | None
    score: float = 1.0
    crowd: bool = False


def iou(a: BoxTuple, b: BoxTuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (aw * ah + bw * bh - inter)


def match(
    truth: Sequence[Box], predictions: Sequence[Box], threshold: float = 0.5
) -> tuple[list[str], list[str]]:
    """Outcomes of the ground-truth boxes and of the predictions, in their input order."""
    truth_outcomes = [IGNORED if t.crowd else FN for t in truth]
    prediction_outcomes = [FP] * len(predictions)
    order = sorted(range(len(predictions)), key=lambda i: -predictions[i].score)
    for p in order:
        prediction = predictions[p]
        best, best_iou = None, threshold
        for t, target in enumerate(truth):
            if target.label != prediction.label or truth_outcomes[t] == TP:
                continue
            overlap = iou(prediction.box, target.box)
            if overlap >= best_iou and (best is None or not target.crowd):
                best, best_iou = t, overlap
        if best is not None:
            prediction_outcomes[p] = IGNORED if truth[best].crowd else TP
            if not truth[best].crowd:
                truth_outcomes[best] = TP
        elif any(
            t.label != prediction.label and iou(prediction.box, t.box) >= threshold for t in truth
        ):
            prediction_outcomes[p] = WRONG_CLASS
    return truth_outcomes, prediction_outcomes
