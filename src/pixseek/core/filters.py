"""Metadata filters: a small structured form every store compiles for itself.

A filter is a conjunction of conditions; each condition says a field is (or is
not) one of some values. ``tags`` matches when any tag is among the values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pixseek.core.errors import InvalidFilterError

FILTER_FIELDS = (
    "kind",
    "label",
    "split",
    "source",
    "image_id",
    "tags",
    "path",
    "id",
    "content_hash",
    "outcome",
)
LIST_FIELDS = frozenset({"tags"})
_CONDITION = re.compile(r"^\s*([A-Za-z_]+)\s*(==|!=|=)\s*(.*?)\s*$")
_AND = re.compile(r"\s+and\s+|\s*&&?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    values: tuple[str, ...]
    negate: bool = False

    def __post_init__(self) -> None:
        if self.field not in FILTER_FIELDS:
            raise InvalidFilterError(
                f"cannot filter on {self.field!r}; filterable fields: {', '.join(FILTER_FIELDS)}"
            )
        if not self.values:
            raise InvalidFilterError(f"filter on {self.field!r} has no value")


@dataclass(frozen=True, slots=True)
class Filter:
    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def and_(self, other: Filter | None) -> Filter:
        if not other:
            return self
        return Filter(self.conditions + other.conditions)

    @classmethod
    def where(cls, mapping: Mapping[str, str | Sequence[str]] | None) -> Filter:
        """``{"label": "dog", "split": ["val", "test"]}``: each key must match one value."""
        if not mapping:
            return cls()
        conditions = []
        for field, value in mapping.items():
            values = (value,) if isinstance(value, str) else tuple(value)
            conditions.append(Condition(field, tuple(str(v) for v in values)))
        return cls(tuple(conditions))

    @classmethod
    def parse(cls, expression: str | None) -> Filter:
        """Parse ``label=dog,cat and split!=train`` (the CLI's ``--where``)."""
        if not expression or not expression.strip():
            return cls()
        conditions = []
        for part in _AND.split(expression.strip()):
            match = _CONDITION.match(part)
            if match is None:
                raise InvalidFilterError(
                    f"cannot parse filter {part!r}; write FIELD=VALUE[,VALUE...] "
                    "or FIELD!=VALUE, joined by 'and'"
                )
            field, operator, raw = match.groups()
            if raw[:1] in {"=", "!", "<", ">"}:
                raise InvalidFilterError(
                    f"cannot parse filter {part!r}: write FIELD=VALUE or FIELD!=VALUE "
                    "(quote a value that starts with an operator)"
                )
            values = tuple(_unquote(value) for value in raw.split(",") if value.strip())
            conditions.append(Condition(field, values, negate=operator == "!="))
        return cls(tuple(conditions))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
