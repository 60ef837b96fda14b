"""Images listed by URL, one per line in a text file (``#`` starts a comment)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.imaging.decode import DEFAULT_MAX_FILE_BYTES
from pixseek.ingest.tasks import ImageTask

SCHEMES = ("http://", "https://")
TIMEOUT_S = 30.0


def fetch(url: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES, timeout: float = TIMEOUT_S) -> bytes:
    """The body at ``url``, refusing bodies over ``max_bytes`` while they stream in."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageDecodeError(f"{url} is larger than the {max_bytes}-byte limit")
    return bytes(data)


@dataclass(frozen=True, slots=True)
class UrlListSource:
    listing: Path
    max_bytes: int = DEFAULT_MAX_FILE_BYTES

    def urls(self) -> list[str]:
        try:
            lines = self.listing.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read URL list {self.listing}: {exc}") from exc
        urls = [line.split("#", 1)[0].strip() for line in lines]
        bad = [url for url in urls if url and not url.startswith(SCHEMES)]
        if bad:
            raise InvalidInputError(f"{self.listing}: not an http(s) URL: {bad[0]!r}")
        return [url for url in urls if url]

    def tasks(self) -> Iterator[ImageTask]:
        for url in self.urls():
            yield ImageTask(uri=url, read=partial(fetch, url, self.max_bytes))

    def count(self) -> int:
        return len(self.urls())
