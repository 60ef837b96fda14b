"""Options, report and progress of an ingest run, shared by every runner."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from pixseek.collection.failures import Failure
from pixseek.imaging.decode import DEFAULT_MAX_PIXELS, DecodeOptions, decode_options_for
from pixseek.models.base import Embedder

REPORTED_FAILURES = 100


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """``fast_decode``: JPEG draft decoding (see :func:`decode_options_for`);
    ``sync``: drop indexed images under the source's folders whose files are gone;
    ``index``: the collection's index to fill (empty: its default)."""

    batch_size: int = 64
    workers: int = 2
    fast_decode: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    sync: bool = False
    index: str = ""

    def decode_options(self, embedders: Iterable[Embedder]) -> DecodeOptions:
        """Decode options that serve every target model: a JPEG is drafted only as far as
        the largest model input allows, and not at all when one model takes any size."""
        sizes = [embedder.capabilities.input_size for embedder in embedders]
        size = None if not sizes or None in sizes else max(s for s in sizes if s is not None)
        fast = decode_options_for(size, self.fast_decode)
        return replace(fast, max_pixels=self.max_pixels)


DEFAULT_INGEST = IngestOptions()


@dataclass(slots=True)
class IngestReport:
    seen: int = 0
    indexed: int = 0
    skipped: int = 0
    failed: int = 0
    objects: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)

    def add_failures(self, failures: Iterable[Failure]) -> None:
        for failure in failures:
            self.failed += 1
            if len(self.failures) < REPORTED_FAILURES:
                self.failures.append(failure)

    @property
    def all_failed(self) -> bool:
        """Nothing could be indexed and something failed: the run did not do its job."""
        return self.failed > 0 and self.indexed == 0 and self.skipped == 0


class Progress(Protocol):
    """Receives counts as work completes; the CLI draws a bar, libraries may ignore it."""

    def start(self, total: int | None) -> None: ...

    def advance(self, report: IngestReport) -> None: ...

    def finish(self, report: IngestReport) -> None: ...


class NoProgress:
    def start(self, total: int | None) -> None:
        pass

    def advance(self, report: IngestReport) -> None:
        pass

    def finish(self, report: IngestReport) -> None:
        pass
