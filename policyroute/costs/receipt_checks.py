"""Which receipt records a report can add up: :func:`receipt_problem` names what makes one
unusable (the field, and why), and :func:`parse_amount` reads the decimal amounts receipts
spell as strings.

Receipts of other kinds are left alone (the report does not add them up); a receipt written by
a newer policyroute is named, not guessed at.

Example:
    >>> receipt_problem({"kind": "call", "cost": "0.5", "input_tokens": "12"})
    "'input_tokens' must be a whole number, got string '12'"
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["NEWEST_SCHEMA_VERSION", "json_type", "parse_amount", "receipt_problem"]

NEWEST_SCHEMA_VERSION = 1
"""The newest receipt layout a report understands (``receipts.SCHEMA_VERSION``, kept
here so that reading receipts does not import the writers); a newer receipt's fields may mean
something else, so it is skipped and named rather than added up."""


def json_type(value: Any) -> str:
    """What JSON calls the type of ``value`` (a value a JSON reader made)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
# No single receipt costs a trillion dollars; an exponent past this is corruption, and summing
# it would overflow the decimal context.
_MAX_COST_DIGITS = 12
# The rounded cost every receipt has, and the exact one receipts carry since it was added.
_COST_FIELDS = ("cost", "cost_exact")
# Nor counts a quadrillion tokens (the writers estimate any count past 10^10 instead): a count
# past this is corruption too, and a few thousand digits of it added up could not be printed
# (Python refuses to turn an integer of more than 4,300 digits into text).
_MAX_TOKENS = 10**15


def receipt_problem(record: Mapping[str, Any]) -> str | None:
    """What makes ``record`` unusable in a report (naming the field), or ``None``.

    Receipts of kinds other than ``call`` and ``attempt`` are left alone: the report does not
    add them up.

    Example:
        >>> print(receipt_problem({"kind": "call", "cost": "abc"}))
        'cost' must be a decimal amount such as "0.000150", got 'abc'
        >>> receipt_problem({"kind": "call", "cost": "0.5", "input_tokens": 12}) is None
        True
    """
    if _well_formed(record):
        return None
    return _problem(record)


def _well_formed(record: Mapping[str, Any]) -> bool:
    """Whether ``record`` is a call or attempt receipt as policyroute writes it, every field
    the report reads of the plain type it should be; ``False`` also for anything unusual,
    which :func:`_problem` then judges. Every receipt of a report passes here, so the checks
    are the cheapest that hold exactly when :func:`_problem` finds nothing: exact types (a
    JSON reader makes no subclasses), one lookup a field."""
    get = record.get
    kind = get("kind")
    if type(kind) is not str or (kind != "call" and kind != "attempt"):
        return False
    version = get("schema_version")
    if version is not None and not (type(version) is int and 1 <= version <= NEWEST_SCHEMA_VERSION):
        return False
    if get("currency", "USD") != "USD":
        return False
    for field in _COST_FIELDS:
        cost = get(field)
        if cost is not None:
            if type(cost) is not str:
                return False
            amount = parse_amount(cost)
            if amount is None or amount < 0 or amount.adjusted() >= _MAX_COST_DIGITS:
                return False
    for name in _TOKEN_FIELDS:
        value = get(name)
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_TOKENS):
            return False
    ts, status, budgets = get("ts"), get("status"), get("budgets")
    if (ts is not None and type(ts) is not str) or (status is not None and type(status) is not str):
        return False
    if budgets is None:
        return True
    if type(budgets) is not list:
        return False
    return all(type(budget) is dict for budget in budgets)


def _problem(record: Mapping[str, Any]) -> str | None:
    kind = record.get("kind")
    if kind is None:
        return 'no \'kind\': not a receipt (a receipt\'s kind is "call" or "attempt")'
    if not isinstance(kind, str):
        return f'\'kind\' must be "call" or "attempt", got {json_type(kind)} {kind!r}'
    if kind not in ("call", "attempt"):
        return None
    version = record.get("schema_version")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            return f"'schema_version' must be a whole number from 1, got {version!r}"
        if version > NEWEST_SCHEMA_VERSION:
            return (
                f"written by a newer policyroute (schema_version {version}; this one reads up"
                f" to {NEWEST_SCHEMA_VERSION}): report it with that version"
            )
    currency = record.get("currency", "USD")
    if currency != "USD":
        return f"costs in {currency!r}: receipts are in USD and are not converted"
    for field in _COST_FIELDS:
        cost = record.get(field)
        if cost is not None:
            amount = parse_amount(cost)
            if amount is None:
                return f"'{field}' must be a decimal amount such as \"0.000150\", got {cost!r}"
            if amount < 0 or amount.adjusted() >= _MAX_COST_DIGITS:
                return f"'{field}' {cost!r} is out of range"
    for name in _TOKEN_FIELDS:
        value = record.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"'{name}' must be a whole number, got {json_type(value)} {value!r}"
        if isinstance(value, int) and value < 0:
            return f"'{name}' must not be negative, got {value}"
        if isinstance(value, int) and value > _MAX_TOKENS:
            # its digits are not shown: there may be thousands of them
            return f"'{name}' is out of range (more than 10^15 tokens)"
    for name in ("ts", "status"):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return f"'{name}' must be a string, got {json_type(value)}"
    budgets = record.get("budgets")
    if budgets is not None and not (
        isinstance(budgets, list) and all(isinstance(b, Mapping) for b in budgets)
    ):
        return "'budgets' must be a list of objects"
    return None


def parse_amount(value: Any) -> Decimal | None:
    """A finite decimal from a string or JSON number; ``None`` for anything else.

    Example:
        >>> parse_amount("0.000150"), parse_amount("NaN"), parse_amount(True)
        (Decimal('0.000150'), None, None)
    """
    if type(value) is str:  # how receipts spell amounts, checked first
        text = value
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    else:
        text = str(value)
    if isinstance(value, str) and "_" in value:  # Decimal() reads digit separators
        return None
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
