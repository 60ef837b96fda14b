"""The base of every request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A request body. A field it does not define is refused (422): a misspelt or
    unsupported option that is accepted and ignored would answer another question than
    the one asked. NaN and infinity are refused too."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")
