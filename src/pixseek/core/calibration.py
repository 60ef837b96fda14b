"""What a model's similarity scores mean for copies, measured on a collection's own images.

A :class:`CopyCalibration` is made by :func:`pixseek.jobs.calibrate.calibrate` and kept
with its index: the cosine at or above which two images are called copies (chosen for a
target precision), the precision and recall measured there overall and by edit, the
probability that a pair at a given score is a copy, and the score below which an image
search found nothing alike (``unrelated``). Different models put copies at very different
cosines, so none of these is a fixed number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class HashCalibration:
    """The perceptual-hash tier: copies within ``radius`` bits (-1: the hash tier links
    nothing at the target precision), and what was measured there."""

    radius: int = -1
    precision: float = 0.0
    recall: float = 0.0
    recall_by_edit: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CopyCalibration:
    threshold: float  # cosine: copy at or above
    target_precision: float
    precision: float  # measured at the threshold
    recall: float
    recall_by_edit: dict[str, float] = field(default_factory=dict)
    # P(copy | cosine): isotonic fit, as increasing (cosine, probability) breakpoints
    curve_scores: list[float] = field(default_factory=list)
    curve_probabilities: list[float] = field(default_factory=list)
    unrelated: float = 0.0  # 99th percentile of the nearest unrelated image's cosine
    images: int = 0  # sampled images
    copies: int = 0  # edited copies embedded
    neighbours: int = 10  # precision counts each copy's this many nearest images
    hashes: HashCalibration = field(default_factory=HashCalibration)
    # the views of each image compared besides the image (pixseek.imaging.views): a
    # copy's score is its best over them
    views: list[str] = field(default_factory=list)

    def probability(self, score: float) -> float:
        """P(copy) for a pair at ``score``, at the calibration's mix of copies and others."""
        if not self.curve_scores:
            return 1.0 if score >= self.threshold else 0.0
        value = np.interp(score, self.curve_scores, self.curve_probabilities)
        return round(float(value), 4)

    def summary(self) -> str:
        edits = ", ".join(f"{name} {value:.2f}" for name, value in self.recall_by_edit.items())
        seen = f" (best of the image and {len(self.views)} views)" if self.views else ""
        return (
            f"copies at cosine >= {self.threshold:.4f}{seen} "
            f"(for precision {self.target_precision}): "
            f"precision {self.precision:.3f}, recall {self.recall:.3f} on {self.copies} edited "
            f"copies of {self.images} of its images; recall by edit: {edits}; "
            f"unrelated images score below {self.unrelated:.4f}; perceptual hash: within "
            f"{self.hashes.radius} bits, precision {self.hashes.precision:.3f}, recall "
            f"{self.hashes.recall:.3f}"
        )
