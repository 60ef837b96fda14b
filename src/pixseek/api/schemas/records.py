"""Records and hits as the API returns them, derived from :class:`Record`'s fields."""

from __future__ import annotations

from typing import Any, get_type_hints

from pydantic import BaseModel, create_model

from pixseek.core.records import PUBLIC_FIELDS, Hit, Record, record_dict

_HINTS = get_type_hints(Record)
_API_TYPES: dict[str, Any] = {"box": list[float] | None, "metadata": dict[str, Any]}

RecordOut: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "RecordOut", **{name: (_API_TYPES.get(name, _HINTS[name]), ...) for name in PUBLIC_FIELDS}
)
HitOut: type[BaseModel] = create_model("HitOut", __base__=RecordOut, score=(float, ...))


class Hits(BaseModel):
    hits: list[HitOut]  # type: ignore[valid-type]
    remembered: int = 0  # judgements stored by a search with ``remember``


class RecordPage(BaseModel):
    records: list[RecordOut]  # type: ignore[valid-type]
    offset: int
    total: int


def hit_out(hit: Hit) -> dict[str, Any]:
    return hit.to_dict()


def record_out(record: Record) -> dict[str, Any]:
    return record_dict(record)
