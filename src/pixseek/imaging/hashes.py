"""Perceptual hashes of a picture, computed once when it is indexed.

Two hashes from ``imagehash``: the 64-bit DCT perceptual hash (``phash``: structure, blind
to colour, survives resizing, re-encoding and overlays) and the colour hash
(``colorhash``: the share of each hue and of black, grey and white; survives flips,
rotations and crops, not recolouring). They travel with the image's record as one text
field, ``"<phash hex>:<colour hash hex>"``, so duplicate and copy checks never read the
files again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.core.records import Record

PHASH_BITS = 64
# perceptual hashes this close: the same picture (re-encoded, resized), whatever the model
SAME_PICTURE_BITS = 4
COLOUR_BIN_BITS = 3  # colorhash: 14 bins of 3 bits = 42 bits


@dataclass(frozen=True, slots=True)
class ImageHashes:
    phash: int
    colour: int

    def encode(self) -> str:
        return f"{self.phash:016x}:{self.colour:011x}"

    @classmethod
    def decode(cls, text: str) -> ImageHashes | None:
        """None for an empty (never hashed) or malformed value."""
        phash, _, colour = text.partition(":")
        try:
            return cls(int(phash, 16), int(colour, 16))
        except ValueError:
            return None


def image_hashes(image: Image.Image) -> ImageHashes:
    import imagehash

    return ImageHashes(
        phash=perceptual_hash(image),
        colour=int(str(imagehash.colorhash(image, binbits=COLOUR_BIN_BITS)), 16),
    )


def perceptual_hash(image: Image.Image) -> int:
    """The pHash alone: what a query is compared by (the colour hash, which converts every
    pixel to HSV, took most of an unmatched match query's hashing time)."""
    import imagehash

    return int(str(imagehash.phash(image)), 16)


def same_picture(record: Record, other: Record, picture: ImageHashes | None = None) -> bool:
    """Is ``other`` the picture of ``record``, whatever the model: the same bytes, or
    perceptual hashes within :data:`SAME_PICTURE_BITS`. ``picture``: the record's hashes,
    where the caller has them (decoded once for many comparisons, or computed for a record
    indexed before hashes were kept)."""
    if record.content_hash and record.content_hash == other.content_hash:
        return True
    mine = picture if picture is not None else ImageHashes.decode(record.hashes)
    theirs = ImageHashes.decode(other.hashes)
    if mine is None or theirs is None:
        return False
    return hamming(mine.phash, theirs.phash) <= SAME_PICTURE_BITS


def binary_codes(phashes: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """64-bit hashes as rows of 8 bytes, the layout of faiss's binary indexes."""
    return np.ascontiguousarray(phashes.astype("<u8")).view(np.uint8).reshape(-1, 8)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


_BITS_SET = np.asarray([bin(n).count("1") for n in range(256)], np.uint8)


def hamming_matrix(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Hamming distances of every hash in ``a`` to every hash in ``b``."""
    xor = binary_codes(a)[:, None, :] ^ binary_codes(b)[None, :, :]
    return np.asarray(_BITS_SET[xor].sum(axis=2, dtype=np.int64))


def phash_score(a: int, b: int) -> float:
    """Similarity of two perceptual hashes: the share of their 64 bits that agree."""
    return 1.0 - hamming(a, b) / PHASH_BITS
