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

import math
from collections.abc import Callable, Sequence

from PIL import Image, ImageOps

from pixseek.core.records import BoxTuple
from pixseek.imaging.decode import DRAFT_FACTOR

View = Callable[[Image.Image], tuple[Image.Image, BoxTuple | None]]

ROTATION = 10.0  # degrees: the middle of the small rotations copies are made with
CENTRE = 0.8  # of each side: a copy with a border, seen without it
CORNER = 0.6  # of each side: the crops that no longer show the whole picture


def _rotated(angle: float) -> View:
    """Turned, with black corners: as a copy turned by this much looks."""

    def view(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
        return image.rotate(angle, resample=Image.Resampling.BICUBIC), None

    return view


Part = tuple[float, float, float]  # share of each side, where across (0 to 1), where down


def part_box(part: Part, width: int, height: int) -> BoxTuple:
    """The box ``[x, y, w, h]`` (as every box in pixseek) of a part of a ``width`` x
    ``height`` picture."""
    fraction, x_at, y_at = part
    w, h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left, top = round((width - w) * x_at), round((height - h) * y_at)
    return (float(left), float(top), float(w), float(h))


def _part(part: Part) -> View:
    def view(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
        x, y, w, h = box = part_box(part, image.width, image.height)
        return image.crop((x, y, x + w, y + h)), box

    return view


def _mirrored(image: Image.Image) -> tuple[Image.Image, BoxTuple | None]:
    return ImageOps.mirror(image), None


PARTS: dict[str, Part] = {
    "centre": (CENTRE, 0.5, 0.5),
    "top left": (CORNER, 0.0, 0.0),
    "top right": (CORNER, 1.0, 0.0),
    "bottom left": (CORNER, 0.0, 1.0),
    "bottom right": (CORNER, 1.0, 1.0),
}
VIEWS: dict[str, View] = {
    f"rotated {-ROTATION:+g}°": _rotated(-ROTATION),
    f"rotated {ROTATION:+g}°": _rotated(ROTATION),
    "mirrored": _mirrored,
    **{name: _part(part) for name, part in PARTS.items()},
}
# the views of a query that matches nothing as it is (turned back, without a border,
# mirrored), each with the copy edit of pixseek.imaging.edits that it undoes
UNDOES = {
    "rotated -10°": "rotate",
    "rotated +10°": "rotate",
    "centre": "border",
    "mirrored": "flip",
}
QUERY_VIEWS = tuple(UNDOES)
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


def enough_for(image: Image.Image, input_size: int | None, share: float) -> Image.Image:
    """``image`` made smaller where it has more pixels than its views need: their smallest
    part (``share`` of each side) keeps :data:`DRAFT_FACTOR` times the model's input, as a
    decoded image does. Turning a full-size query four ways took most of an unmatched
    match query's time besides the model's."""
    if not input_size:
        return image
    side = math.ceil(DRAFT_FACTOR * input_size / share)
    shorter = min(image.size)
    if shorter <= side:
        return image
    scale = side / shorter
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def views(
    image: Image.Image, names: Sequence[str]
) -> list[tuple[str, Image.Image, BoxTuple | None]]:
    """The named views of ``image``: (name, picture, the part of ``image`` it shows or
    None when it shows all of it turned)."""
    rgb = image.convert("RGB")
    return [(name, *VIEWS[name](rgb)) for name in names]
