"""Compile backend-neutral filters to the SQL dialect LanceDB (DataFusion) evaluates."""

from __future__ import annotations

from collections.abc import Sequence

from pixseek.core.filters import LIST_FIELDS, AnyOf, Clause, Condition, Filter


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def to_sql(flt: Filter | None) -> str | None:
    """Compile to the SQL dialect LanceDB (DataFusion) evaluates."""
    if not flt:
        return None
    return _conjunction(flt)


def _conjunction(flt: Filter) -> str:
    return " AND ".join(_clause(clause) for clause in flt.conditions)


def _clause(clause: Clause) -> str:
    if isinstance(clause, AnyOf):
        options = [_conjunction(option) for option in clause.options]
        return "(" + " OR ".join(f"({option})" for option in options) + ")"
    return _condition(clause)


def _condition(condition: Condition) -> str:
    values = ", ".join(sql_literal(value) for value in condition.values)
    if condition.field in LIST_FIELDS:
        clause = f"array_has_any({condition.field}, [{values}])"
        return f"NOT {clause}" if condition.negate else clause
    if condition.negate:
        return f"({condition.field} IS NULL OR {condition.field} NOT IN ({values}))"
    return f"{condition.field} IN ({values})"


def id_clause(ids: Sequence[str]) -> str:
    return f"id IN ({', '.join(sql_literal(i) for i in ids)})"
