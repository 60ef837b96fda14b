"""pixseek: multi-modal image search over image collections.

Names are imported on first use, so ``import pixseek`` (and the CLI's start-up)
does not pay for the model and store libraries until they are needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
_EXPORTS = {
    "Collection": "pixseek.collection.collection",
    "open_collection": "pixseek.collection.collection",
    "EmbedderOptions": "pixseek.models.options",
    "load_embedder": "pixseek.models.registry",
    "Hit": "pixseek.core.records",
    "Record": "pixseek.core.records",
    "SearchOptions": "pixseek.core.query",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pixseek' has no attribute {name!r}")
    return getattr(import_module(module), name)
