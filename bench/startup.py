"""Wall time of a CLI search, against `python -c pass` measured in the same run.

    python bench/startup.py [--runs 7]

Builds the offline demo collection (synthetic shapes, the shipped model, ONNX
runtime) once, then times whole processes: the interpreter alone (baseline),
`import lance` (the store library, the floor of any command that opens a
collection), `pixseek --help`, `pixseek search` on the demo collection, and `pixseek
match` of one of its images beside the import of transformers' processors that such an
image query used to pay (its preprocessing is now read from the checkpoint's config).
Prints the median of each and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(command: list[str], runs: int) -> float:
    times = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from pixseek.demo.demo import DemoOptions, build_demo

    with tempfile.TemporaryDirectory() as work:
        demo = build_demo(DemoOptions(Path(work), images=200))
        collection = str(demo.collection.root)
        image = next(record.path for record in demo.collection.records())
        python = [sys.executable]
        cli = [*python, "-m", "pixseek.cli"]
        cases = [
            ("python -c pass (baseline)", [*python, "-c", "pass"]),
            ("import lance", [*python, "-c", "import lance"]),
            ("pixseek --help", [*cli, "--help"]),
            (
                "pixseek search (200 images)",
                [*cli, "search", "a red circle", "--collection", collection],
            ),
            (  # what an image query used to import to preprocess its image
                "import transformers' AutoProcessor",
                [*python, "-c", "from transformers import AutoProcessor"],
            ),
            (
                "pixseek match (an image)",
                [*cli, "match", image, "--collection", collection, "--quiet"],
            ),
        ]
        for _, command in cases[-3:]:
            wall(command, 1)  # warm the file cache, the ONNX export and match's views
        results = [(name, wall(command, args.runs)) for name, command in cases]
    baseline = results[0][1]
    print(f"{'command':32s} {'median s':>9s} {'vs baseline':>12s}")
    for name, seconds in results:
        print(f"{name:32s} {seconds:9.3f} {seconds / baseline:11.1f}x")


if __name__ == "__main__":
    main()
