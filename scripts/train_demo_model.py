"""Rebuild the small model shipped for ``pixseek demo`` (src/pixseek/demo/model).

    python scripts/train_demo_model.py

Generates 2,400 synthetic captioned shapes, builds a tiny CLIP from scratch and
trains it with the same code as ``pixseek train`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from pixseek.cli.render import TrainBar
from pixseek.demo.demo import SHIPPED_MODEL, train_demo_model


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        trained = train_demo_model(Path(work) / "model", Path(work), TrainBar())
        shutil.rmtree(SHIPPED_MODEL, ignore_errors=True)
        shutil.copytree(trained, SHIPPED_MODEL, ignore=shutil.ignore_patterns(".pixseek-onnx"))
    size = sum(p.stat().st_size for p in SHIPPED_MODEL.iterdir())
    print(f"wrote {SHIPPED_MODEL} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
