"""Near-duplicate detection and copy matching: quality per tier and transformation, and speed.

    python bench/dedup.py [--originals 60] [--distractors 140] [--vectors 1000000]

Part 1, real photos (Caltech-101 from ../shared/data): each of N originals gets seven
altered copies (50% resize, 85% crop, JPEG quality 30, brightness/contrast, horizontal flip,
5° rotation, text overlay), beside distinct distractor photos. `duplicates` runs on all of
them; `match` queries each copy against a collection of the originals and distractors.
Prints precision and recall per tier and per transformation. The model is a randomly
initialised ViT-B/32 (no weights can be downloaded here): the exact and perceptual-hash
tiers behave as they will in production; the embedding tier's figures need real CLIP weights.

Part 2, speed: synthetic clustered unit vectors (a mixture of Gaussians on the sphere) with
planted near-duplicates. Times the embedding tier (neighbours + connected components) on
the full set, and an exact all-pairs scan on a 20k subset as the baseline, extrapolated
quadratically to the full size; prints the ratio and the recall of the planted pairs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from pixseek.collection import open_collection
from pixseek.core.vectors import l2_normalize
from pixseek.demo.factory import ClipShape, build_clip
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.dedup import (
    DedupOptions,
    components,
    embedding_links,
    find_duplicates,
    find_links,
)
from pixseek.jobs.match import match_image
from pixseek.models import EmbedderOptions
from pixseek.stores.knn import exact_neighbours

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "caltech101"


def transformations() -> dict[str, object]:
    def crop(image: Image.Image) -> Image.Image:
        w, h = image.size
        return image.crop((int(w * 0.075), int(h * 0.075), int(w * 0.925), int(h * 0.925)))

    def overlay(image: Image.Image) -> Image.Image:
        image = image.copy()
        ImageDraw.Draw(image).text(
            (10, image.height - 30), "© someone else 2026", fill=(255, 255, 0)
        )
        return image

    return {
        "resize": lambda im: im.resize((im.width // 2, im.height // 2)),
        "crop": crop,
        "jpeg30": lambda im: im,  # saved at quality 30 below
        "brightness": lambda im: ImageEnhance.Contrast(
            ImageEnhance.Brightness(im).enhance(1.3)
        ).enhance(0.8),
        "flip": ImageOps.mirror,
        "rotate": lambda im: im.rotate(5, expand=False, fillcolor=(0, 0, 0)),
        "overlay": overlay,
    }


def photos(originals: int, distractors: int) -> list[Path]:
    listing = sorted((DATA / "train.txt").read_text().split())
    step = max(1, len(listing) // (originals + distractors))
    chosen = listing[::step][: originals + distractors]
    return [DATA / "101_ObjectCategories" / name for name in chosen]


def part_one(work: Path, originals: int, distractors: int) -> None:
    sources = photos(originals, distractors)
    base, copies = work / "originals", work / "copies"
    base.mkdir()
    copies.mkdir()
    truth: dict[str, tuple[str, str]] = {}  # copy file name -> (original name, transformation)
    for number, path in enumerate(sources):
        image = Image.open(path).convert("RGB")
        name = f"{number:04d}.jpg"
        image.save(base / name, quality=95)
        if number >= originals:
            continue
        for kind, change in transformations().items():
            copy = f"{number:04d}-{kind}.jpg"
            change(image).save(copies / copy, quality=30 if kind == "jpeg30" else 90)  # type: ignore[operator]
            truth[copy] = (name, kind)
    model = build_clip(work / "vit-b32", ClipShape.vit_b32())
    options = EmbedderOptions(model=str(model), runtime="onnx", precision="fp32")
    everything = open_collection(work / "all", options, create=True)
    ingest(everything, FolderSource([base, copies]))
    started = time.perf_counter()
    links = find_links(everything, options=DedupOptions())
    groups = find_duplicates(everything, options=DedupOptions())
    seconds = time.perf_counter() - started
    print(
        f"\nduplicates over {len(sources) + len(truth)} photos ({seconds:.1f} s): "
        f"{len(groups)} groups, largest {max((len(g.members) for g in groups), default=0)}"
    )

    def source(name: str) -> str:
        return truth.get(name, (name, ""))[0]

    linked: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for link in links:
        a, b = Path(link.a.path).name, Path(link.b.path).name
        linked[link.tier].add((a, b))
        linked[link.tier].add((b, a))
    for tier in ("exact", "phash", "embedding"):
        pairs = {tuple(sorted(pair)) for pair in linked[tier]}
        right = sum(source(a) == source(b) for a, b in pairs)
        print(f"  tier {tier:<9} {len(pairs):6d} links, precision {right / max(len(pairs), 1):.3f}")
    for kind in transformations():
        copies_of_kind = [(c, o) for c, (o, k) in truth.items() if k == kind]
        recalls = {
            tier: np.mean([(c, o) in linked[tier] for c, o in copies_of_kind])
            for tier in ("phash", "embedding")
        }
        phash, embedding = recalls["phash"], recalls["embedding"]
        print(f"  recall {kind:<10} phash {phash:.3f}  embedding {embedding:.3f}")
    reference = open_collection(work / "reference", options, create=True)
    ingest(reference, FolderSource([base]))
    print(f"\nmatch: {len(truth)} copies against {len(sources)} originals and distractors")
    right_by_kind: dict[str, list[bool]] = defaultdict(list)
    returned = correct_returned = 0
    tiers: dict[str, int] = defaultdict(int)
    for copy, (original, kind) in truth.items():
        matches = match_image(reference, (copies / copy).read_bytes())
        names = [Path(m.record.path).name for m in matches]
        right_by_kind[kind].append(original in names)
        returned += len(names)
        correct_returned += names.count(original)
        for m in matches:
            if Path(m.record.path).name == original:
                tiers[m.tier] += 1
    print(
        f"  precision {correct_returned / max(returned, 1):.3f} over {returned} matches; "
        f"correct matches by tier: {dict(tiers)}"
    )
    for kind, hits in right_by_kind.items():
        print(f"  recall {kind:<10} {np.mean(hits):.3f}")


def clustered(count: int, dim: int = 512, clusters: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(clusters, dim)))
    members = rng.integers(0, clusters, count)
    out = np.empty((count, dim), np.float32)
    for start in range(0, count, 100_000):
        part = members[start : start + 100_000]
        noise = rng.normal(scale=0.04, size=(len(part), dim)).astype(np.float32)
        out[start : start + len(part)] = l2_normalize(centres[part] + noise)
    return out


def part_two(count: int, threshold: float = 0.95) -> None:
    vectors = clustered(count)
    rng = np.random.default_rng(1)
    rows = rng.permutation(count)
    planted, copy_rows = rows[: count // 100], rows[count // 100 : count // 50]
    noise = rng.normal(scale=0.006, size=(len(planted), vectors.shape[1]))
    vectors[copy_rows] = l2_normalize(vectors[planted] + noise)
    print(f"\nembedding tier on {count:,} clustered 512-d vectors, {len(planted):,} planted copies")
    started = time.perf_counter()
    a, b, _ = embedding_links(vectors, threshold, 10)
    labels = components(count, a, b)
    seconds = time.perf_counter() - started
    recall = float(np.mean(labels[copy_rows] == labels[planted]))
    involved = np.zeros(count, bool)
    involved[planted] = involved[copy_rows] = True
    precision = float(np.mean(involved[a] & involved[b])) if len(a) else 1.0
    subset = vectors[:20_000]
    started = time.perf_counter()
    exact_neighbours(subset, subset, 11)
    baseline = time.perf_counter() - started
    extrapolated = baseline * (count / len(subset)) ** 2
    print(
        f"  pixseek duplicates (embedding tier): {seconds:.1f} s; planted pairs found "
        f"{recall:.4f}, links between planted pairs {precision:.4f}"
    )
    print(
        f"  all-pairs exact on 20k: {baseline:.1f} s -> {extrapolated:.0f} s extrapolated to "
        f"{count:,} ({extrapolated / seconds:.1f}x slower than pixseek)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=60)
    parser.add_argument("--distractors", type=int, default=140)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--skip-photos", action="store_true")
    args = parser.parse_args()
    if not args.skip_photos:
        if not (DATA / "train.txt").is_file():
            print(f"bench/dedup.py needs Caltech-101 at {DATA}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as work:
            part_one(Path(work), args.originals, args.distractors)
    if args.vectors > 0:
        part_two(args.vectors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
