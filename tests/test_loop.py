"""The feedback loop end to end through the CLI: judgements stored by searches, a model
fine-tuned on them, a shadow index, and a switch only when held-out nDCG@10 rises.

The base model is a tiny random CLIP built here: it does not tell reds from blues. The
judgements encode that distinction ("a red thing": reds relevant, blues not, and the
reverse), which a model fine-tuned here on the judgements that are not held out learns.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pixseek.cli import main
from pixseek.collection.collection import open_collection
from pixseek.collection.feedback import held_out
from tests.conftest import make_image, stable_folder

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
QUERIES = {"a red thing": "red", "a blue thing": "blue"}


def run(capsys, *argv: str) -> str:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture()
def judged(tiny_model, capsys) -> Path:  # type: ignore[no-untyped-def]
    tmp_path = stable_folder("loop")  # the held-out judgements follow the images' paths
    rng = random.Random(0)
    for n in range(48):
        red = (rng.randint(150, 255), rng.randint(0, 90), rng.randint(0, 90))
        blue = (rng.randint(0, 90), rng.randint(0, 90), rng.randint(150, 255))
        make_image(tmp_path / "photos" / "red" / f"{n}.png", red, (40, 40))
        make_image(tmp_path / "photos" / "blue" / f"{n}.png", blue, (40, 40))
    root = tmp_path / "col"
    model = ("--model", str(tiny_model), "--runtime", "torch")
    run(
        capsys,
        "index",
        str(tmp_path / "photos"),
        "--collection",
        str(root),
        "--label-from-folder",
        "--quiet",
        *model,
    )
    colour = {r.id: r.label for r in open_collection(root).records()}
    for query, wanted in QUERIES.items():  # what a user marks, as the CLI stores it
        marks = []
        for record_id, label in colour.items():
            marks += ["--more-like" if label == wanted else "--less-like", record_id]
        run(capsys, "search", query, "--collection", str(root), "--remember", *marks)
    return root


def test_the_loop_raises_held_out_ndcg_and_refuses_a_worse_model(
    judged, tmp_path, tiny_model, capsys
) -> None:
    root = str(judged)
    judgements = open_collection(judged).feedback.list()
    held = sum(held_out(j.result_id) for j in judgements)
    assert len(judgements) == 192 and 20 < held < 80

    trained = tmp_path / "trained"
    out = run(
        capsys,
        "train",
        "--collection",
        root,
        "--from-feedback",
        "--out",
        str(trained),
        "--epochs",
        "15",
        "--lr",
        "3e-3",
        "--batch-size",
        "32",
        "--quiet",
    )
    assert f"{held} held out for evaluation" in out
    run(
        capsys,
        "reindex",
        "--collection",
        root,
        "--model",
        str(trained),
        "--runtime",
        "torch",
        "--quiet",
    )
    assert open_collection(judged).default_index == "default"  # search stays on the old one

    report = json.loads(
        run(capsys, "evaluate", "--collection", root, "--compare", "--activate-if-better", "--json")
    )
    before, after = report["active"]["feedback"], report["shadow"]["feedback"]
    print(
        f"held-out nDCG@10: base {before['ndcg_at_10']:.3f}, fine-tuned {after['ndcg_at_10']:.3f}"
    )
    assert before["judgements"] == after["judgements"] == held and before["queries"] == 2
    assert after["ndcg_at_10"] > before["ndcg_at_10"] + 0.1
    assert report["better"] and report["activated"]
    assert open_collection(judged).default_index == report["shadow"]["index"]

    # the base model's index is now the worse one: the switch back is refused
    text = run(
        capsys,
        "evaluate",
        "--collection",
        root,
        "--compare",
        "--index",
        "default",
        "--activate-if-better",
    )
    assert "does not score higher" in text
    assert open_collection(judged).default_index == report["shadow"]["index"]

    ranking = run(capsys, "models", "--evaluate", "--collection", root)
    lines = ranking.splitlines()
    assert lines[0].split()[:3] == ["rank", "index", "model"]
    assert lines[1].split()[:2] == ["1*", report["shadow"]["index"]]
    assert lines[2].split()[:2] == ["2", "default"]
    rows = json.loads(
        run(capsys, "models", "--evaluate", "--collection", root, "--labels", "--json")
    )
    assert [r["index"] for r in rows] == [report["shadow"]["index"], "default"]
    assert all(r["dim"] == 16 and r["images_per_second"] > 0 for r in rows)
    assert all(r["truth"]["zero_shot_accuracy"] is not None for r in rows)

    # a model not indexed yet is measured on a sample before any reindex
    argv = ["models", "--evaluate", "--collection", root, "--labels", "--json"]
    candidate = ["--candidates", str(tiny_model), "--runtime", "torch", "--sample", "20"]
    ranked = json.loads(run(capsys, *argv, *candidate))
    extra = next(r for r in ranked if r["index"].startswith("("))
    assert extra["model"] == str(tiny_model) and extra["truth"]["images"] == 20
    assert len(ranked) == 3 and extra["images_per_second"] > 0
