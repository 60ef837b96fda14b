"""Copy detection on real photos: pixseek's defaults against imagededup, on the same files.

    python bench/copydetect.py [--sources 100] [--distractors 300] [--model M]
                               [--edits resize,flip,...] [--references 100000]

Caltech-101 photos from ../shared/data: each source photo gets every edit of
``pixseek.imaging.edits`` (resize, JPEG, crops of 80% and 60% from a corner, flip,
rotation, brightness, contrast, grayscale, text, logo, border), beside distractor photos.

- ``duplicates``: pixseek at its defaults (the index's own calibration, made when the
  collection is indexed) on every file; a copy is found when it shares a group with its
  source. Precision counts the (keeper, member) pairs of the groups. The same collection
  is then grouped again with ``--no-views`` (images compared only as they are).
- ``match``: each copy queried against a collection of the sources and distractors
  only; top-1 must be its source. Unseen photos must match nothing (false alarms). First
  with ``--no-views`` (the query only as it is), then at the defaults on the same freshly
  indexed collection: the first unmatched query makes the collection's views.
  ``--references N`` then adds N more reference images to that collection's index (random
  unit vectors with records, no files: they only cost search time) and times match again.
- imagededup's PHash, DHash and WHash at their default distance (10), on the same files:
  the baseline of the ratios. Install it for this benchmark only, without its deep-learning
  dependencies: ``pip install --no-deps imagededup && pip install PyWavelets matplotlib``.

The embedding tier is only as good as ``--model``: the default here is pixseek's small
demo model (no weights can be downloaded on this machine), so its figures say nothing about
CLIP's; pass a real checkpoint (``--model openai/clip-vit-base-patch32``) where you have one.
``--model thumbnail`` (or ``compressed``) takes the classical copy descriptors of the tests
(``tests/copy_models.py``: a grayscale thumbnail, which sees through resizing, re-encoding,
grayscale and flips but not through text bands, logos and borders). ``--edits`` makes the
collection's copies with only some of the edits (calibration still uses all of them).
``--model vit-b32-random`` builds a randomly initialised model of ViT-B/32's exact
geometry: its answers mean nothing, its times are those of a real CLIP on this machine
(``match_files`` against one query at a time is the line to read).

Each ``match`` pass also prints the false alarms and wrong top-1s with how they were made,
and the same queries through ``match_files`` (a batch of 32 embedded at once, what
``pixseek match FOLDER`` runs) against one at a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from pixseek.collection import Collection, open_collection
from pixseek.core.records import Record
from pixseek.core.vectors import l2_normalize
from pixseek.demo.demo import SHIPPED_MODEL
from pixseek.demo.factory import ClipShape, build_clip
from pixseek.imaging.edits import EDITS, edited
from pixseek.imaging.views import COPY_VIEWS
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.calibrate import calibrate_missing
from pixseek.jobs.copy_views import kept_views, views_path
from pixseek.jobs.dedup import DedupOptions, find_duplicates
from pixseek.jobs.false_alarms import CANDIDATES, false_alarms_of
from pixseek.jobs.match import (
    MATCH_BATCH,
    Match,
    MatchOptions,
    MatchResult,
    match_files,
    match_image,
)
from pixseek.models import Embedder, EmbedderOptions
from pixseek.stores.knn import exact_neighbours

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "caltech101" / "101_ObjectCategories"


def photos(count: int, skip: int = 0) -> list[Path]:
    """One photo a class, then the next, ...: few near-copies among the originals."""
    classes = sorted(p for p in DATA.iterdir() if p.is_dir() and p.name != "BACKGROUND_Google")
    files = [sorted(c.glob("*.jpg")) for c in classes]
    picked: list[Path] = []
    for rank in range(max(len(f) for f in files)):
        picked += [f[rank * 5] for f in files if len(f) > rank * 5]
    return picked[skip : skip + count]


def open_with(folder: Path, model: str) -> Collection:
    """A new collection with ``model``: a hub id or a path, or one of the tests' copy
    descriptors."""
    descriptors = {"thumbnail": "ThumbnailDescriptor", "compressed": "CompressedDescriptor"}
    if model in descriptors:
        sys.path.insert(0, str(ROOT))
        from tests import copy_models

        embedder: Embedder = getattr(copy_models, descriptors[model])()
        return open_collection(folder, embedder=embedder, create=True)
    return open_collection(folder, EmbedderOptions(model=model), create=True)


def lay_out(
    work: Path, sources: list[Path], distractors: list[Path], edits: Sequence[str] = tuple(EDITS)
) -> dict[str, str]:
    """Files on disk; returns name -> edit ("source", "distractor" or the edit's name)."""
    truth: dict[str, str] = {}
    everything, reference = work / "all", work / "reference"
    everything.mkdir()
    reference.mkdir()
    for number, path in enumerate(sources):
        picture = Image.open(path).convert("RGB")
        picture.save(everything / f"s{number:04d}.png")
        picture.save(reference / f"s{number:04d}.png")
        truth[f"s{number:04d}.png"] = "source"
        for n, name in enumerate(edits):
            copy = edited(picture, name, number * 100 + n)
            copy.save(everything / f"s{number:04d}-{name}.jpg", quality=92)
            truth[f"s{number:04d}-{name}.jpg"] = name
    for number, path in enumerate(distractors):
        picture = Image.open(path).convert("RGB")
        picture.save(everything / f"d{number:04d}.png")
        picture.save(reference / f"d{number:04d}.png")
        truth[f"d{number:04d}.png"] = "distractor"
    return truth


def source_of(name: str) -> str:
    return name.split("-", 1)[0].split(".", 1)[0]


def score_groups(groups: list[list[str]], truth: dict[str, str]) -> dict[str, float]:
    """Pair precision and recall by edit from groups of file names (first: the keeper)."""
    together: dict[str, set[str]] = defaultdict(set)
    right = wrong = 0
    for names in groups:
        for name in names:
            together[name] |= set(names)
        for other in names[1:]:
            same = source_of(other) == source_of(names[0]) and truth[other] != "distractor"
            right, wrong = right + same, wrong + (not same)
    found: dict[str, list[bool]] = defaultdict(list)
    for name, kind in truth.items():
        if kind not in ("source", "distractor"):
            found[kind].append(source_of(name) + ".png" in together[name])
    result = {"precision": right / max(1, right + wrong)}
    result["recall"] = float(np.mean([v for values in found.values() for v in values]))
    result |= {kind: float(np.mean(values)) for kind, values in found.items()}
    return result


Scored = tuple[dict[str, float], float]


def pixseek_duplicates(work: Path, model: str, truth: dict[str, str]) -> dict[str, Scored]:
    """At the defaults (timed from indexing: index, calibrate, embed views, group), then
    the same collection without views (timed: group)."""
    collection = open_with(work / "c-all", model)
    rows = {}
    started = time.perf_counter()
    ingest(collection, FolderSource([work / "all"]))
    calibrate_missing(collection)
    for name, options in (("", DedupOptions()), (" --no-views", DedupOptions(views=False))):
        result = find_duplicates(collection, options=options)
        seconds = time.perf_counter() - started
        groups = [[Path(m.record.path).name for m in g.members] for g in result.groups]
        rows[f"pixseek duplicates{name}"] = (score_groups(groups, truth), seconds)
        started = time.perf_counter()
    print(f"  pixseek: {collection.index().entry.calibration.summary()}")  # type: ignore[union-attr]
    return rows


def imagededup_hashing() -> ModuleType | None:
    """imagededup's hashing module, loaded without its packages' ``__init__`` files: they
    import the CNN method and with it torchvision, which does not load beside this torch."""
    spec = importlib.util.find_spec("imagededup")
    if spec is None or not spec.submodule_search_locations:
        return None
    import types

    root = Path(spec.submodule_search_locations[0])
    for name in ("methods", "utils"):
        package = types.ModuleType(f"imagededup.{name}")
        package.__path__ = [str(root / name)]
        sys.modules.setdefault(f"imagededup.{name}", package)
    return importlib.import_module("imagededup.methods.hashing")


def imagededup_duplicates(
    work: Path, truth: dict[str, str]
) -> dict[str, tuple[dict[str, float], float]]:
    hashing = imagededup_hashing()
    if hashing is None:
        print(
            "  imagededup is missing: pip install --no-deps imagededup; "
            "pip install PyWavelets matplotlib"
        )
        return {}
    results = {}
    for method in ("PHash", "DHash", "WHash"):
        hasher = getattr(hashing, method)(verbose=False)
        started = time.perf_counter()
        found = hasher.find_duplicates(image_dir=str(work / "all"))
        seconds = time.perf_counter() - started
        groups = [[name, *others] for name, others in found.items() if others]
        results[method] = (score_groups(groups, truth), seconds)
    return results


def pixseek_match(
    work: Path, model: str, truth: dict[str, str], unseen: list[Path], references: int
) -> None:
    collection = open_with(work / "c-ref", model)
    ingest(collection, FolderSource([work / "reference"]))
    calibrate_missing(collection)
    calibration = collection.index().entry.calibration
    print(f"\nthe reference collection's calibration: {calibration and calibration.summary()}")
    copies = {name: kind for name, kind in truth.items() if kind not in ("source", "distractor")}
    time_match(collection, work, copies, unseen, "match --no-views", MatchOptions(views=False))
    started = time.perf_counter()  # the first unmatched query makes the collection's views
    time_match(collection, work, copies, unseen, "match at its defaults", MatchOptions())
    print(f"  (including the views, made once by the first unmatched query: {made_in(started)})")
    if references:
        add_references(collection, references)
        time_false_alarms(collection)
        started = time.perf_counter()
        time_match(
            collection, work, copies, unseen, f"with {references:,} more references", MatchOptions()
        )
        print(f"  (including the kept views' index, built by the first: {made_in(started)})")
        time_kept_views(collection)


def time_false_alarms(collection: Collection) -> None:
    """What the first match query after the collection grew pays once: its levels for
    outside images measured again (jobs.false_alarms), as it is and with the kept views,
    against reading the kept views (the baseline: what the first unmatched query pays
    anyway)."""
    index = collection.index()
    calibration = index.entry.calibration
    assert calibration is not None
    started = time.perf_counter()
    kept_views(collection, index)
    reading = time.perf_counter() - started
    print(f"  reading the kept views (baseline): {reading:.1f} s")
    for views in (False, True):
        started = time.perf_counter()
        alarms = false_alarms_of(collection, index, calibration, views, CANDIDATES)
        took = time.perf_counter() - started
        print(
            f"  outside-image levels {'with' if views else 'without'} the views measured in "
            f"{took:.1f} s ({took / reading:.2f}x the reading): {alarms.summary()}"
        )
        calibration = index.entry.calibration or calibration


def time_kept_views(collection: Collection) -> None:
    """A query's search of the kept views: the index match builds once, against a scan of
    every view (the baseline), on the same queries (views of the collection, slightly
    moved): the time of each, and how often the index finds the scan's best."""
    kept = kept_views(collection, collection.index())
    assert kept is not None
    rng = np.random.default_rng(5)
    picked = kept.vectors[rng.choice(len(kept.vectors), 50)]
    queries = l2_normalize(picked + 0.02 * rng.normal(size=picked.shape)).astype(np.float32)
    found, seconds = {}, {}
    scanned = kept.vectors.astype(np.float32)  # the baseline: a float32 scan of every view
    for name, search in (
        ("index", lambda q: kept.nearest.search(q, 20)),
        ("scan", lambda q: exact_neighbours(q, scanned, 20)),
    ):
        started = time.perf_counter()
        found[name] = [int(search(query[None, :])[0][0, 0]) for query in queries]
        seconds[name] = (time.perf_counter() - started) / len(queries)
    same = np.mean([a == b for a, b in zip(found["index"], found["scan"], strict=True)])
    print(
        f"  kept views ({len(kept.vectors):,}): {seconds['index'] * 1000:.2f} ms a query with "
        f"the index, {seconds['scan'] * 1000:.2f} ms scanning them all "
        f"({seconds['scan'] / seconds['index']:.1f}x); the same best view {same:.2f}"
    )


def made_in(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s for the whole pass"


def add_references(collection: Collection, count: int) -> None:
    """Reference images that are only records and vectors (random directions, far from the
    photos), and kept views of them alike: what a large collection costs a search, without
    a hundred thousand files."""
    index = collection.index()
    store = index.store
    rng = np.random.default_rng(4)
    for start in range(0, count, 50_000):
        size = min(50_000, count - start)
        vectors = l2_normalize(rng.normal(size=(size, store.dim))).astype(np.float32)
        records = [
            Record(id=f"ref{i}", kind="image", image_id=f"ref{i}", path="", width=1, height=1)
            for i in range(start, start + size)
        ]
        store.upsert(records, vectors)
    store.persist()
    path = views_path(collection, index)
    with np.load(path) as kept:  # the format copy_views keeps: the references' views added
        shape = (count, len(COPY_VIEWS), store.dim)
        views = l2_normalize(rng.normal(size=shape).reshape(-1, store.dim)).reshape(shape)
        np.savez(
            path,
            signature=kept["signature"],
            ids=np.concatenate([kept["ids"], [f"ref{i}" for i in range(count)]]),
            hashes=np.concatenate([kept["hashes"], [""] * count]),
            vectors=np.concatenate([kept["vectors"], views.astype(np.float32)]),
        )


def time_match(
    collection: Collection,
    work: Path,
    copies: dict[str, str],
    unseen: list[Path],
    title: str,
    options: MatchOptions,
) -> None:
    """Each copy (name -> its edit) matched against the collection: top-1 by edit, false
    alarms on unseen photos, and the time over the model's own."""
    right: dict[str, list[bool]] = defaultdict(list)
    times: list[float] = []
    model_times: list[float] = []
    wrong: list[str] = []  # a wrong top-1 names another image: worse than none
    answers: list[MatchResult] = []
    embedder = collection.index().embedder
    for name, edit in copies.items():
        data = (work / "all" / name).read_bytes()
        started = time.perf_counter()
        result = match_image(collection, data, options=options)
        times.append(time.perf_counter() - started)
        answers.append(result)
        started = time.perf_counter()
        embedder.embed_images([Image.open(work / "all" / name).convert("RGB")])
        model_times.append(time.perf_counter() - started)
        top = result.matches[0].record.path if result.matches else ""
        right[edit].append(Path(top).name == source_of(name) + ".png")
        if top and not right[edit][-1]:
            wrong.append(f"{edit} -> {Path(top).name}: {describe(result.matches[0])}")
    alarms: list[str] = []
    unseen_times = []
    for path in unseen:  # no copies: every view is tried, so these cost the most
        data = path.read_bytes()
        started = time.perf_counter()
        answer = match_image(collection, data, options=options)
        unseen_times.append(time.perf_counter() - started)
        answers.append(answer)
        found = answer.matches
        if found:
            alarms.append(describe(found[0]))
    overall = np.mean([v for values in right.values() for v in values])
    print(
        f"\n{title} ({collection.index().store.count():,} reference images): top-1 right "
        f"{overall:.3f}; false alarms {len(alarms)} of {len(unseen)} unseen photos; "
        f"{np.median(times) * 1000:.1f} ms a query, "
        f"{(np.median(times) - np.median(model_times)) * 1000:+.1f} ms over the model's own "
        f"{np.median(model_times) * 1000:.1f} ms; an unseen photo "
        f"{np.median(unseen_times) * 1000:.1f} ms"
    )
    print("  by edit: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in right.items()))
    paths = [work / "all" / name for name in copies] + list(unseen)
    started = time.perf_counter()
    batched = list(match_files(collection, paths, options=options))
    each = (time.perf_counter() - started) / len(paths)
    alone = np.mean(  # the query that made the collection's views is left out
        [t for t, a in zip(times + unseen_times, answers, strict=True) if a.views != "made"]
    )
    same = np.mean(  # a batch embeds with other float rounding: scores can differ a little
        [top_id(r) == top_id(a) for (_, r), a in zip(batched, answers, strict=True)]
    )
    print(
        f"  one at a time {alone * 1000:.1f} ms a file (mean); match_files, {MATCH_BATCH} "
        f"a batch: {each * 1000:.1f} ms ({alone / each:.2f}x); the same top-1 {same:.3f}"
    )
    if alarms:
        print("  false alarms: " + "; ".join(alarms))
    if wrong:
        print(f"  wrong top-1 ({len(wrong)}): " + "; ".join(wrong[:10]))


def top_id(result: MatchResult | Exception) -> str:
    """The id of the best match ("" for none or an error)."""
    if isinstance(result, Exception) or not result.matches:
        return ""
    return result.matches[0].record.id


def describe(match: Match) -> str:
    """How a match was made: its tier, score, what of the collection image and which view
    of the query."""
    return f"{match.tier} {match.score:.4f} via {match.via}, query {match.view}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--unseen", type=int, default=100)
    parser.add_argument(
        "--model",
        default=str(SHIPPED_MODEL),
        help="a hub id or path, or thumbnail, compressed, vit-b32-random",
    )
    parser.add_argument("--edits", default=",".join(EDITS), help="the copies' edits")
    parser.add_argument("--references", type=int, default=0, help="then match among N more")
    args = parser.parse_args()
    edits = [name for name in args.edits.split(",") if name]
    if unknown := set(edits) - set(EDITS):
        parser.error(f"--edits are among {', '.join(EDITS)}; not {sorted(unknown)}")
    if not DATA.is_dir():
        print(f"bench/copydetect.py needs Caltech-101 at {DATA}", file=sys.stderr)
        return 2
    sources = photos(args.sources)
    distractors = photos(args.distractors, skip=args.sources)
    unseen = photos(args.unseen, skip=args.sources + args.distractors)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if args.model == "vit-b32-random":
            args.model = str(build_clip(work / "vit-b32-random", ClipShape.vit_b32()))
        truth = lay_out(work, sources, distractors, edits)
        print(
            f"{args.sources} sources x {len(edits)} edits + {args.distractors} distractors "
            f"= {len(truth)} files; model {args.model}"
        )
        rows = pixseek_duplicates(work, args.model, truth)
        rows |= {f"imagededup {k}": v for k, v in imagededup_duplicates(work, truth).items()}
        baseline = rows.get("imagededup PHash", (None, 0.0))
        print(
            f"\n{'method':<32} {'precision':>9} {'recall':>7} {'vs PHash':>9} {'s':>7}  "
            "recall by edit"
        )
        for name, (scores, seconds) in rows.items():
            ratio = (
                f"{scores['recall'] / baseline[0]['recall']:.2f}x"
                if baseline[0] and baseline[0]["recall"]
                else "-"
            )
            by_edit = " ".join(f"{k} {scores[k]:.2f}" for k in edits)
            print(
                f"{name:<32} {scores['precision']:>9.3f} {scores['recall']:>7.3f} {ratio:>9} "
                f"{seconds:>7.1f}  {by_edit}"
            )
        pixseek_match(work, args.model, truth, unseen, args.references)
    return 0


if __name__ == "__main__":
    sys.exit(main())
