"""The learning-rate schedule spans the optimizer steps training takes, in every mode, when
the number of examples is not a multiple of the batch size: linear warm-up, then a cosine
decay that reaches zero only after the last step."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from pixseek.training import loop
from pixseek.training.copy import CopyImage, train_copy
from pixseek.training.data import Pair
from pixseek.training.loop import TrainOptions, batch_starts, train, warmup_cosine

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LR = 1e-3
EPOCHS = 7


def expected(steps: int) -> list[float]:
    """The rate of each step: warm-up over the first 5% of the steps, then cosine decay."""
    warmup = max(1, int(steps * 0.05))
    rates = []
    for k in range(steps):
        if k < warmup:
            rates.append(LR * (k + 1) / warmup)
        else:
            rates.append(LR * 0.5 * (1 + math.cos(math.pi * (k - warmup) / (steps - warmup))))
    return rates


def recording(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The learning rate of every optimizer step that ``module`` takes."""
    rates: list[float] = []
    real = module.step

    def step(optimizer: Any, schedule: Any, loss: Any) -> float:
        rates.append(optimizer.param_groups[0]["lr"])
        return real(optimizer, schedule, loss)  # type: ignore[no-any-return]

    monkeypatch.setattr(module, "step", step)
    return rates


def pictures(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{n}.png"
        Image.new("RGB", (40, 40), (12 * n % 256, 255 - 9 * n % 256, 70 * n % 256)).save(path)
        paths.append(path)
    return paths


def check(rates: list[float], steps_per_epoch: int) -> None:
    assert len(rates) == EPOCHS * steps_per_epoch
    assert all(rate > 0 for rate in rates), rates
    assert rates == pytest.approx(expected(len(rates)), rel=1e-9, abs=1e-15)
    peak = rates.index(max(rates))
    assert peak == max(1, int(len(rates) * 0.05)) - 1  # the end of the warm-up
    assert rates[: peak + 1] == sorted(rates[: peak + 1])
    assert rates[peak:] == sorted(rates[peak:], reverse=True)
    assert rates[-1] < 0.01 * LR


@pytest.mark.parametrize(("count", "steps"), [(22, 6), (21, 5), (20, 5), (2, 1), (1, 0)])
def test_an_epoch_takes_a_step_per_batch_of_two_or_more(count: int, steps: int) -> None:
    assert len(batch_starts(count, 4)) == steps
    sizes = [len(batch) for batch in loop.batches(list(range(count)), 4)]
    assert len(sizes) == steps and all(size >= 2 for size in sizes)
    assert sum(sizes) == count - (count % 4 == 1)  # a lone last example is left out


@pytest.mark.parametrize("judged", [False, True], ids=["pairs", "feedback"])
def test_pair_modes_decay_to_zero_only_after_the_last_step(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, judged: bool
) -> None:
    """22 pairs in batches of 4: six steps an epoch (the last of two pairs), not five."""
    paths = pictures(tmp_path / "images", 23)
    colours = ("red", "green", "blue")
    pairs = [Pair(str(n), str(p), f"a {colours[n % 3]} square") for n, p in enumerate(paths)]
    negatives = [Pair("22", str(paths[22]), "a red square")] if judged else None
    rates = recording(loop, monkeypatch)
    options = TrainOptions(
        epochs=EPOCHS, batch_size=4, learning_rate=LR, val_fraction=0, device="cpu"
    )
    train(str(tiny_model), pairs[:22], tmp_path / "out", options, negatives=negatives)
    check(rates, 6)


def test_copy_mode_decays_to_zero_only_after_the_last_step(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixseek.training import copy

    paths = pictures(tmp_path / "images", 10)
    images = [CopyImage(str(n), str(path)) for n, path in enumerate(paths)]
    rates = recording(copy, monkeypatch)
    options = TrainOptions(
        mode="copy", epochs=EPOCHS, batch_size=4, learning_rate=LR, val_fraction=0, device="cpu"
    )
    train_copy(str(tiny_model), images, tmp_path / "out", options)
    check(rates, 3)


def test_the_schedule_itself() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=LR)
    schedule = warmup_cosine(optimizer, 40)
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx(expected(40), rel=1e-9, abs=1e-15)
    assert rates[:4] == pytest.approx([LR / 2, LR, LR, LR * 0.5 * (1 + math.cos(math.pi / 38))])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)
