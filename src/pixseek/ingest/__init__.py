"""Ingest: sources of images and the stages that embed and store them."""

from pixseek.ingest.pipeline import IngestOptions, IngestReport, Progress, ingest
from pixseek.ingest.sources import CocoSource, FolderSource, ImageTask, ObjectSpec, Source

__all__ = [
    "CocoSource",
    "FolderSource",
    "ImageTask",
    "IngestOptions",
    "IngestReport",
    "ObjectSpec",
    "Progress",
    "Source",
    "ingest",
]
