"""Collections: a record catalog plus named indexes (embedder + vector store) in a directory."""

from pixseek.collection.collection import Collection, CollectionInfo, exists, open_collection
from pixseek.collection.index import Index

__all__ = ["Collection", "CollectionInfo", "Index", "exists", "open_collection"]
