"""The facts a condition can test: their names and types, defined once.

The semantic checks read this catalogue to reject unknown facts and tests that can never
hold; :mod:`policyroute.policy.facts` reads it to resolve facts on a request, and a test keeps
its getters equal to it. It is plain data, so validating a policy imports nothing heavy.
``None`` as a type means "any JSON value" (``metadata.*`` and ``params.*``).

Example:
    >>> DERIVED_FACTS["has_tools"], fact_type("tags"), fact_type("metadata.user.tier")
    ('bool', 'list', None)
    >>> is_known_fact("metadata.user.tier"), is_known_fact("input_tokens"), is_known_fact("x")
    (True, True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

__all__ = ["DERIVED_FACTS", "FACT_PREFIXES", "FACT_ROOTS", "FactType", "fact_type", "is_known_fact"]

FactType = Literal["int", "bool", "str", "str_or_null", "list"]

FACT_PREFIXES: Final[tuple[str, ...]] = ("metadata", "params")
"""Fact paths ``<prefix>.<dotted.path>`` read from the request's mappings (any JSON value)."""

DERIVED_FACTS: Final[Mapping[str, FactType]] = MappingProxyType(
    {
        "tags": "list",
        "input_tokens": "int",
        "message_count": "int",
        "has_tools": "bool",
        "has_images": "bool",
        "stream": "bool",
        "model": "str_or_null",
        "last_user_message": "str",
        "run_id": "str",
    }
)
"""Facts computed from the request itself, by name, with their types (``tags`` first, as the
documentation lists it)."""

FACT_ROOTS: Final[tuple[str, ...]] = (*FACT_PREFIXES, *DERIVED_FACTS)
"""Every valid first segment of a fact path."""


def fact_type(path: str) -> FactType | None:
    """The type of the fact at ``path``, or ``None`` when any value is possible."""
    return DERIVED_FACTS.get(path)


def is_known_fact(path: str) -> bool:
    """Whether ``path`` names a fact: ``metadata.<path>``, ``params.<path>`` or a derived one.

    Example:
        >>> is_known_fact("metadata"), is_known_fact("metadata..a"), is_known_fact("tags.x")
        (False, False, False)
    """
    head, sep, rest = path.partition(".")
    if head in FACT_PREFIXES:
        return bool(sep and rest and all(rest.split(".")))
    return not sep and path in DERIVED_FACTS
