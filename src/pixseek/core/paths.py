"""File paths as stored text, losslessly.

Stores keep a record's path as UTF-8 text, but a POSIX file name is bytes and need not be
UTF-8 (Python shows the undecodable bytes as surrogates). Such a path is stored as
``bytes:`` followed by its bytes percent-encoded; every other path is stored as it is. No
absolute path or URL starts with ``bytes:``, so the two never collide, and
:func:`local_path` turns either back into the file's own path.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

BYTES_PREFIX = "bytes:"


def stored_path(path: str) -> str:
    """The text a store keeps for ``path`` (``path`` itself when it is valid UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return BYTES_PREFIX + quote_from_bytes(os.fsencode(path), safe="/")
    return path


def local_path(stored: str) -> Path:
    """The file a stored path names."""
    if stored.startswith(BYTES_PREFIX):
        return Path(os.fsdecode(unquote_to_bytes(stored[len(BYTES_PREFIX) :])))
    return Path(stored)
