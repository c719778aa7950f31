"""Tool parameter schemas litellm's token counter cannot read, named by their field.

litellm's counter walks each tool's ``parameters`` to count its tokens and fails on a node it
cannot read with a message that names neither the field nor the problem (``'str' object has
no attribute 'get'``, ``'items'``). :func:`unreadable_tool_schema` finds that node, so that the
request error names it.

Example:
    >>> unreadable_tool_schema([{"function": {"name": "f", "parameters": {"type": "object"}}}])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policyroute.message_checks import shown

__all__ = ["unreadable_tool_schema"]


def unreadable_tool_schema(tools: Any) -> tuple[str, str] | None:
    """The first node of the tools' parameter schemas that litellm's token counter reads and
    cannot (a property that is no schema, an array without ``items``, an ``enum`` that is no
    list, a ``required`` that is no list), as its field path and what is wrong; ``None`` when
    there is none. The walk is the counter's: what it does not read is not checked.

    Example:
        >>> tool = {"function": {"name": "f", "parameters": {"properties": {"a": "x"}}}}
        >>> unreadable_tool_schema([tool])
        ('tools[0].function.parameters.properties.a', "must be a JSON schema mapping, got 'x'")
    """
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        return None
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        parameters = function.get("parameters") if isinstance(function, Mapping) else None
        if isinstance(parameters, Mapping) and isinstance(parameters.get("properties"), Mapping):
            found = _unreadable_object(f"tools[{i}].function.parameters", parameters)
            if found:
                return found
    return None


def _unreadable_object(where: str, node: Mapping[str, Any]) -> tuple[str, str] | None:
    properties = node.get("properties")
    if not properties:
        return None
    if not isinstance(properties, Mapping):
        return (
            f"{where}.properties",
            f"must be a mapping of names to schemas, got {shown(properties)}",
        )
    required = node.get("required")
    if required and not isinstance(required, (list, tuple, str, Mapping)):
        return f"{where}.required", f"must be a list of property names, got {shown(required)}"
    for name, schema in properties.items():
        found = _unreadable_type(f"{where}.properties.{name}", schema)
        if found:
            return found
    return None


def _unreadable_type(where: str, node: Any) -> tuple[str, str] | None:
    if not isinstance(node, Mapping):
        return where, f"must be a JSON schema mapping, got {shown(node)}"
    kind = node.get("type")
    if kind in ("string", "integer", "number") and "enum" in node:
        if not isinstance(node["enum"], (list, tuple, str, Mapping)):
            return f"{where}.enum", f"must be a list of values, got {shown(node['enum'])}"
    elif kind == "array":
        if "items" not in node:
            return where, "has type 'array' but no 'items'"
        return _unreadable_type(f"{where}.items", node["items"])
    elif kind == "object":
        return _unreadable_object(where, node)
    return None
