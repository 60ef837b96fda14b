"""Compile backend-neutral filters to Milvus boolean expressions.

Milvus has no NULL in scalar fields (before 2.5), so absent values are stored as empty
strings; a negated condition then holds for them, as it does in the other backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pixseek.core.filters import LIST_FIELDS, Filter


def literal_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def to_expr(flt: Filter | None) -> str:
    if not flt:
        return ""
    clauses = []
    for condition in flt.conditions:
        values = literal_list(condition.values)
        if condition.field in LIST_FIELDS:
            clause = f"array_contains_any({condition.field}, {values})"
            clauses.append(f"not {clause}" if condition.negate else clause)
        else:
            operator = "not in" if condition.negate else "in"
            clauses.append(f"{condition.field} {operator} {values}")
    return " and ".join(f"({clause})" for clause in clauses)
