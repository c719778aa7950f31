"""Whether a JSON schema can go to OpenAI's structured outputs in strict mode unchanged in
meaning.

``with_structured_output(PydanticClass, method="json_schema")`` asks for strict mode when
``strict`` is not given, as langchain-openai's ``ChatOpenAI`` does (OpenAI's SDK sends a
pydantic class's schema strict). Strict mode takes only part of JSON Schema: every object is
closed and every property required, so a ``dict[str, int]`` field (an object with
``additionalProperties``) could only be answered as ``{}``, and keywords outside the subset
(``oneOf``, ``allOf``, ``minLength``, a schema with no ``type``, as a recursive model's
cycle leaves) make OpenAI refuse the request. ChatOpenAI sends such schemas strict all the
same, and OpenAI answers 400; here they go without strict mode, as before.

The subset is OpenAI's documented one, read narrowly: a keyword not known to be supported
leaves the schema non-strict, which is never worse than before.

Example:
    >>> strict_expressible({"type": "object", "properties": {"a": {"type": "integer"}}})
    True
    >>> strict_expressible({"type": "object", "properties": {
    ...     "tally": {"type": "object", "additionalProperties": {"type": "integer"}}}})
    False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["strict_expressible"]

_KEYWORDS = frozenset(
    {
        "$defs",
        "$ref",
        "additionalProperties",
        "anyOf",
        "const",
        "default",
        "definitions",
        "description",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "items",
        "maxItems",
        "maximum",
        "minItems",
        "minimum",
        "multipleOf",
        "pattern",
        "properties",
        "required",
        "title",
        "type",
    }
)
"""The keywords strict mode takes (OpenAI's "supported properties", and annotations)."""

_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
"""The string formats strict mode takes."""

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

_MAX_DEPTH = 10
"""OpenAI's limit on nested objects in a strict schema."""

_MAX_PROPERTIES = 5000
"""OpenAI's limit on properties in a strict schema, all objects together."""

_MAX_ENUM_VALUES = 1000
"""OpenAI's limit on enum values in a strict schema, all enums together."""


class _Count:
    __slots__ = ("enum_values", "properties")

    def __init__(self) -> None:
        self.properties = 0
        self.enum_values = 0


def strict_expressible(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` (a structured output's non-strict JSON schema) says the same in
    strict mode, within OpenAI's limits: its root is an object, every node has a ``type``
    (or is an ``anyOf`` or a ``$ref``), no object is open (``additionalProperties`` other
    than ``false``), and it uses no keyword outside strict mode's subset.
    """
    if schema.get("type") != "object":
        return False
    count = _Count()
    if not _node(schema, 1, count):
        return False
    return count.properties <= _MAX_PROPERTIES and count.enum_values <= _MAX_ENUM_VALUES


def _node(node: Any, depth: int, count: _Count) -> bool:
    if not isinstance(node, Mapping) or not _KEYWORDS.issuperset(node):
        return False
    kind = node.get("type")
    kinds = [kind] if isinstance(kind, str) else kind
    if kinds is None:
        if "anyOf" not in node and "$ref" not in node:
            return False
    elif not isinstance(kinds, list) or not kinds or not _TYPES.issuperset(kinds):
        return False
    if node.get("additionalProperties", False) is not False:
        return False
    if "format" in node and node["format"] not in _FORMATS:
        return False
    enum = node.get("enum")
    if enum is not None:
        if not isinstance(enum, list):
            return False
        count.enum_values += len(enum)
    properties = node.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping) or depth > _MAX_DEPTH:
            return False
        count.properties += len(properties)
        if not all(_node(p, depth + 1, count) for p in properties.values()):
            return False
    if "items" in node and not _node(node["items"], depth, count):
        return False
    options = node.get("anyOf")
    if options is not None and not (
        isinstance(options, list) and options and all(_node(o, depth, count) for o in options)
    ):
        return False
    for key in ("$defs", "definitions"):
        defs = node.get(key)
        if defs is not None and not (
            isinstance(defs, Mapping) and all(_node(d, depth, count) for d in defs.values())
        ):
            return False
    return True
