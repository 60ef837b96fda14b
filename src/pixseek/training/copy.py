"""``--mode copy``: fine-tune the image side of a CLIP-family model for copy detection.

SimCLR / SSCD-style: every epoch, each training image gets two random copies (the edits
of :mod:`pixseek.imaging.edits`, chained with random crops, rotations, colour changes,
blur and re-encoding), and an InfoNCE loss pulls the two together while every other
image of the batch is a negative. SSCD's entropy regulariser (KoLeo: the log distance of
each vector to its nearest non-copy in the batch) spreads the images apart. Only the
image tower and its projection train; the text tower is untouched.

Images are decoded once, at about twice the model's input size; the copies are made
fresh every epoch. Images of the collection that are already copies of each other (the
same bytes, or perceptual hashes within :data:`SAME_PICTURE_BITS`) are not each other's
negatives. The best epoch is chosen on held-out images by copy retrieval: each held-out
image's copies (every named edit once) must find their own source first among the
held-out sources.

Like the pair modes, it trains on ``TrainOptions.device``: the pictures and their copies
are made on the CPU, and each batch of pixels is moved to the device.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.imaging.decode import decode_options_for, load_image_file
from pixseek.imaging.edits import EDITS, edited
from pixseek.imaging.hashes import SAME_PICTURE_BITS, ImageHashes, hamming
from pixseek.training.loop import (
    BestEpoch,
    EpochStats,
    TrainOptions,
    TrainProgress,
    TrainReport,
    batches,
    end_epoch,
    load_for_training,
    optimizer_for,
    save_model,
    seed_everything,
    step,
    training_device,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pixseek.collection.collection import Collection

COPY_TOP_1 = "copy top-1"
MIN_IMAGES = 4
COPY_MODE = TrainOptions(mode="copy")


@dataclass(frozen=True, slots=True)
class CopyImage:
    """An image to train on: its id, file, and what says it is a copy of another."""

    id: str
    path: str
    content_hash: str = ""
    phash: int | None = None


@dataclass(frozen=True, slots=True)
class CopyOptions:
    temperature: float = 0.1  # of the InfoNCE softmax over cosines
    entropy_weight: float = 1.0  # of SSCD's KoLeo regulariser; 0 turns it off
    original_share: float = 0.3  # how often one of the two views is the image as it is


def images_for_copy(collection: Collection) -> list[CopyImage]:
    """The collection's images, one per distinct file content."""
    seen: set[str] = set()
    images = []
    for record in collection.records(Filter.where({"kind": "image"})):
        if record.content_hash and record.content_hash in seen:
            continue
        seen.add(record.content_hash)
        hashes = ImageHashes.decode(record.hashes)
        phash = hashes.phash if hashes is not None else None
        images.append(CopyImage(record.id, record.path, record.content_hash, phash))
    images.sort(key=lambda image: image.id)
    return images


def random_view(image: Image.Image, rng: random.Random) -> Image.Image:
    """A random copy of ``image``: up to two of the named edits, then random crops,
    rotations, colour changes, blur and JPEG, each or not."""
    view = image
    for name in rng.sample(sorted(EDITS), rng.choice((0, 1, 1, 2))):
        view = EDITS[name](view, rng)
    if rng.random() < 0.6:
        view = _random_crop(view, rng)
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    if rng.random() < 0.3:
        angle = rng.uniform(-25.0, 25.0)
        view = view.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=_grey(rng))
    if rng.random() < 0.6:
        view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.6, 1.4))
        view = ImageEnhance.Contrast(view).enhance(rng.uniform(0.6, 1.4))
        view = ImageEnhance.Color(view).enhance(rng.uniform(0.0, 1.8))
    if rng.random() < 0.3:
        view = view.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.3:
        view = EDITS["jpeg"](view, rng)
    return view.convert("RGB")


def _random_crop(image: Image.Image, rng: random.Random) -> Image.Image:
    area = rng.uniform(0.3, 1.0) * image.width * image.height
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = max(4, min(image.width, round(math.sqrt(area * ratio))))
    h = max(4, min(image.height, round(math.sqrt(area / ratio))))
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    return image.crop((x, y, x + w, y + h))


def _grey(rng: random.Random) -> tuple[int, int, int]:
    level = rng.choice((0, 128, 255))
    return (level, level, level)


def refuse_texts(given: Sequence[str], mode: str = "mode copy") -> None:
    """Copy training takes no texts: the options in ``given`` (labels, captions or stored
    judgements, as the caller names them) are an error, which names ``mode`` the same way."""
    if given:
        named = given[-1] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
        raise InvalidInputError(f"{mode} trains on the collection's images alone: drop {named}")


def copy_loss(a: Any, b: Any, same: Any, options: CopyOptions) -> Any:
    """NT-Xent over the two views ``a`` and ``b`` (rows: the batch's images, unit vectors):
    each view must pick its other view among all 2N - 1; ``same`` (N x N) marks images that
    are copies of each other, which are neither negatives nor spread apart. Plus the
    entropy (KoLeo) term: minus the mean log distance to the nearest other image."""
    import torch
    import torch.nn.functional as F

    n, device = len(a), a.device
    views = torch.cat([a, b])
    cosines = views @ views.T
    copies = same.to(device).repeat(2, 2)  # every view of the same picture, itself included
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(device)
    hidden = copies.clone()
    hidden[torch.arange(2 * n, device=device), targets] = False  # the positive stays
    logits = (cosines / options.temperature).masked_fill(hidden, float("-inf"))
    loss = F.cross_entropy(logits, targets)
    if options.entropy_weight > 0:
        distances = (2 - 2 * cosines).clamp_min(1e-8).sqrt().masked_fill(copies, float("inf"))
        nearest = distances.min(dim=1).values
        finite = torch.isfinite(nearest)
        if bool(finite.any()):
            loss = loss - options.entropy_weight * torch.log(nearest[finite] + 1e-8).mean()
    return loss


class CopyPictures:
    """Images decoded once, at about twice the model's input size, and what says which are
    copies of each other."""

    def __init__(self, images: Sequence[CopyImage], input_size: int) -> None:
        decode = decode_options_for(input_size)
        self.pictures: list[Image.Image] = []
        self.kept: list[CopyImage] = []
        for image in images:
            try:
                picture = load_image_file(local_path(image.path), decode)
            except (ImageDecodeError, OSError):
                continue
            side = 2 * input_size
            if min(picture.size) > side:
                scale = side / min(picture.size)
                size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
                picture = picture.resize(size, Image.Resampling.BILINEAR)
            self.pictures.append(picture.convert("RGB"))
            self.kept.append(image)

    def same(self, rows: Sequence[int]) -> Any:
        """N x N: whether two of ``rows`` are the same picture (diagonal included)."""
        import torch

        chosen = [self.kept[r] for r in rows]
        return torch.tensor(
            [[_same_picture(x, y) for y in chosen] for x in chosen], dtype=torch.bool
        )


def _same_picture(x: CopyImage, y: CopyImage) -> bool:
    if x.id == y.id or (x.content_hash and x.content_hash == y.content_hash):
        return True
    return (
        x.phash is not None
        and y.phash is not None
        and hamming(x.phash, y.phash) <= SAME_PICTURE_BITS
    )


def _pixels(processor: Any, pictures: Sequence[Image.Image]) -> Any:
    import torch

    pixels = processor.image_processor(images=list(pictures), return_tensors="np")
    return torch.from_numpy(np.asarray(pixels["pixel_values"], dtype=np.float32))


def _embed(model: Any, pixels: Any) -> Any:
    """Unit vectors of ``pixels`` (in host memory), on the model's device."""
    import torch.nn.functional as F

    from pixseek.models.runtimes.torch_session import features_tensor

    features = model.get_image_features(pixel_values=pixels.to(model.device))
    return F.normalize(features_tensor(features), dim=-1)


@dataclass(frozen=True, slots=True)
class _Validation:
    sources: Any  # pixels of the held-out images
    copies: Any  # pixels of their edited copies, every named edit once
    of: Any  # the source row of each copy


def _validation(processor: Any, held: CopyPictures, seed: int) -> _Validation | None:
    import torch

    if len(held.pictures) < 2:
        return None
    copies, of = [], []
    for row, picture in enumerate(held.pictures):
        for number, name in enumerate(EDITS):
            copies.append(edited(picture, name, seed * 100_003 + row * 101 + number))
            of.append(row)
    return _Validation(
        _pixels(processor, held.pictures), _pixels(processor, copies), torch.tensor(of)
    )


def copy_retrieval(model: Any, data: _Validation, batch_size: int = 256) -> tuple[float, float]:
    """Share of the copies whose nearest held-out source is their own, and the mean margin
    of their own source's cosine over the best other's."""
    import torch

    with torch.inference_mode():
        sources = torch.cat([_embed(model, p) for p in data.sources.split(batch_size)])
        copies = torch.cat([_embed(model, p) for p in data.copies.split(batch_size)])
    cosines = (copies @ sources.T).cpu()
    rows = torch.arange(len(copies))
    own = cosines[rows, data.of]
    others = cosines.masked_fill(torch.nn.functional.one_hot(data.of, len(sources)).bool(), -2.0)
    top_1 = (cosines.argmax(dim=1) == data.of).float().mean()
    margin = (own - others.max(dim=1).values).mean()
    return float(top_1), float(margin)


def _split(
    images: Sequence[CopyImage], fraction: float, seed: int
) -> tuple[list[CopyImage], list[CopyImage]]:
    order = list(images)
    random.Random(seed).shuffle(order)
    held = max(2, int(len(order) * fraction)) if fraction > 0 else 0
    return order[held:], order[:held]


def train_copy(
    model_name: str,
    images: Sequence[CopyImage],
    out: Path,
    options: TrainOptions = COPY_MODE,
    progress: TrainProgress | None = None,
    copy: CopyOptions = CopyOptions(),
) -> TrainReport:
    """Fine-tune the image side of ``model_name`` to see copies of ``images`` as their
    sources, and save the best epoch (by held-out copy top-1) to ``out``."""
    import torch

    if options.mode != "copy":
        raise InvalidInputError(f"train_copy trains mode 'copy', not {options.mode!r}")
    if len(images) < MIN_IMAGES:
        raise InvalidInputError(f"copy training needs at least {MIN_IMAGES} images")
    device = training_device(options.device)
    generator = seed_everything(options.seed)
    rng = random.Random(options.seed)
    processor, model = load_for_training(model_name, "copy", device)
    input_size = model_input_size(model_name, model)
    train_images, held_images = _split(images, options.val_fraction, options.seed)
    data = CopyPictures(train_images, input_size)
    if len(data.pictures) < 2:
        raise InvalidInputError("copy training needs at least two readable training images")
    validation = _validation(processor, CopyPictures(held_images, input_size), options.seed)
    optimizer, schedule = optimizer_for(model, options, len(data.pictures))
    report = TrainReport(
        out=out,
        metric=COPY_TOP_1,
        train_pairs=len(data.pictures),
        val_pairs=len(held_images),
        unit="images",
    )
    best = BestEpoch(options.patience, validated=validation is not None)
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = torch.randperm(len(data.pictures), generator=generator).tolist()
        losses = []
        for batch in batches(order, options.batch_size):
            losses.append(copy_step(model, processor, optimizer, schedule, data, batch, rng, copy))
            if progress:
                progress.step(epoch, losses[-1])
        model.eval()
        top_1, margin = copy_retrieval(model, validation) if validation else (0.0, 0.0)
        loss = float(np.mean(losses)) if losses else 0.0
        end_epoch(report, progress, EpochStats(epoch, loss, top_1, COPY_TOP_1))
        if best.offer(model, epoch, (top_1, margin)):
            break
    best.restore(model)
    report.best_epoch, report.best_score = best.epoch, best.score[0]
    save_model(model, processor, out)
    return report


def copy_step(
    model: Any,
    processor: Any,
    optimizer: Any,
    schedule: Any,
    data: CopyPictures,
    batch: Sequence[int],
    rng: random.Random,
    options: CopyOptions = CopyOptions(),
) -> float:
    """One optimizer step on the pictures ``batch`` (rows of ``data``): two random copies
    of each, made on the CPU, and the loss of :func:`copy_loss`; returns the loss."""
    first, second = _views(data, batch, rng, options)
    a, b = _embed(model, _pixels(processor, first)), _embed(model, _pixels(processor, second))
    return step(optimizer, schedule, copy_loss(a, b, data.same(batch), options))


def _views(
    data: CopyPictures, batch: Sequence[int], rng: random.Random, options: CopyOptions
) -> tuple[list[Image.Image], list[Image.Image]]:
    first, second = [], []
    for row in batch:
        picture = data.pictures[row]
        keep = rng.random() < options.original_share
        first.append(picture if keep else random_view(picture, rng))
        second.append(random_view(picture, rng))
    return first, second


def model_input_size(model_name: str, model: Any) -> int:
    """The side of the model's square input, in pixels."""
    from pixseek.models.hf_clip.light import image_input_size

    size = image_input_size(model_name)
    if size:
        return size
    vision = getattr(model.config, "vision_config", None)
    return int(getattr(vision, "image_size", 224) or 224)
