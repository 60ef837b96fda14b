"""HTTP API under load: 50 concurrent clients for 60 s on loopback.

    python bench/serve.py [--clients 50] [--seconds 60] [--data ../shared/data/coco-mini]

Indexes the COCO-mini photos (with their boxes) into a collection with a tiny
model, starts the real server, then runs each phase in turn: ``GET /health``
(the baseline: framework and network cost only), text search, search by image
id, and thumbnails. Prints requests/s, p50/p99 latency, errors, and each
phase's throughput as a ratio of the baseline measured in this same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pixseek.collection.collection import open_collection  # noqa: E402
from pixseek.core.filters import Filter  # noqa: E402
from pixseek.demo.factory import build_clip  # noqa: E402
from pixseek.ingest import CocoSource, ingest  # noqa: E402
from pixseek.models import EmbedderOptions  # noqa: E402
from tests.serving import running_server  # noqa: E402

TEXTS = [
    "a dog",
    "taxis",
    "a person riding a bike",
    "pizza on a table",
    "a red bus",
    "cars waiting for pedestrians to cross the street",
    "a cat on a sofa",
]


async def client_loop(client: httpx.AsyncClient, request, until: float, latencies, errors) -> None:  # type: ignore[no-untyped-def]
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await request(client)
            if response.status_code >= 400:
                errors.append(response.status_code)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
        latencies.append(time.perf_counter() - started)


async def phase(url: str, request, clients: int, seconds: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    errors: list[object] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        until = time.monotonic() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(client_loop(client, request, until, latencies, errors) for _ in range(clients))
        )
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "coco-mini")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    annotations = args.data / "annotations" / "instances_val2017.json"
    if not annotations.is_file():
        print(f"bench/serve.py needs COCO-mini at {args.data}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="pixseek-serve-"))
    model = build_clip(work / "tiny-clip")
    collection = open_collection(
        work / "root" / "coco", EmbedderOptions(model=str(model), runtime="onnx"), create=True
    )
    ingest(collection, CocoSource(annotations, args.data / "val2017"))
    ids = [r.id for r in collection.page(Filter.where({"kind": "image"}), 0, 10_000)]
    base = "/collections/coco"
    phases = {
        "health (baseline)": lambda c: c.get("/health"),
        "text search": lambda c: c.post(
            base + "/search", json={"text": random.choice(TEXTS), "k": 20}
        ),
        "image-id search": lambda c: c.post(
            base + "/search", json={"image_id": random.choice(ids), "k": 20}
        ),
        "thumbnail": lambda c: c.get(f"{base}/images/{random.choice(ids)}/thumbnail?size=128"),
    }
    print(f"{args.clients} clients x {args.seconds:g} s per phase; {len(ids)} images, tiny model")
    print(f"{'phase':<20} {'req/s':>8} {'vs base':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    with running_server(work / "root") as url:
        # load the model before timing: a phase must not include one-time warm-up
        httpx.post(url + base + "/search", json={"text": TEXTS[0]}, timeout=300).raise_for_status()
        baseline = None
        for name, request in phases.items():
            result = asyncio.run(phase(url, request, args.clients, args.seconds))
            baseline = baseline or result["rps"]
            print(
                f"{name:<20} {result['rps']:8.1f} {result['rps'] / baseline:7.2f}x "
                f"{result['p50']:8.1f} {result['p99']:8.1f} {result['errors']:7d}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
