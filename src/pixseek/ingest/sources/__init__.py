"""Where images come from: folders, COCO files, URL lists (uploads: see ingest.uploads)."""

from pixseek.ingest.sources.coco import CocoSource
from pixseek.ingest.sources.folder import FolderSource
from pixseek.ingest.sources.urls import UrlListSource

__all__ = ["CocoSource", "FolderSource", "UrlListSource"]
