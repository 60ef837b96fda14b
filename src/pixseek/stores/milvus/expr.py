"""Compile backend-neutral filters to Milvus boolean expressions.

Milvus has no NULL in scalar fields (before 2.5), so absent values are stored as empty
strings; a negated condition then holds for them, as it does in the other backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pixseek.core.filters import LIST_FIELDS, AnyOf, Clause, Condition, Filter


def literal_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def to_expr(flt: Filter | None) -> str:
    if not flt:
        return ""
    return _conjunction(flt)


def _conjunction(flt: Filter) -> str:
    return " and ".join(f"({_clause(clause)})" for clause in flt.conditions)


def _clause(clause: Clause) -> str:
    if isinstance(clause, AnyOf):
        return " or ".join(f"({_conjunction(option)})" for option in clause.options)
    return _condition(clause)


def _condition(condition: Condition) -> str:
    values = literal_list(condition.values)
    if condition.field in LIST_FIELDS:
        clause = f"array_contains_any({condition.field}, {values})"
        return f"not {clause}" if condition.negate else clause
    operator = "not in" if condition.negate else "in"
    return f"{condition.field} {operator} {values}"
