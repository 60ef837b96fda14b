"""Thresholds chosen for a precision, judged by the lower end of its interval.

Copy calibration (:mod:`pixseek.jobs.calibrate`) and text search's cutoff
(:mod:`pixseek.jobs.text_cutoff`) both keep the lowest score whose hits are right with a
target precision, where a few lucky pairs at the edge of a sample must not lower it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

CONFIDENCE_Z = 0.8416  # one-sided 80%


@dataclass(frozen=True, slots=True)
class Fit:
    threshold: float
    precision: float
    recall: float


def fit_threshold(
    positives: NDArray[np.floating],
    negatives: NDArray[np.floating],
    target: float,
    weights: NDArray[np.floating] | None = None,
) -> Fit:
    """The lowest score at which precision (copies among pairs at or above it) reaches
    ``target``; above every score when none does. ``weights``: how many pairs each
    negative stands for (1 each by default)."""
    scores, labels, counts = scored_pairs(positives, negatives, weights)
    order = np.argsort(-scores, kind="stable")
    scores, labels, counts = scores[order], labels[order], counts[order]
    true = np.cumsum(labels)
    pairs = np.arange(1, len(scores) + 1)
    precision = true / np.cumsum(counts)
    # the precision a threshold is chosen by is the lower end of its Wilson interval
    # (as wide as the pairs actually measured): a few lucky pairs at the edge of a sample
    # must not lower the threshold
    lower = wilson_lower(precision * pairs, pairs)
    # a threshold sits at the last of a run of equal scores
    last_of_tie = np.append(scores[1:] != scores[:-1], True)
    good = np.flatnonzero(last_of_tie & (lower >= target) & (true > 0))
    if not len(good):
        return Fit(float(scores[0]) + 1e-6, 1.0, 0.0)
    at = int(good[-1])
    return Fit(float(scores[at]), float(precision[at]), float(true[at] / max(1, len(positives))))


def wilson_lower(
    successes: NDArray[np.floating], trials: NDArray[np.integer]
) -> NDArray[np.float64]:
    """The lower end of the Wilson score interval of a proportion."""
    z2 = CONFIDENCE_Z**2
    share = successes / trials
    centre = share + z2 / (2 * trials)
    spread = CONFIDENCE_Z * np.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2))
    return np.asarray((centre - spread) / (1 + z2 / trials), np.float64)


def scored_pairs(
    positives: NDArray[np.floating],
    negatives: NDArray[np.floating],
    weights: NDArray[np.floating] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Every pair's score, label (1: a copy) and how many pairs it stands for."""
    scores = np.concatenate([positives, negatives]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    counts = np.concatenate(
        [np.ones(len(positives)), np.ones(len(negatives)) if weights is None else weights]
    )
    return scores, labels, counts
