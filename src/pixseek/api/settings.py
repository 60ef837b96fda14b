"""Server settings, from arguments or ``PIXSEEK_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pixseek.collection.media import DEFAULT_THUMBNAIL_CACHE_BYTES


class ServeSettings(BaseSettings):
    """``models_root``: the only directory whose model folders clients may name for new
    collections (otherwise hub ids only), so a client cannot probe server paths.
    ``max_concurrent_uploads``: how many client images decode at once (uploads, image
    queries, match, classify). ``thumbnail_cache_bytes``: each collection's thumbnail
    cache, least recently used first out."""

    model_config = SettingsConfigDict(env_prefix="PIXSEEK_")

    root: Path = Path("pixseek-collections")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    max_concurrent_uploads: int = Field(default=2, ge=1)
    thumbnail_cache_bytes: int = Field(default=DEFAULT_THUMBNAIL_CACHE_BYTES, ge=0)
    models_root: Path | None = None
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    model: str = ""
    runtime: str = "auto"
    precision: str = "auto"
    device: str = "auto"
    batch_size: int = 32
