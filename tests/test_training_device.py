"""``pixseek train --device``: the CPU trains as before, ``auto`` picks what torch sees, and
a device this machine lacks (or an unknown name) is a clear error in every mode, not a
traceback. CI has no GPU: the absence of one is simulated where a test needs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixseek.cli import main
from pixseek.core.errors import DeviceError
from pixseek.training import TrainOptions
from pixseek.training.loop import training_device
from tests.conftest import make_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGES = 12


def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch as a build with accelerators sees it (not the CPU-only wheel, whose version
    alone says there are none), on a machine without any."""
    from pixseek.models.runtimes import base

    monkeypatch.setattr(base, "cpu_only_torch", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A small collection of coloured images, indexed with the tiny model, and captions."""
    root = tmp_path_factory.mktemp("device")
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 220)}
    rows = []
    for n in range(IMAGES):
        name, colour = list(colours.items())[n % 3]
        path = make_image(root / "photos" / f"{n}.png", colour, (40, 40))
        rows.append({"path": path.name, "caption": f"a {name} square"})
    (root / "photos" / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    command = ["index", str(root / "photos"), "--collection", str(root / "col"), *model]
    assert main(command) == 0
    return root


def train_command(root: Path, out: Path, *extra: str) -> list[str]:
    captions = str(root / "photos" / "captions.jsonl")
    return [
        "train",
        "--collection",
        str(root / "col"),
        "--out",
        str(out),
        "--captions",
        captions,
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--quiet",
        *extra,
    ]


def test_auto_is_what_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    no_accelerator(monkeypatch)
    assert training_device("auto") == torch.device("cpu")
    assert training_device("CPU") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert training_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert training_device("auto") == torch.device("cuda")
    assert training_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(DeviceError, match="not available: torch sees 2 CUDA GPU"):
        training_device("cuda:2")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cpu:0", "gpu", "mps:1"])
def test_unknown_devices_are_typed_errors(name: str) -> None:
    with pytest.raises(DeviceError, match=r"unknown device .*: choose from auto, cuda, mps, cpu"):
        training_device(name)


def test_device_cpu_trains_as_before(
    captioned: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    """--device cpu trains and saves the model directory as ever; without --device (auto,
    which is the CPU on a machine with no accelerator) the weights are the same, bit for bit."""
    out = captioned / "on-cpu"
    assert main(train_command(captioned, out, "--device", "cpu")) == 0
    assert "saved the model of epoch" in capsys.readouterr().out
    no_accelerator(monkeypatch)
    assert TrainOptions().device == "auto"
    assert main(train_command(captioned, captioned / "auto")) == 0
    trained = load_file(out / "model.safetensors")
    automatic = load_file(captioned / "auto" / "model.safetensors")
    start = load_file(tiny_model / "model.safetensors")
    assert trained.keys() == start.keys() == automatic.keys()
    assert any(not torch.equal(trained[name], start[name]) for name in start)
    assert all(torch.equal(trained[name], automatic[name]) for name in trained)
    # the same model files (other tests may have cached an ONNX export in the start model)
    files = {p.name for p in out.iterdir()}
    assert files == {p.name for p in tiny_model.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize(
    "mode",
    [["--mode", "full"], ["--mode", "lit"], ["--mode", "projection"], ["--from-feedback"]],
)
def test_cuda_without_a_gpu_is_a_clear_error(
    captioned: Path, monkeypatch: pytest.MonkeyPatch, capsys, mode: list[str]
) -> None:  # type: ignore[no-untyped-def]
    no_accelerator(monkeypatch)
    out = captioned / f"cuda{mode[-1]}"
    command = train_command(captioned, out, "--device", "cuda", *mode)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "pixseek: invalid input: device 'cuda' is not available" in err, err
    assert "torch sees 0 CUDA GPU(s)" in err and "Traceback" not in err
    assert not out.exists()


def test_copy_mode_on_cuda_without_a_gpu(
    captioned: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    """The CLI and the library (train_copy) both refuse it."""
    from pixseek.training.copy import CopyImage, train_copy

    no_accelerator(monkeypatch)
    out = captioned / "cuda-copy"
    command = ["train", "--collection", str(captioned / "col"), "--out", str(out)]
    assert main([*command, "--mode", "copy", "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda' is not available" in err and "Traceback" not in err
    images = [CopyImage(str(n), str(captioned / "photos" / f"{n}.png")) for n in range(IMAGES)]
    options = TrainOptions(mode="copy", epochs=1, device="cuda")
    with pytest.raises(DeviceError, match="not available"):
        train_copy(str(tiny_model), images, out, options)
    assert not out.exists()


def test_mps_and_unknown_names_through_the_cli(
    captioned: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    no_accelerator(monkeypatch)
    out = captioned / "mps"
    assert main(train_command(captioned, out, "--device", "mps")) == 2
    assert "device 'mps' is not available: torch sees no Apple GPU" in capsys.readouterr().err
    assert main(train_command(captioned, out, "--device", "tpu")) == 2
    err = capsys.readouterr().err
    assert "pixseek: invalid input: unknown device 'tpu'" in err and "Traceback" not in err


def test_validation_recall_is_the_same_in_any_chunks(captioned: Path, tiny_model: Path) -> None:
    """Held-out recall is computed a chunk at a time (so that it fits on a device): the
    chunks change nothing, and every text counts."""
    import torch.nn.functional as F

    from pixseek.collection.collection import open_collection
    from pixseek.models.hf_clip.policy import TextPolicy
    from pixseek.models.runtimes.torch_session import features_tensor
    from pixseek.training import pairs_from_captions
    from pixseek.training.data import Pair
    from pixseek.training.loop import PairTensors, load_for_training, text_to_image_recall

    found = pairs_from_captions(
        open_collection(captioned / "col"), captioned / "photos" / "captions.jsonl"
    )
    pairs = [Pair(p.image_id, p.path, f"{p.text} number {n}") for n, p in enumerate(found)]
    processor, model = load_for_training(str(tiny_model), "full")
    model.eval()
    policy = TextPolicy.for_config(model.config, processor.tokenizer)
    tensors = PairTensors(processor, pairs, policy)
    whole = text_to_image_recall(model, tensors, pairs, k=3)
    assert text_to_image_recall(model, tensors, pairs, k=3, batch_size=5) == pytest.approx(whole)
    with torch.inference_mode():
        pixels = tensors.pixels
        image = F.normalize(features_tensor(model.get_image_features(pixel_values=pixels)), dim=-1)
        text = F.normalize(features_tensor(model.get_text_features(**tensors.tokens)), dim=-1)
    top = (text @ image.T).topk(3, dim=1).indices
    direct = [n in top[n].tolist() for n in range(len(pairs))]  # one image, one text each
    assert whole == pytest.approx(sum(direct) / len(direct))
    assert 0 < whole < 1  # a share of the 12 texts, not the first text's hit alone
