"""The contrastive training loop (CLIP loss with a learnable temperature).

Modes: ``full`` trains everything; ``lit`` locks the text tower (and its
projection) and tunes the image side to it; ``projection`` trains only the two
projection heads and the temperature, which is fast and needs little data;
``copy`` trains the image side alone on edited copies of images (see
:mod:`pixseek.training.copy`, which makes new copies every epoch). For pairs, images
are decoded and preprocessed once, so each epoch is pure model work. The pieces every
mode shares (the device, loading, the batches and the optimizer with its schedule, keeping
the best epoch, saving) are the small functions here.

Training runs on ``TrainOptions.device`` (``auto``: a CUDA GPU when torch sees one, else
Apple's MPS, else the CPU). Data stays in host memory and each batch is moved to the
device; the best epoch's weights are kept, and the model is saved, from the CPU.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from pixseek.core.errors import InvalidInputError
from pixseek.core.paths import local_path
from pixseek.imaging.decode import load_image_file
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.training.data import Pair

Mode = Literal["full", "lit", "projection", "copy"]
MODES: tuple[Mode, ...] = ("full", "lit", "projection", "copy")
PAIR_MODES: tuple[Mode, ...] = ("full", "lit", "projection")  # image-text pairs
LOCKED_FOR_LIT = ("text_model", "text_projection")
TRAINED_FOR_PROJECTION = ("visual_projection", "text_projection", "logit_scale")
IMAGE_SIDE = ("vision_model", "visual_projection")  # the image tower and its projection
VALIDATION_K = 5  # held-out recall@k chooses the epoch
RECALL_AT_5 = f"text→image recall@{VALIDATION_K}"
MAX_LOGIT_SCALE = float(np.log(100.0))


@dataclass(frozen=True, slots=True)
class TrainOptions:
    mode: Mode = "full"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.05
    val_fraction: float = 0.1
    patience: int = 3
    seed: int = 0
    device: str = "auto"  # see training_device


@dataclass(frozen=True, slots=True)
class EpochStats:
    epoch: int
    loss: float
    score: float  # on the held-out data, by ``metric``
    metric: str = RECALL_AT_5


@dataclass(slots=True)
class TrainReport:
    out: Path
    best_epoch: int = 0
    best_score: float = 0.0
    metric: str = RECALL_AT_5
    epochs: list[EpochStats] = field(default_factory=list)
    train_pairs: int = 0  # training examples: pairs, or images for ``copy``
    val_pairs: int = 0
    unit: str = "pairs"


class TrainProgress(Protocol):
    def step(self, epoch: int, loss: float) -> None: ...

    def epoch(self, stats: EpochStats) -> None: ...


def trainable(name: str, mode: Mode) -> bool:
    if mode == "full":
        return True
    if mode == "lit":
        return not name.startswith(LOCKED_FOR_LIT)
    if mode == "copy":
        return name.startswith(IMAGE_SIDE)
    return name.startswith(TRAINED_FOR_PROJECTION)


def split(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out whole images (all their captions), so validation never sees a training image."""
    images = sorted({p.image_id for p in pairs})
    random.Random(seed).shuffle(images)
    held = set(images[: max(1, int(len(images) * fraction))]) if fraction > 0 else set()
    return [p for p in pairs if p.image_id not in held], [p for p in pairs if p.image_id in held]


class PairTensors:
    """Pixels of every distinct image and tokens of every distinct text, computed once and
    kept in host memory (a batch goes to the device when it is used)."""

    def __init__(self, processor: Any, pairs: Sequence[Pair], policy: TextPolicy) -> None:
        import torch

        self.image_index = {i: n for n, i in enumerate(dict.fromkeys(p.image_id for p in pairs))}
        paths = {p.image_id: p.path for p in pairs}
        images = [load_image_file(local_path(paths[i])) for i in self.image_index]
        pixels = processor.image_processor(images=images, return_tensors="np")["pixel_values"]
        self.pixels = torch.from_numpy(np.asarray(pixels, dtype=np.float32))
        self.text_index = {t: n for n, t in enumerate(dict.fromkeys(p.text for p in pairs))}
        # the model's own text policy: SigLIP pads to max length with no mask, as at search time
        tokens = policy.tokenize(processor.tokenizer, list(self.text_index))
        self.tokens = {key: torch.from_numpy(value) for key, value in tokens.items()}
        self.pair_image = torch.tensor([self.image_index[p.image_id] for p in pairs])
        self.pair_text = torch.tensor([self.text_index[p.text] for p in pairs])


def _image_features(model: Any, tensors: PairTensors, rows: Any) -> Any:
    """Unit vectors of the images ``rows`` (indices), on the model's device."""
    import torch.nn.functional as F

    from pixseek.models.runtimes.torch_session import features_tensor

    pixels = tensors.pixels[rows].to(model.device)
    return F.normalize(features_tensor(model.get_image_features(pixel_values=pixels)), dim=-1)


def _text_features(model: Any, tensors: PairTensors, rows: Any) -> Any:
    """Unit vectors of the texts ``rows`` (indices), on the model's device."""
    import torch.nn.functional as F

    from pixseek.models.runtimes.torch_session import features_tensor

    inputs = {key: value[rows].to(model.device) for key, value in tensors.tokens.items()}
    return F.normalize(features_tensor(model.get_text_features(**inputs)), dim=-1)


def _features(model: Any, tensors: PairTensors, images: Any, texts: Any) -> tuple[Any, Any]:
    return _image_features(model, tensors, images), _text_features(model, tensors, texts)


def clip_loss(image: Any, text: Any, logit_scale: Any) -> Any:
    import torch
    import torch.nn.functional as F

    logits = logit_scale.exp() * image @ text.T
    targets = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def feedback_loss(
    image: Any, text: Any, texts: Any, negative: Any, negative_texts: Any, logit_scale: Any
) -> Any:
    """The CLIP loss for judged pairs: rows that share a text are not each other's
    negatives, and each text also competes with the images judged irrelevant for it
    (hard negatives); a hard negative of another text is left out, as it may fit this one."""
    import torch
    import torch.nn.functional as F

    device = image.device
    texts, negative_texts = texts.to(device), negative_texts.to(device)
    scale = logit_scale.exp()
    same = texts[:, None] == texts[None, :]
    own = torch.eye(len(texts), dtype=torch.bool, device=device)
    candidates = torch.cat([image, negative]) if len(negative) else image
    to_images = scale * text @ candidates.T
    hidden = same & ~own
    if len(negative):
        hidden = torch.cat([hidden, texts[:, None] != negative_texts[None, :]], dim=1)
    to_images = to_images.masked_fill(hidden, float("-inf"))
    to_texts = (scale * image @ text.T).masked_fill(same & ~own, float("-inf"))
    targets = torch.arange(len(texts), device=device)
    return (F.cross_entropy(to_images, targets) + F.cross_entropy(to_texts, targets)) / 2


def text_to_image_recall(
    model: Any,
    tensors: PairTensors,
    pairs: Sequence[Pair],
    k: int = VALIDATION_K,
    batch_size: int = 256,
) -> float:
    """Share of validation texts whose image, or an image with the same text, ranks in the top k."""
    return recall_of(held_out_ranks(model, tensors, pairs, batch_size), k)


def recall_of(ranks: NDArray[np.int64], k: int = VALIDATION_K) -> float:
    """The share of ``ranks`` (0: first) within the top ``k``; 0 for none."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def held_out_ranks(
    model: Any, tensors: PairTensors, pairs: Sequence[Pair], batch_size: int = 256
) -> NDArray[np.int64]:
    """For each validation text, the rank (0: first) of the best of its images among all
    the validation images."""
    import torch

    if not pairs:
        return np.zeros(0, np.int64)
    with torch.inference_mode():  # a batch at a time on the device
        image_rows = torch.arange(len(tensors.image_index)).split(batch_size)
        text_rows = torch.arange(len(tensors.text_index)).split(batch_size)
        image = torch.cat([_image_features(model, tensors, rows) for rows in image_rows])
        text = torch.cat([_text_features(model, tensors, rows) for rows in text_rows])
    order = (text @ image.T).argsort(dim=1, descending=True).cpu().numpy()
    images_of_text: dict[int, set[int]] = {}
    for p in pairs:
        images_of_text.setdefault(tensors.text_index[p.text], set()).add(
            tensors.image_index[p.image_id]
        )
    return np.asarray(
        [
            next(rank for rank, i in enumerate(row) if int(i) in images_of_text.get(t, ()))
            for t, row in enumerate(order)
        ],
        np.int64,
    )


def warmup_cosine(optimizer: Any, total_steps: int, warmup_fraction: float = 0.05) -> Any:
    """Linear warm-up, then cosine decay to zero: the usual CLIP schedule."""
    import math

    import torch

    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> Any:
    """Seed Python, NumPy and torch; returns a torch generator for the batch order."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def training_device(requested: str = "auto") -> Any:
    """The torch device to train on: ``auto`` is cuda when torch sees a GPU, else mps, else
    the CPU; ``cuda:N`` names one GPU. An unknown name, or a device this machine does not
    have, is a :class:`DeviceError` (:func:`~pixseek.models.runtimes.base.select_device`)."""
    import torch

    from pixseek.models.runtimes.base import select_device

    return torch.device(select_device(requested, "torch"))


def load_for_training(model_name: str, mode: Mode, device: Any = "cpu") -> tuple[Any, Any]:
    """The processor and the model on ``device``, with only the parameters ``mode`` trains
    left trainable."""
    from pixseek.models.hf_clip.loading import load_model, load_processor

    processor, model = load_processor(model_name), load_model(model_name)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable(name, mode))
    return processor, model.to(device)


def batch_starts(count: int, batch_size: int) -> range:
    """Where each batch of an epoch over ``count`` shuffled examples starts. Every batch
    has at least two examples (a lone last one has no negative and is left out), so
    this is also the number of optimizer steps an epoch takes."""
    return range(0, count - 1, max(2, batch_size))


def batches(order: Any, batch_size: int) -> list[Any]:
    """The batches of one epoch: slices of ``order``, at :func:`batch_starts`."""
    size = max(2, batch_size)
    return [order[start : start + size] for start in batch_starts(len(order), size)]


def optimizer_for(model: Any, options: TrainOptions, examples: int) -> tuple[Any, Any]:
    """AdamW over the trainable parameters, and its warm-up + cosine schedule over the
    steps that ``options.epochs`` epochs of ``examples`` take."""
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    steps = max(1, len(batch_starts(examples, options.batch_size)) * options.epochs)
    return optimizer, warmup_cosine(optimizer, steps)


def step(optimizer: Any, schedule: Any, loss: Any) -> float:
    """One optimizer step on ``loss``; returns its value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    return float(loss.item())


class BestEpoch:
    """The weights of the best epoch so far, by held-out score (a tuple: later items
    break ties), and when to stop: after ``patience`` epochs without a better one.
    Without held-out data (``validated`` false) every epoch is better: the last is kept."""

    def __init__(
        self, patience: int, validated: bool, ceiling: tuple[float, ...] | None = None
    ) -> None:
        self.patience, self.validated, self.ceiling = patience, validated, ceiling
        self.epoch, self.stale = 0, 0
        self.score: tuple[float, ...] = (0.0,)
        self.state: Any = None

    def offer(self, model: Any, epoch: int, score: tuple[float, ...]) -> bool:
        """Keep this epoch's weights (a copy in host memory) if it is the best so far; True
        when training should stop. A score at the ``ceiling`` (a perfect held-out score:
        a few held-out images leave nothing more to measure) keeps the later epoch, as if
        there were no held-out data, rather than stopping at the first to reach it."""
        perfect = self.ceiling is not None and score == self.score == self.ceiling
        if not self.validated or self.state is None or score > self.score or perfect:
            self.epoch, self.score, self.stale = epoch, score, 0
            self.state = {
                name: value.detach().to("cpu", copy=True)
                for name, value in model.state_dict().items()
            }
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self, model: Any) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def end_epoch(report: TrainReport, progress: TrainProgress | None, stats: EpochStats) -> None:
    report.epochs.append(stats)
    if progress:
        progress.epoch(stats)


def save_model(model: Any, processor: Any, out: Path) -> None:
    """A normal model directory, saved from the CPU: it loads by path like any checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(out)
    processor.save_pretrained(out)


def _judged_loss(
    model: Any, data: PairTensors, batch: Any, negatives: Any, image: Any, text: Any, generator: Any
) -> Any:
    """The feedback loss of a batch, with up to a batch's worth of hard negatives whose
    text is in the batch."""
    import torch

    texts = data.pair_text[batch]
    if len(negatives):
        fitting = negatives[torch.isin(data.pair_text[negatives], texts)]
        chosen = fitting[torch.randperm(len(fitting), generator=generator)[: len(batch)]]
    else:
        chosen = negatives
    negative_texts = data.pair_text[chosen]
    negative = text[:0]
    if len(chosen):
        negative = _image_features(model, data, data.pair_image[chosen])
    return feedback_loss(image, text, texts, negative, negative_texts, model.logit_scale)


def pair_step(
    model: Any,
    optimizer: Any,
    schedule: Any,
    data: PairTensors,
    batch: Any,
    negatives: Any = None,
    generator: Any = None,
) -> float:
    """One optimizer step on the pairs ``batch`` (rows of ``data``): the CLIP loss, or with
    ``negatives`` (rows of judged irrelevant pairs) the feedback loss; returns the loss."""
    import torch

    image, text = _features(model, data, data.pair_image[batch], data.pair_text[batch])
    if negatives is not None:
        loss = _judged_loss(model, data, batch, negatives, image, text, generator)
    else:
        loss = clip_loss(image, text, model.logit_scale)
    value = step(optimizer, schedule, loss)
    with torch.no_grad():
        model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return value


def train(
    model_name: str,
    pairs: Sequence[Pair],
    out: Path,
    options: TrainOptions = TrainOptions(),
    progress: TrainProgress | None = None,
    negatives: Sequence[Pair] | None = None,
) -> TrainReport:
    """Fine-tune ``model_name`` on ``pairs`` and save the best epoch to ``out``.

    ``negatives`` (judged pairs: an image that does not fit a text) switch to the loss
    of :func:`feedback_loss`; without them, every other pair of a batch is a negative."""
    import torch

    if options.mode not in PAIR_MODES:
        hint = " (it trains on images alone: train_copy)" if options.mode == "copy" else ""
        raise InvalidInputError(
            f"unknown mode {options.mode!r} for pairs{hint}; choose from {PAIR_MODES}"
        )
    if len(pairs) < 2:
        raise InvalidInputError("training needs at least two image-text pairs")
    device = training_device(options.device)
    generator = seed_everything(options.seed)
    processor, model = load_for_training(model_name, options.mode, device)
    train_pairs, val_pairs = split(pairs, options.val_fraction, options.seed)
    policy = TextPolicy.for_config(model.config, processor.tokenizer)
    judged = negatives is not None
    negatives = [n for n in negatives or () if n.text in {p.text for p in train_pairs}]
    train_data = PairTensors(processor, [*train_pairs, *negatives], policy)
    hard_rows = (  # the rows of the hard negatives
        torch.arange(len(train_pairs), len(train_pairs) + len(negatives)) if judged else None
    )
    val_data = PairTensors(processor, val_pairs, policy) if val_pairs else None
    optimizer, schedule = optimizer_for(model, options, len(train_pairs))
    report = TrainReport(out=out, train_pairs=len(train_pairs), val_pairs=len(val_pairs))
    best = BestEpoch(options.patience, validated=val_data is not None, ceiling=(1.0, 1.0))
    for epoch in range(1, options.epochs + 1):
        model.train()
        losses = []
        order = torch.randperm(len(train_pairs), generator=generator)
        for batch in batches(order, options.batch_size):
            loss = pair_step(model, optimizer, schedule, train_data, batch, hard_rows, generator)
            losses.append(loss)
            if progress:
                progress.step(epoch, losses[-1])
        model.eval()
        ranks = held_out_ranks(model, val_data, val_pairs) if val_data else np.zeros(0, np.int64)
        recall = recall_of(ranks)
        end_epoch(
            report, progress, EpochStats(epoch, float(np.mean(losses)) if losses else 0.0, recall)
        )
        # ties broken by the mean reciprocal rank: recall@5 over five images or fewer is 1
        # from the first epoch, and every later epoch would count as no better (where both
        # are perfect, the later epoch is kept: BestEpoch's ceiling)
        mrr = float(np.mean(1 / (ranks + 1))) if len(ranks) else 0.0
        if best.offer(model, epoch, (recall, mrr)):
            break
    best.restore(model)
    report.best_epoch, report.best_score = best.epoch, best.score[0]
    save_model(model, processor, out)
    return report
