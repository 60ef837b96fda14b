"""Compile backend-neutral filters to the SQL dialect LanceDB (DataFusion) evaluates."""

from __future__ import annotations

from collections.abc import Sequence

from pixseek.core.filters import LIST_FIELDS, Filter


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def to_sql(flt: Filter | None) -> str | None:
    """Compile to the SQL dialect LanceDB (DataFusion) evaluates."""
    if not flt:
        return None
    clauses = []
    for condition in flt.conditions:
        values = ", ".join(sql_literal(value) for value in condition.values)
        if condition.field in LIST_FIELDS:
            clause = f"array_has_any({condition.field}, [{values}])"
            clauses.append(f"NOT {clause}" if condition.negate else clause)
        elif condition.negate:
            clauses.append(f"({condition.field} IS NULL OR {condition.field} NOT IN ({values}))")
        else:
            clauses.append(f"{condition.field} IN ({values})")
    return " AND ".join(clauses)


def id_clause(ids: Sequence[str]) -> str:
    return f"id IN ({', '.join(sql_literal(i) for i in ids)})"
