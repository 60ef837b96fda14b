"""Evaluate a :class:`Filter` over record columns held in memory, as a boolean row mask.

The same semantics as the SQL the table evaluates (:mod:`pixseek.stores.lance.sql`): a
negated condition holds for absent values, ``tags`` matches when any tag is among the
values (a row without tags has none), ``or`` and parentheses as written. Computing it
with Arrow kernels over the in-memory columns turns a filter into an allow-list that the
graph search applies while it walks, with no round trip to the table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from pixseek.core.filters import LIST_FIELDS, AnyOf, Clause, Condition, Filter

Mask = NDArray[np.bool_]


def filter_mask(table: pa.Table, flt: Filter) -> Mask:
    return _conjunction(table, flt)


def _conjunction(table: pa.Table, flt: Filter) -> Mask:
    mask = np.ones(table.num_rows, np.bool_)
    for clause in flt.conditions:
        mask &= _clause(table, clause)
    return mask


def _clause(table: pa.Table, clause: Clause) -> Mask:
    if isinstance(clause, AnyOf):
        mask = np.zeros(table.num_rows, np.bool_)
        for option in clause.options:
            mask |= _conjunction(table, option)
        return mask
    return _condition(table, clause)


def _condition(table: pa.Table, condition: Condition) -> Mask:
    column = table.column(condition.field).combine_chunks()
    values = pa.array(condition.values, pa.string())
    if condition.field in LIST_FIELDS:
        flat = pc.list_flatten(column)
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        hit = pc.is_in(flat, value_set=values).fill_null(False).to_numpy(zero_copy_only=False)
        held = np.zeros(table.num_rows, np.bool_)
        held[parents[hit]] = True
    else:
        found = pc.is_in(column, value_set=values).fill_null(False)
        held = found.to_numpy(zero_copy_only=False).astype(np.bool_)
    return ~held if condition.negate else held
