"""A model before and after ``pixseek train --mode copy``, measured by copy calibration.

    python bench/copytrain.py [--photos 200] [--model M] [--epochs 100] [--lr 2e-3]

Caltech-101 photos from ../shared/data (one photo a class, then the next, ...):

1. ``--photos`` photos are indexed and the model is trained on them with
   ``pixseek train --mode copy``, as a user would;
2. those photos (what a user's collection is: copies of its own images are what it
   looks for), and ``--photos`` other photos, are indexed with the model before and after,
   and each index is calibrated (``pixseek calibrate``'s code, its defaults: 40 sampled
   images, every edit, target precision 0.99);
3. held out: the photos of step 2 that calibration did not sample get every edit again
   (other random choices); at the calibrated threshold, recall is the share of copies at
   or above it against their source, precision the share of pairs at or above it that are
   copies, among each copy's source and its 10 nearest other photos, as calibration counts;
4. text search: text→image recall@5 on 200 of the demo's synthetic shapes with their
   captions, before and after (the text tower does not train, the image side moves).

The default model is pixseek's small demo model (trained from random weights on synthetic
shapes); no photo model's weights can be downloaded on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from copydetect import DATA, photos  # bench/ is on the path when a benchmark runs
from PIL import Image

from pixseek.cli import main as pixseek
from pixseek.collection import Collection, open_collection
from pixseek.core.calibration import CopyCalibration
from pixseek.core.filters import Filter
from pixseek.demo.demo import SHIPPED_MODEL
from pixseek.demo.synthetic import write_dataset
from pixseek.imaging.edits import EDITS, edited
from pixseek.ingest import CocoSource, FolderSource, ingest
from pixseek.jobs.calibrate import CalibrationOptions, calibrate, sample_images
from pixseek.jobs.evaluate import evaluate
from pixseek.models import EmbedderOptions
from pixseek.training import pairs_from_captions

NEIGHBOURS = 10


def folder_of(work: Path, name: str, files: list[Path]) -> Path:
    folder = work / name
    folder.mkdir()
    for number, path in enumerate(files):
        shutil.copy(path, folder / f"{number:04d}-{path.parent.name}.jpg")
    return folder


def indexed(work: Path, name: str, model: str, folder: Path) -> Collection:
    options = EmbedderOptions(model=model, runtime="torch")
    collection = open_collection(work / name, options, create=True)
    ingest(collection, FolderSource([folder]))
    return collection


def held_out(collection: Collection, calibration: CopyCalibration) -> dict[str, tuple[int, ...]]:
    """By edit: (copies, copies at or above the threshold, unrelated pairs at or above it),
    on the images calibration did not sample, with other random edits."""
    index = collection.index()
    images = Filter.where({"kind": "image"})
    sampled = {r.id for r in sample_images(index, CalibrationOptions().sample, 0)}
    records = [r for r in collection.records(images) if r.id not in sampled]
    sources = index.store.get_vectors([r.id for r in records])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    threshold = calibration.threshold
    for row, record in enumerate(records):
        picture = Image.open(record.path).convert("RGB")
        copies = [edited(picture, name, 7_000 + row * 31 + n) for n, name in enumerate(EDITS)]
        for name, vector in zip(EDITS, index.embedder.embed_images(copies), strict=True):
            hits = index.store.search(vector, NEIGHBOURS + 1, images)
            others = [s for r, s in hits if r.id != record.id][:NEIGHBOURS]
            counts[name][0] += 1
            counts[name][1] += float(vector @ sources[record.id]) >= threshold
            counts[name][2] += sum(s >= threshold for s in others)
    return {name: tuple(values) for name, values in counts.items()}


def text_recall(work: Path, name: str, model: str, shapes: Path) -> float:
    collection = open_collection(
        work / name, EmbedderOptions(model=model, runtime="torch"), create=True
    )
    ingest(collection, CocoSource(shapes / "instances.json", shapes))
    pairs = pairs_from_captions(collection, shapes / "captions.jsonl")
    return evaluate(collection.index(), pairs, zero_shot=False).text_to_image[5]


def cell(counts: tuple[int, ...]) -> str:
    """Precision (a dash when no pair reaches the threshold) and recall."""
    copies, true, false = counts
    precision = f"{true / (true + false):.3f}" if true + false else "-"
    return f"{precision:>11}{true / max(1, copies):>11.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--model", default=str(SHIPPED_MODEL))
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"bench/copytrain.py needs Caltech-101 at {DATA}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        work = args.keep or Path(folder)
        work.mkdir(parents=True, exist_ok=args.keep is None)
        training = folder_of(work, "training", photos(args.photos))
        measured = folder_of(work, "measured", photos(args.photos, skip=args.photos))
        indexed(work, "training.pixseek", args.model, training)
        trained = work / "copy-model"
        started = time.perf_counter()
        command = ["train", "--collection", str(work / "training.pixseek"), "--mode", "copy"]
        command += ["--out", str(trained), "--epochs", str(args.epochs), "--lr", str(args.lr)]
        command += ["--batch-size", str(args.batch_size), "--patience", str(args.patience)]
        command += ["--quiet"]
        if pixseek(command) != 0:
            return 1
        print(f"trained in {time.perf_counter() - started:.0f} s\n")
        shapes = write_dataset(work / "shapes", 200, seed=2)
        results = {}
        for photo_set, folder_path in (("its own", training), ("other", measured)):
            for label, model in (("before", args.model), ("after", str(trained))):
                column = f"{label}, {photo_set}"
                collection = indexed(work, f"{label}-{photo_set[:3]}.pixseek", model, folder_path)
                calibration = calibrate(collection)
                print(f"{column}: {calibration.summary()}\n")
                results[column] = (calibration, held_out(collection, calibration))
        text = {
            label: text_recall(work, f"{label}-shapes.pixseek", model, shapes)
            for label, model in (("before", args.model), ("after", str(trained)))
        }
    print(f"{'':<16}" + "".join(f"{column:>22}" for column in results))
    row = "".join(f"{c.threshold:>22.4f}" for c, _ in results.values())
    print(f"{'threshold':<16}{row}")
    row = "".join(f"{c.precision:>11.3f}{c.recall:>11.3f}" for c, _ in results.values())
    print(f"{'calibration P/R':<16}{row}")
    for name in ("all", *EDITS):
        cells = []
        for _, counts in results.values():
            chosen = list(counts.values()) if name == "all" else [counts[name]]
            total = tuple(int(sum(c[i] for c in chosen)) for i in range(3))
            cells.append(cell(total))
        print(f"{'held out ' + name if name == 'all' else name:<16}" + "".join(cells))
    copies = sum(c[0] for c in next(iter(results.values()))[1].values())
    print(f"\nheld out: {copies} copies per column; precision and recall in each column")
    print(
        "text→image recall@5 on 200 synthetic shapes: "
        + ", ".join(f"{label} {value:.3f}" for label, value in text.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
