"""pixseek: multi-modal image search over image collections."""

from pixseek.collection import Collection, open_collection
from pixseek.models import EmbedderOptions, load_embedder
from pixseek.records import Hit, Record

__all__ = ["Collection", "EmbedderOptions", "Hit", "Record", "load_embedder", "open_collection"]
__version__ = "0.1.0"
