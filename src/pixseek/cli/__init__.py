"""The ``pixseek`` command: a thin face over the library; the only code that prints."""

from pixseek.cli.main import main

__all__ = ["main"]
