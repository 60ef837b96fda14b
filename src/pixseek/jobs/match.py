"""Which collection images does an outside image copy? The unauthorised-use check.

Tiers, strongest first: the same bytes (exact); the same picture after re-encoding,
resizing or small edits (perceptual hash within a Hamming distance, checked on the
nearest images only); or an embedding at least ``threshold`` similar to a collection
image or, when the collection has region windows or objects, to a part of one (crops).
"""

from __future__ import annotations

from dataclasses import dataclass

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.filters import Filter
from pixseek.core.ids import content_hash
from pixseek.core.records import Record
from pixseek.imaging.decode import decode_image, decode_options_for
from pixseek.jobs.dedup import TIER_RANK, hamming, image_phash, perceptual_hash, phash_score


@dataclass(frozen=True, slots=True)
class MatchOptions:
    threshold: float = 0.9
    phash_distance: int = 8
    candidates: int = 20


@dataclass(frozen=True, slots=True)
class Match:
    record: Record  # the collection image that is copied
    tier: str
    score: float
    via: str = "image"  # or "region"/"object": a part of the image matched (a crop)


def match_image(
    collection: Collection,
    data: bytes,
    index: Index | None = None,
    options: MatchOptions = MatchOptions(),
) -> list[Match]:
    """The collection images that ``data`` copies or nearly copies, strongest first."""
    index = index or collection.index()
    found: dict[str, Match] = {}

    def offer(match: Match) -> None:
        current = found.get(match.record.id)
        if current is None or (TIER_RANK[match.tier], -match.score) < (
            TIER_RANK[current.tier],
            -current.score,
        ):
            found[match.record.id] = match

    digest = content_hash(data)
    for record in collection.records(Filter.where({"kind": "image", "content_hash": digest})):
        offer(Match(record, "exact", 1.0))
    image = decode_image(data, decode_options_for(index.embedder.capabilities.input_size))
    vector = index.embedder.embed_images([image])[0]
    images = index.store.search(vector, options.candidates, Filter.where({"kind": "image"}))
    query_hash = image_phash(image)
    for record, score in images:
        if score >= options.threshold:
            offer(Match(record, "embedding", round(score, 6)))
        other = perceptual_hash(record.path)
        if other is not None and hamming(query_hash, other) <= options.phash_distance:
            offer(Match(record, "phash", round(phash_score(query_hash, other), 6)))
    parts = index.store.search(vector, options.candidates, Filter.where({"kind": "object"}))
    parents = collection.get_many([r.image_id for r, s in parts if s >= options.threshold])
    for record, score in parts:
        parent = parents.get(record.image_id)
        if parent is not None and score >= options.threshold:
            offer(Match(parent, "embedding", round(score, 6), record.source or "object"))
    return sorted(found.values(), key=lambda m: (TIER_RANK[m.tier], -m.score, m.record.id))
