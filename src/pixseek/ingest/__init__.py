"""Ingest: sources of images and the stages that embed and store them."""

from pixseek.ingest.options import IngestOptions, IngestReport, Progress
from pixseek.ingest.runners.local import ingest
from pixseek.ingest.sources import CocoSource, FolderSource, UrlListSource
from pixseek.ingest.tasks import ImageTask, ObjectSpec, Source

__all__ = [
    "CocoSource",
    "FolderSource",
    "ImageTask",
    "IngestOptions",
    "IngestReport",
    "ObjectSpec",
    "Progress",
    "Source",
    "UrlListSource",
    "ingest",
]
