"""Bodies of the job routes: training, reindexing, comparing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body


class JobIn(Body):
    """``train``: fine-tune the collection's model on its judgements (``from_feedback``,
    the default unless ``labels`` is given), its labels, or both; with ``mode`` ``copy``,
    its image tower on edited copies of the collection's images (no labels or
    judgements), on ``device`` (``auto``: a GPU when the server has one). ``reindex``:
    build an index with ``model`` (a hub id, a folder under the models root, or
    ``job:ID`` of a train job). ``compare``: the active index against ``index`` (default
    the newest) on held-out judgements, or on the held-out images' ``labels``, switching
    when it wins and ``activate_if_better``. ``views``: embed the views of every image
    that duplicates and match compare (turned, cut to its corners), and keep them."""

    kind: Literal["train", "reindex", "compare", "views"]
    from_feedback: bool = True
    labels: bool = False
    mode: Literal["full", "lit", "projection", "copy"] = "full"
    epochs: int = Field(default=10, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=2, le=4096)
    lr: float = Field(default=5e-4, gt=0, le=1)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$")
    model: str = Field(default="", max_length=512)
    activate: bool = False
    index: str = Field(default="", max_length=128)
    activate_if_better: bool = False


class JobOut(BaseModel):
    id: str
    kind: str
    collection: str
    state: str
    progress: float
    message: str
    result: dict[str, Any] | None
    error: str
    params: dict[str, Any]
