"""Metadata filters: a small structured form every store compiles for itself.

A :class:`Filter` is a conjunction of clauses. A clause is a :class:`Condition`
(a field is, or is not, one of some values; ``tags`` matches when any tag is
among the values) or an :class:`AnyOf`, which holds when at least one of its
filters does. ``label=dog and split=val or label=cat`` is therefore
``Filter((AnyOf((Filter((label=dog, split=val)), Filter((label=cat,)))),))``.

The text form (the CLI's ``--where``)::

    expression := conjunction ("or" conjunction)*
    conjunction := term ("and" term)*
    term := "(" expression ")" | FIELD ("=" | "==" | "!=") VALUES
          | FIELD ["not"] "in" "(" VALUES ")"
    VALUES := VALUE ("," VALUE)*

``and`` binds tighter than ``or``; a value is bare text or quoted ('...' or
"...", a doubled quote standing for one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

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
ACCEPTED = (
    "write FIELD=VALUE[,VALUE...], FIELD!=VALUE[,VALUE...], FIELD in (VALUE, ...) or "
    "FIELD not in (VALUE, ...), joined by 'and' and 'or' ('and' binds tighter) and grouped "
    "with parentheses; quote a value that holds a comma, a parenthesis, an operator or the "
    "word 'and' or 'or'"
)


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
class AnyOf:
    """A disjunction: holds when at least one of ``options`` holds."""

    options: tuple[Filter, ...]

    def __post_init__(self) -> None:
        if not self.options or not all(self.options):
            raise InvalidFilterError("every alternative of an 'or' needs a condition")


Clause = Condition | AnyOf


@dataclass(frozen=True, slots=True)
class Filter:
    conditions: tuple[Clause, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def and_(self, other: Filter | None) -> Filter:
        if not other:
            return self
        return Filter(self.conditions + other.conditions)

    def or_(self, other: Filter) -> Filter:
        """Records matching this filter or ``other`` (an empty filter matches everything)."""
        if not self or not other:
            return Filter()
        return Filter((AnyOf((self, other)),))

    @classmethod
    def where(cls, mapping: Mapping[str, str | Sequence[str]] | None) -> Filter:
        """``{"label": "dog", "split": ["val", "test"]}``: each key must match one value."""
        if not mapping:
            return cls()
        conditions: list[Clause] = []
        for field, value in mapping.items():
            values = (value,) if isinstance(value, str) else tuple(value)
            conditions.append(Condition(field, tuple(str(v) for v in values)))
        return cls(tuple(conditions))

    @classmethod
    def parse(cls, expression: str | None) -> Filter:
        """Parse ``label=dog,cat and split!=train or tags in (a, b)`` (the CLI's ``--where``)."""
        if not expression or not expression.strip():
            return cls()
        return _Parser(expression).parse()


_SPACE = re.compile(r"\s*")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"\w+|[^\w\s]+")
_AND = re.compile(r"and\b|&&?", re.IGNORECASE)
_OR = re.compile(r"or\b|\|\|?", re.IGNORECASE)
_OPERATOR = re.compile(r"==|!=|=|not\s+in\b|in\b", re.IGNORECASE)
_JOINER = re.compile(r"(?:and|or)(?=\s|\(|$)", re.IGNORECASE)
_JOINER_AHEAD = re.compile(r"\s+(?:and|or)(?=\s|\(|$)", re.IGNORECASE)
_NEXT_CONDITION = re.compile(
    r"\s([A-Za-z_][A-Za-z0-9_]*)\s*(?:==|!=|=|(?:not\s+)?in\s*\()", re.IGNORECASE
)
_OPERATOR_START = frozenset("=!<>")


class _Parser:
    """Recursive descent over the text, position by position (values may hold spaces)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Filter:
        result = self.expression()
        self.skip_space()
        if self.pos < len(self.text):
            if self.text[self.pos] == ")":
                self.fail("a ')' without its '('")
            self.fail(f"expected 'and', 'or' or the end at {self.rest()!r}")
        return result

    def fail(self, problem: str, grammar: bool = True) -> NoReturn:
        accepted = f"; {ACCEPTED}" if grammar else ""
        raise InvalidFilterError(f"cannot parse filter {self.text!r}: {problem}{accepted}")

    def rest(self) -> str:
        rest = self.text[self.pos :]
        return rest if len(rest) <= 30 else rest[:27] + "..."

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def at(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    def take(self, pattern: re.Pattern[str]) -> str | None:
        self.skip_space()
        match = pattern.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group(0)

    def expression(self) -> Filter:
        alternatives = [self.conjunction()]
        while self.take(_OR) is not None:
            alternatives.append(self.conjunction("or"))
        if len(alternatives) == 1:
            return alternatives[0]
        return Filter((AnyOf(tuple(alternatives)),))

    def conjunction(self, after: str = "") -> Filter:
        clauses = list(self.term(after).conditions)
        while self.take(_AND) is not None:
            clauses += self.term("and").conditions
        return Filter(tuple(clauses))

    def term(self, after: str) -> Filter:
        self.skip_space()
        if self.pos >= len(self.text):
            self.fail(f"nothing after '{after}'" if after else "no condition")
        if not self.at("("):
            return Filter((self.condition(),))
        self.pos += 1
        inner = self.expression()
        self.skip_space()
        if not self.at(")"):
            self.fail("a '(' without its ')'")
        self.pos += 1
        return inner

    def condition(self) -> Condition:
        field = self.take(_FIELD)
        if field is None:
            self.fail(f"expected a field name at {self.rest()!r}")
        if _JOINER.fullmatch(field):
            self.fail(f"'{field}' needs a condition before it")
        if field.lower() == "not":
            self.fail("'not' goes only before 'in': write FIELD!=VALUE or FIELD not in (...)")
        if field not in FILTER_FIELDS:
            self.fail(
                f"cannot filter on {field!r}; filterable fields: {', '.join(FILTER_FIELDS)}",
                grammar=False,
            )
        operator = self.take(_OPERATOR)
        if operator is None:
            found = self.take(_WORD) or "nothing"
            self.fail(f"unknown operator {found!r} after {field!r}")
        operator = " ".join(operator.lower().split())
        self.skip_space()
        if operator.endswith("in") or self.at("("):
            if not self.at("("):
                self.fail(f"write '{field} {operator} (VALUE, ...)' with parentheses")
            self.pos += 1
            values = self.values(field)
            self.skip_space()
            if not self.at(")"):
                self.fail(f"the list of {field!r} values has no closing ')'")
            self.pos += 1
        else:
            values = self.values(field)
        return Condition(field, tuple(values), negate=operator in {"!=", "not in"})

    def values(self, field: str) -> list[str]:
        values = [self.value(field)]
        self.skip_space()
        while self.at(","):
            self.pos += 1
            values.append(self.value(field))
            self.skip_space()
        return values

    def value(self, field: str) -> str:
        self.skip_space()
        text, start = self.text, self.pos
        if start >= len(text) or text[start] in ",)&|" or _JOINER.match(text, start):
            self.fail(f"a value of {field!r} is missing")
        first = text[start]
        if first in "'\"":
            return self.quoted(first)
        if first in _OPERATOR_START:
            self.fail(f"the value of {field!r} starts with {first!r}: quote it")
        depth = 0
        pos = start
        while pos < len(text):
            char = text[pos]
            if char in ",&|" or (char == ")" and depth == 0):
                break
            if char.isspace() and _JOINER_AHEAD.match(text, pos):
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            pos += 1
        value = text[start:pos].rstrip()
        self.pos = start + len(value)
        following = _NEXT_CONDITION.search(value)
        if following is not None and following.group(1) in FILTER_FIELDS:
            self.fail(f"{value!r} reads as two conditions: join them with 'and' or 'or'")
        return value

    def quoted(self, quote: str) -> str:
        text = self.text
        pos = self.pos + 1
        chars: list[str] = []
        while True:
            end = text.find(quote, pos)
            if end < 0:
                self.fail(f"a quoted value has no closing {quote}")
            chars.append(text[pos:end])
            if text.startswith(quote, end + 1):
                chars.append(quote)
                pos = end + 2
                continue
            self.pos = end + 1
            value = "".join(chars)
            if not value:
                self.fail("a quoted value is empty")
            return value
