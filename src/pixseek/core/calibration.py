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
class FalseAlarms:
    """What ``match`` calls a copy of an outside image: pairs precise enough for duplicates
    can still leave an unseen photo a few percent of chances of meeting a look-alike in a
    large collection, so the collection's own images are asked as if each were unseen
    (leave-one-out: its nearest other image, not its presumed copy), and the threshold is
    raised and the radius lowered until at most ``1 - target precision`` of them would
    match through each tier.
    ``views``: measured with the kept views, compared as match compares them."""

    threshold: float  # cosine: match calls an outside image a copy at or above
    radius: int  # bits: and within this pHash distance (-1: the hash tier matches nothing)
    rate: float  # at the duplicates threshold and radius: share of images another matches
    queries: int  # collection images asked
    records: int  # in the index then (asked again when it has grown or shrunk much)
    views: bool

    def summary(self) -> str:
        seen = " with their kept views" if self.views else ""
        return (
            f"match: an outside image is a copy at cosine >= {self.threshold:.4f} or within "
            f"{self.radius} bits (at the duplicates threshold, {self.rate:.1%} of {self.queries} "
            f"of the collection's images{seen} would match another)"
        )


@dataclass(frozen=True, slots=True)
class TextCutoff:
    """Search's calibrated "no match" cutoff for text queries, measured on the
    collection's own labels: each label asked as a text ("a photo of a {label}"), its
    records the right hits and every other labelled record a wrong one; at ``threshold``
    the hits of all those queries together are right with the target precision (the
    lower end of its interval, as for copies). Text and image vectors meet on a scale of
    their own, which differs from model to model, so this is measured, not chosen."""

    threshold: float  # cosine of a text query and a hit: kept at or above
    precision: float  # measured at the threshold, over every label's query
    recall: float  # of the labelled records, the share their own label's query keeps
    labels: int  # labels asked
    records: int  # labelled records scored
    kind: str  # image or object: the records the labels were read from

    @property
    def reached(self) -> bool:
        """Did any cutoff reach the target precision? (None kept a hit: no precision was
        measured either, and a search at it would keep nothing.)"""
        return self.recall > 0

    def summary(self, target_precision: float) -> str:
        asked = f"{self.labels} labels' queries over {self.records} labelled {self.kind}s"
        if not self.reached:
            return (
                f"text search: no cutoff reaches precision {target_precision} on {asked} "
                "(--min-score auto needs a number for text)"
            )
        return (
            f"text search keeps hits at cosine >= {self.threshold:.4f} "
            f"(--min-score auto): precision {self.precision:.3f}, recall {self.recall:.3f} "
            f"on {asked}"
        )


@dataclass(frozen=True, slots=True)
class CopyCalibration:
    threshold: float  # cosine: copy at or above
    target_precision: float
    precision: float  # measured at the threshold
    recall: float
    recall_by_edit: dict[str, float] = field(default_factory=dict)
    # the lowest score of a copy made with each edit: every one of them is found at or
    # below it (match leaves out a query view where the edit it undoes needs none)
    lowest_by_edit: dict[str, float] = field(default_factory=dict)
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
    # an image this close to another is presumed its copy when the model's copies stand
    # apart from unrelated images (most of them score this much); above 1 when they do not
    # and 0 when not measured: FalseAlarms counts the images above it as copies, not alarms
    presumed_copy: float = 0.0
    # what match calls a copy (see FalseAlarms): measured as it is, and with kept views
    false_alarms: list[FalseAlarms] = field(default_factory=list)
    # text search's cutoff, where the collection has labels to measure it on
    text: TextCutoff | None = None

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
            + "".join(f"; {known.summary()}" for known in self.false_alarms[-1:])
            + (f"; {self.text.summary(self.target_precision)}" if self.text is not None else "")
        )
