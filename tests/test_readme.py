"""Every ``pixseek`` command in README.md's code blocks runs, as typed, through the installed
console script, on small data laid out where the README's placeholders point.

The commands run in README order in one sandbox: ``~`` is a temporary home with photos in
``~/Pictures``; the working directory holds ``coco/``, the files the commands name, and the
collections earlier commands made. Hub ids load tiny local CLIPs from a Hugging Face cache
in that home, offline, through the same call that downloads real ones. ``[optional]`` parts
run twice: left out, and put in (each alternative of ``a | b``). A README command missing
from :data:`COMMANDS` (or an entry that is no longer in the README) fails the test, so a new
command cannot go untested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from pixseek.collection import open_collection
from pixseek.demo.factory import build_clip
from pixseek.demo.synthetic import write_dataset
from tests.conftest import CALTECH, COCO

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HUB_MODELS = ("openai/clip-vit-base-patch32", "openai/clip-vit-large-patch14")
PORT = 8000  # the README's own

Result = subprocess.CompletedProcess[str]
Check = Callable[[Result], None]


def no_check(result: Result) -> None:
    pass


def mentions(*words: str) -> Check:
    def check(result: Result) -> None:
        text = " ".join(result.stdout.split())  # aligned columns read as single spaces
        for word in words:
            assert word in text, f"{word!r} not in:\n{result.stdout[-2000:]}"

    return check


def json_hits(check_hit: Callable[[dict[str, object]], bool]) -> Check:
    def check(result: Result) -> None:
        hits = json.loads(result.stdout)
        assert hits and all(check_hit(hit) for hit in hits), hits

    return check


def not_empty_slice(result: Result) -> None:
    report = json.loads(result.stdout)
    assert report["images"] == 20, report


# Every README command, as written there, with what its output must show.
COMMANDS: dict[str, Check] = {
    "pixseek demo": mentions("demo collection:", "try: pixseek search"),
    "pixseek demo --serve": no_check,  # checked by the server answering on :8000
    "pixseek index ~/Pictures --collection ~/pics.pixseek": mentions("indexed 18 images"),
    'pixseek search "a dog on the beach" --collection ~/pics.pixseek': mentions("1."),
    "pixseek search +dog -grass --collection ~/pics.pixseek -k 20 --json": json_hits(
        lambda hit: hit["kind"] == "image"
    ),
    "pixseek similar ~/Downloads/query.jpg --box 40,30,200,120 --collection ~/pics.pixseek "
    "--objects": no_check,
    "pixseek info --collection ~/pics.pixseek": mentions("images: 18"),
    "pixseek index coco/val2017 --coco coco/annotations/instances_val2017.json "
    "--collection coco.pixseek": mentions("indexed 20 images"),
    'pixseek search "a red bus" --collection coco.pixseek --objects --where "label=bus,truck"': (
        no_check
    ),
    "pixseek reindex --collection pics --model openai/clip-vit-large-patch14": mentions("is ready"),
    "pixseek reindex --collection pics --model openai/clip-vit-large-patch14 --activate": (
        mentions("is active")
    ),
    "pixseek drop-model --collection pics --model openai/clip-vit-base-patch32": mentions(
        "dropped index"
    ),
    "pixseek calibrate --collection pics [--target-precision 0.99] [--json]": mentions(
        "copies at cosine >="
    ),
    "pixseek duplicates --collection labelled --across split": mentions("groups"),
    "pixseek train --collection pics --mode copy --out models/pics-copy": mentions(
        "validation copy top-1", "use it with --model"
    ),
    "pixseek reindex --collection pics --model models/pics-copy --name copies": mentions(
        "calibrated copy detection for index 'copies'", "is ready"
    ),
    "pixseek duplicates --collection pics --index copies": mentions("groups"),
    "pixseek duplicates --collection pics [--threshold 0.95] [--no-views | --views] "
    "[--json | --csv groups.csv]": no_check,
    "pixseek match suspicious.jpg other.png --collection pics [--threshold 0.9] "
    "[--no-views | --views] [--json]": mentions("exact"),
    "pixseek match ~/Downloads --collection pics": mentions("query.jpg: "),
    "pixseek index ~/Pictures --collection labelled --label-from-folder --holdout 0.2": (
        mentions("indexed 18 images")
    ),
    "pixseek classify new1.jpg new2.jpg --collection labelled [-k 10] [--json]": no_check,
    "pixseek classify --evaluate --split test --collection labelled": mentions("top-1 accuracy"),
    "pixseek index coco/val2017 --coco instances_val2017.json --predictions detections.json "
    "--collection val": mentions("indexed 20 images"),
    'pixseek search "anything" --collection val --objects --where "outcome=FN"': no_check,
    'pixseek slice "taxis at night" --collection val --top 50': mentions("slice of"),
    "pixseek slice --similar IMAGE_ID --collection val": mentions("slice of"),
    'pixseek slice --where "split=val" --collection val --json': not_empty_slice,
    "pixseek blindspots --collection val [--outcome FN|FP] [--clusters 8] "
    '[--attribute "at dusk" ...]': no_check,
    "pixseek blindspots --collection val --kind box --kind metadata --top 5": mentions(
        "1. lift", "box: "
    ),
    "pixseek label-errors --collection val [--top 20] [--json]": mentions(
        "nearest neighbours suggest another label"
    ),
    "pixseek map val-map.png --collection val --color-by outcome": mentions(
        "map of", "(fitted)", "wrote val-map.png"
    ),
    "pixseek uniqueness --collection val [--sample 10] [--json]": mentions(
        "20 most unusual of 20 images", "1. 1.000"
    ),
    "pixseek serve --root ~/collections --api-key s3cret": no_check,  # and the curls after it
}


def readme_blocks() -> list[list[str]]:
    """The lines of each ```bash block, with backslash continuations joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    joined = []
    for block in blocks:
        lines: list[str] = []
        for line in block.splitlines():
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1].rstrip() + " " + line.strip()
            elif line.strip():
                lines.append(line.strip())
        joined.append(lines)
    return joined


def readme_commands() -> list[str]:
    commands = []
    for block in readme_blocks():
        for line in block:
            if line.startswith("pixseek "):
                commands.append(re.sub(r"\s+#.*$", "", line))  # no '#' inside quotes here
    return commands


def variants(command: str) -> Iterator[str]:
    """The command without its ``[optional]`` parts, then with each alternative of them."""
    groups = re.findall(r"\[([^\[\]]+)\]", command)
    bare = re.sub(r"\s*\[[^\[\]]+\]", "", command)
    yield bare
    if not groups:
        return
    choices = [[a.strip().replace(" ...", "") for a in g.split(" | ")] for g in groups]
    for position in range(max(len(c) for c in choices)):
        parts = " ".join(c[min(position, len(c) - 1)] for c in choices)
        yield bare + " " + re.sub(r"(\S+)\|(\S+)", r"\1", parts)
        if "|" in parts:  # a value with alternatives (FN|FP): the others too
            yield bare + " " + re.sub(r"(\S+)\|(\S+)", r"\2", parts)


def test_every_readme_command_is_in_the_table() -> None:
    written = readme_commands()
    assert sorted(set(written)) == sorted(COMMANDS), (
        "README commands and tests/test_readme.py's COMMANDS differ: "
        f"new {sorted(set(written) - set(COMMANDS))}, gone {sorted(set(COMMANDS) - set(written))}"
    )


@dataclass
class Sandbox:
    home: Path
    cwd: Path
    env: dict[str, str]

    def run(self, command: str, timeout: float = 300) -> Result:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def hub_cache(home: Path) -> None:
    """Tiny CLIPs under the hub ids, in the layout huggingface_hub reads offline."""
    hub = home / ".cache" / "huggingface" / "hub"
    for seed, repo in enumerate(HUB_MODELS):
        folder = hub / ("models--" + repo.replace("/", "--"))
        revision = f"{seed + 1:040x}"
        build_clip(folder / "snapshots" / revision, seed=seed)
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(revision)


def photo(source: Path | None, out: Path, colour: tuple[int, int, int], size: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if source is not None and source.is_file():
        Image.open(source).convert("RGB").resize((320, 240)).save(out)
    else:
        image = Image.new("RGB", (320, 240), colour)
        image.paste(tuple(255 - c for c in colour), (size, size, size + 120, size + 90))
        image.save(out)


def lay_out_photos(home: Path, cwd: Path) -> None:
    classes = ("Faces_easy", "Motorbikes", "watch")
    for n, name in enumerate(classes):
        real = sorted((CALTECH / name).glob("*.jpg")) if CALTECH.is_dir() else []
        for i in range(7):
            source = real[i] if i < len(real) else None
            colour = (60 + 80 * n, 200 - 60 * n, 40 * i)
            target = home / "Pictures" / name / f"{i}.jpg"
            if i == 6:  # not in the collection: a query and images to classify
                target = home / "Downloads" / "query.jpg" if n == 0 else cwd / f"new{n}.jpg"
            photo(source, target, colour, 10 + 20 * i)
    first = home / "Pictures" / classes[0] / "0.jpg"
    shutil.copy(first, cwd / "suspicious.jpg")  # the same bytes: an exact copy
    Image.open(home / "Pictures" / classes[1] / "1.jpg").save(cwd / "other.png")
    shutil.copy(home / "Pictures" / classes[2] / "2.jpg", cwd / "cat.jpg")
    shutil.copy(home / "Pictures" / classes[1] / "3.jpg", cwd / "dog.jpg")


def lay_out_coco(cwd: Path) -> None:
    """``coco/val2017`` with 20 annotated images (COCO-mini's, or generated ones), its
    annotations beside the images and in the working directory, and a detector's results."""
    images, annotations = cwd / "coco" / "val2017", cwd / "coco" / "annotations"
    images.mkdir(parents=True)
    annotations.mkdir()
    real = COCO / "annotations" / "instances_val2017.json"
    if real.is_file():
        data = json.loads(real.read_text())
        annotated = {a["image_id"] for a in data["annotations"]}
        data["images"] = [i for i in data["images"] if i["id"] in annotated][:20]
        for image in data["images"]:
            shutil.copy(COCO / "val2017" / image["file_name"], images / image["file_name"])
    else:
        write_dataset(cwd / "generated", 20, seed=3)
        data = json.loads((cwd / "generated" / "instances.json").read_text())
        for image in data["images"]:
            shutil.copy(cwd / "generated" / image["file_name"], images / image["file_name"])
    kept = {i["id"] for i in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    text = json.dumps(data)
    (annotations / "instances_val2017.json").write_text(text)
    (cwd / "instances_val2017.json").write_text(text)
    detections = []
    for n, a in enumerate(data["annotations"]):
        if n % 4 == 3:
            continue  # missed
        x, y, w, h = a["bbox"]
        shift = 0.0 if n % 5 else w * 0.6  # a few land wide of the mark
        detections.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + shift, y, w, h],
                "score": round(0.5 + (n % 10) / 20, 2),
            }
        )
    (cwd / "detections.json").write_text(json.dumps(detections))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    if shutil.which("pixseek") is None:
        pytest.fail("the pixseek console script is not on PATH (pip install -e '.[dev]')")
    home = tmp_path_factory.mktemp("home")
    cwd = tmp_path_factory.mktemp("work")
    hub_cache(home)
    lay_out_photos(home, cwd)
    lay_out_coco(cwd)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "PIXSEEK_", "XDG_", "TRANSFORMERS_"))
    }
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    box = Sandbox(home, cwd, env)
    # `pics` is the collection the "several models" and jobs examples work on
    made = box.run("pixseek index ~/Pictures --collection pics --label-from-folder --quiet")
    assert made.returncode == 0, made.stderr
    return box


def wait_for(url: str, process: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"no answer from {url}")


def serve_and(sandbox: Sandbox, command: str, then: Callable[[], None]) -> None:
    """Start a server command as typed, run ``then`` against it, stop it."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=sandbox.cwd,
        env=sandbox.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{PORT}/health", process)
        then()
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_curls(sandbox: Sandbox) -> None:
    block = next(b for b in readme_blocks() if any(line.startswith("pixseek serve") for line in b))
    curls = [line for line in block if line.startswith("curl ")]
    assert len(curls) == 3
    for line in curls:
        result = sandbox.run(line + " --silent --show-error")
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert "detail" not in answer, (line, answer)
    assert json.loads(result.stdout)["hits"]


def image_id(sandbox: Sandbox, collection: str) -> str:
    return next(r.id for r in open_collection(sandbox.cwd / collection).records())


# The blocks that work on the collections `pics` and `labelled` run in this order on one
# thread; every other block (its own collections, or the server on :8000) on another.
SHARED_COLLECTIONS = ("--collection pics", "--collection labelled")


def run_block(sandbox: Sandbox, block: list[str]) -> int:
    """Run a code block's commands in order; returns how many runs it made."""
    ran = 0
    for command in (re.sub(r"\s+#.*$", "", line) for line in block if line.startswith("pixseek ")):
        check = COMMANDS[command]
        if command.startswith(("pixseek serve", "pixseek demo --serve")):
            then = (lambda: run_curls(sandbox)) if "serve --root" in command else (lambda: None)
            serve_and(sandbox, command, then)
            ran += 1
            continue
        for number, variant in enumerate(variants(command)):
            if "IMAGE_ID" in variant:
                variant = variant.replace("IMAGE_ID", image_id(sandbox, "val"))
            result = sandbox.run(variant)
            assert result.returncode == 0, f"{variant}\n{result.stdout}\n{result.stderr}"
            assert "Traceback" not in result.stderr, result.stderr
            if number == 0:  # as written, without its optional parts
                check(result)
            ran += 1
    return ran


@pytest.mark.slow
def test_readme_commands_run_as_typed(sandbox: Sandbox) -> None:
    """Blocks are independent but for the collections they share, so two threads run them
    (the commands are processes: this halves the wall time on two cores)."""
    from concurrent.futures import ThreadPoolExecutor

    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the README's HTTP examples")
    blocks = [b for b in readme_blocks() if any(line.startswith("pixseek ") for line in b)]
    shared = [b for b in blocks if any(c in " ".join(b) for c in SHARED_COLLECTIONS)]
    others = [b for b in blocks if b not in shared]
    streams = [shared, others]
    with ThreadPoolExecutor(len(streams)) as pool:
        runs = pool.map(lambda stream: sum(run_block(sandbox, b) for b in stream), streams)
        ran = sum(runs)
    assert ran >= len(COMMANDS)
