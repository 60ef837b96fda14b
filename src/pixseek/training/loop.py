"""The contrastive training loop (CLIP loss with a learnable temperature).

Modes: ``full`` trains everything; ``lit`` locks the text tower (and its
projection) and tunes the image side to it; ``projection`` trains only the two
projection heads and the temperature, which is fast and needs little data;
``copy`` trains the image side alone on edited copies of images (see
:mod:`pixseek.training.copy`, which makes new copies every epoch). For pairs, images
are decoded and preprocessed once, so each epoch is pure model work. The pieces every
mode shares (loading, the optimizer and its schedule, keeping the best epoch, saving)
are the small functions here.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

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
RECALL_AT_5 = "text→image recall@5"
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


class _Tensors:
    """Pixels of every distinct image and tokens of every distinct text, computed once."""

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


def _features(model: Any, tensors: _Tensors, images: Any, texts: Any) -> tuple[Any, Any]:
    import torch.nn.functional as F

    from pixseek.models.runtimes.torch_session import features_tensor

    image = features_tensor(model.get_image_features(pixel_values=tensors.pixels[images]))
    text_inputs = {key: value[texts] for key, value in tensors.tokens.items()}
    text = features_tensor(model.get_text_features(**text_inputs))
    return F.normalize(image, dim=-1), F.normalize(text, dim=-1)


def clip_loss(image: Any, text: Any, logit_scale: Any) -> Any:
    import torch
    import torch.nn.functional as F

    logits = logit_scale.exp() * image @ text.T
    targets = torch.arange(len(image))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def feedback_loss(
    image: Any, text: Any, texts: Any, negative: Any, negative_texts: Any, logit_scale: Any
) -> Any:
    """The CLIP loss for judged pairs: rows that share a text are not each other's
    negatives, and each text also competes with the images judged irrelevant for it
    (hard negatives); a hard negative of another text is left out, as it may fit this one."""
    import torch
    import torch.nn.functional as F

    scale = logit_scale.exp()
    same = texts[:, None] == texts[None, :]
    own = torch.eye(len(texts), dtype=torch.bool)
    candidates = torch.cat([image, negative]) if len(negative) else image
    to_images = scale * text @ candidates.T
    hidden = same & ~own
    if len(negative):
        hidden = torch.cat([hidden, texts[:, None] != negative_texts[None, :]], dim=1)
    to_images = to_images.masked_fill(hidden, float("-inf"))
    to_texts = (scale * image @ text.T).masked_fill(same & ~own, float("-inf"))
    targets = torch.arange(len(texts))
    return (F.cross_entropy(to_images, targets) + F.cross_entropy(to_texts, targets)) / 2


def text_to_image_recall(model: Any, tensors: _Tensors, pairs: Sequence[Pair], k: int = 5) -> float:
    """Share of validation texts whose image, or an image with the same text, ranks in the top k."""
    import torch

    if not pairs:
        return 0.0
    with torch.inference_mode():
        images = torch.arange(len(tensors.image_index))
        texts = torch.arange(len(tensors.text_index))
        image, text = _features(model, tensors, images, texts)
    ranked = (text @ image.T).topk(min(k, len(image)), dim=1).indices.numpy()
    texts_of_image: dict[int, set[int]] = {}
    for p in pairs:
        texts_of_image.setdefault(tensors.image_index[p.image_id], set()).add(
            tensors.text_index[p.text]
        )
    hits = [any(t in texts_of_image.get(int(i), ()) for i in ranked[t]) for t in range(len(texts))]
    return float(np.mean(hits))


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


def load_for_training(model_name: str, mode: Mode) -> tuple[Any, Any]:
    """The processor and the model, with only the parameters ``mode`` trains left trainable."""
    from pixseek.models.hf_clip.loading import load_model, load_processor

    processor, model = load_processor(model_name), load_model(model_name)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable(name, mode))
    return processor, model


def optimizer_for(model: Any, options: TrainOptions, steps_per_epoch: int) -> tuple[Any, Any]:
    """AdamW over the trainable parameters, and its warm-up + cosine schedule."""
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    return optimizer, warmup_cosine(optimizer, steps_per_epoch * options.epochs)


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

    def __init__(self, patience: int, validated: bool) -> None:
        self.patience, self.validated = patience, validated
        self.epoch, self.stale = 0, 0
        self.score: tuple[float, ...] = (0.0,)
        self.state: Any = None

    def offer(self, model: Any, epoch: int, score: tuple[float, ...]) -> bool:
        """Keep this epoch's weights if it is the best so far; True when training should stop."""
        if not self.validated or self.state is None or score > self.score:
            self.epoch, self.score, self.stale = epoch, score, 0
            self.state = copy.deepcopy(model.state_dict())
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
    """A normal model directory: it loads by path like any checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _judged_loss(
    model: Any, data: _Tensors, batch: Any, negatives: Any, image: Any, text: Any, generator: Any
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
        negative, _ = _features(model, data, data.pair_image[chosen], negative_texts[:1])
    return feedback_loss(image, text, texts, negative, negative_texts, model.logit_scale)


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
    generator = seed_everything(options.seed)
    processor, model = load_for_training(model_name, options.mode)
    train_pairs, val_pairs = split(pairs, options.val_fraction, options.seed)
    policy = TextPolicy.for_config(model.config, processor.tokenizer)
    judged = negatives is not None
    negatives = [n for n in negatives or () if n.text in {p.text for p in train_pairs}]
    train_data = _Tensors(processor, [*train_pairs, *negatives], policy)
    negative_rows = torch.arange(len(train_pairs), len(train_pairs) + len(negatives))
    val_data = _Tensors(processor, val_pairs, policy) if val_pairs else None
    optimizer, schedule = optimizer_for(
        model, options, max(1, len(train_pairs) // options.batch_size)
    )
    report = TrainReport(out=out, train_pairs=len(train_pairs), val_pairs=len(val_pairs))
    best = BestEpoch(options.patience, validated=val_data is not None)
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = torch.randperm(len(train_pairs), generator=generator)
        losses = []
        for start in range(0, len(order) - 1, options.batch_size):
            batch = order[start : start + options.batch_size]
            if len(batch) < 2:
                continue
            image, text = _features(
                model, train_data, train_data.pair_image[batch], train_data.pair_text[batch]
            )
            if judged:
                loss = _judged_loss(model, train_data, batch, negative_rows, image, text, generator)
            else:
                loss = clip_loss(image, text, model.logit_scale)
            losses.append(step(optimizer, schedule, loss))
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            if progress:
                progress.step(epoch, losses[-1])
        model.eval()
        recall = text_to_image_recall(model, val_data, val_pairs) if val_data else 0.0
        end_epoch(
            report, progress, EpochStats(epoch, float(np.mean(losses)) if losses else 0.0, recall)
        )
        if best.offer(model, epoch, (recall,)):
            break
    best.restore(model)
    report.best_epoch, report.best_score = best.epoch, best.score[0]
    save_model(model, processor, out)
    return report
