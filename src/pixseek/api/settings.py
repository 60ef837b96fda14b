"""Server settings, from arguments or ``PIXSEEK_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXSEEK_")

    root: Path = Path("pixseek-collections")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    model: str = ""
    runtime: str = "auto"
    precision: str = "auto"
    device: str = "auto"
