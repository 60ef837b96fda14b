"""The HTTP API: FastAPI routes over the library, with pydantic request/response models."""

from pixseek.api.app import create_app
from pixseek.api.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
