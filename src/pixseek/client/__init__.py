"""A typed Python client for pixseek's HTTP API (install ``pixseek[client]`` for httpx).

The calls mirror the library's: ``client.search("pets", "a cat", SearchOptions(k=5))``
answers what ``search(open_collection(...), "a cat", SearchOptions(k=5))`` answers, as
the same :class:`~pixseek.core.records.Hit` values.
"""

from pixseek.client.http import (
    ClientError,
    CollectionSummary,
    Job,
    PixseekClient,
    StoredJudgement,
)

__all__ = ["ClientError", "CollectionSummary", "Job", "PixseekClient", "StoredJudgement"]
