"""Optional dependencies: a feature whose package is missing says which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from pixseek.core.errors import MissingDependencyError


def require_module(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pixseek[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed: pip install 'pixseek[{extra}]'"
        ) from exc
