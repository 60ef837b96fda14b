"""Views of a picture that put a copy's edit back, or make it: what an embedding alone
does not see through.

An embedding sees through resizing, re-encoding and colour changes, but a copy turned by
ten degrees, or cut down to one corner of the picture, is another composition to it.
Comparing *views* of an image does: a copy rotated by 10° is close to the original turned
the same way, and a corner crop of a photo is close to that corner of it. Match turns a
query back (and looks at its centre, and its mirror image); duplicate detection embeds the
collection's own images turned and cut to their corners, since a crop can only be found
from the larger picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageOps

from pixseek.core.records import BoxTuple

View = Callable[[Image.Image], tuple[Image.Image, BoxTuple | None]]

ROTATION = 10.0  # degrees: the middle of the small rotations copies are made with
CENTRE = 0.8  # of each side: a copy with a border, seen without it
CORNER = 0.6  # of each side: the crops that no longer show the whole picture


def _rotated(angle: float) -> View:
    """Turned, with black corners: as a copy turned by this much looks."""

    def view(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
        return image.rotate(angle, resample=Image.Resampling.BICUBIC), None

    return view


def _part(fraction: float, x_at: float, y_at: float) -> View:
    """The part ``fraction`` of each side, at ``x_at``/``y_at`` (0: left/top, 0.5: centre,
    1: right/bottom)."""

    def view(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
        w = max(1, round(image.width * fraction))
        h = max(1, round(image.height * fraction))
        left = round((image.width - w) * x_at)
        top = round((image.height - h) * y_at)
        box = (float(left), float(top), float(left + w), float(top + h))
        return image.crop((left, top, left + w, top + h)), box

    return view


def _mirrored(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
    return ImageOps.mirror(image), None


VIEWS: dict[str, View] = {
    f"rotated {-ROTATION:+g}°": _rotated(-ROTATION),
    f"rotated {ROTATION:+g}°": _rotated(ROTATION),
    "centre": _part(CENTRE, 0.5, 0.5),
    "mirrored": _mirrored,
    "top left": _part(CORNER, 0.0, 0.0),
    "top right": _part(CORNER, 1.0, 0.0),
    "bottom left": _part(CORNER, 0.0, 1.0),
    "bottom right": _part(CORNER, 1.0, 1.0),
}
# a query that matches nothing as it is: turned back, without a border, mirrored
QUERY_VIEWS = ("rotated -10°", "rotated +10°", "centre", "mirrored")
# each collection image, for duplicates: turned either way, its centre (a closer crop, or
# the picture of a copy with a border), and its four corners
COPY_VIEWS = (
    "rotated -10°",
    "rotated +10°",
    "centre",
    "top left",
    "top right",
    "bottom left",
    "bottom right",
)


def views(
    image: Image.Image, names: Sequence[str]
) -> list[tuple[str, Image.Image, BoxTuple | None]]:
    """The named views of ``image``: (name, picture, the part of ``image`` it shows or
    None when it shows all of it turned)."""
    rgb = image.convert("RGB")
    return [(name, *VIEWS[name](rgb)) for name in names]
