"""The facts a condition can test, and what type each one has.

Shared by the semantic checks (which reject unknown facts and operators that can never hold)
and the compiler (which evaluates them). ``None`` as a type means "any JSON value".

Example:
    >>> DERIVED_FACTS["has_tools"]
    'bool'
    >>> fact_type("metadata.user.tier") is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

__all__ = ["DERIVED_FACTS", "FACT_ROOTS", "FactType", "fact_type"]

FactType = Literal["int", "bool", "str", "str_or_null", "list"]

DERIVED_FACTS: Mapping[str, FactType] = MappingProxyType(
    {
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
"""Facts computed from the request, by name, with their types."""

FACT_ROOTS = ("metadata", "params", "tags", *DERIVED_FACTS)
"""Every valid first segment of a fact path."""


def fact_type(path: str) -> FactType | None:
    """The type of the fact at ``path``, or ``None`` when any value is possible."""
    if path == "tags":
        return "list"
    return DERIVED_FACTS.get(path)
