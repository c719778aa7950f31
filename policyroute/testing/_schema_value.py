"""A small JSON value that validates against a JSON schema, for generated structured answers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_DEPTH = 64
"""Nesting past which no deeper value is built (a schema that requires infinite nesting)."""

LEAN_DEPTH = 6
"""Nesting past which only what the schema requires is built.

Recursive schemas (a tree of pydantic models, say) stay finite and small this way: optional
properties are left out, arrays get ``minItems`` items and nullable branches give ``null``.
"""

MAX_ITEMS = 1000
"""Most items built for one array, whatever its ``minItems`` says."""

MAX_NODES = 20_000
"""Most values built for one schema; past it every value is ``null``."""

_FORMAT_SAMPLES = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "x@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}

# Characters tried, repeated, to satisfy a ``pattern``: letters of both cases, digits, symbols.
_PATTERN_CHARS = "xaA0b1-_ ."


def value_for_schema(schema: object, root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A small value valid for the JSON ``schema`` (draft 4 to 2020-12 keywords).

    Strings are ``"x"`` (a sample for common formats, a match for simple patterns),
    integers ``1`` and numbers ``1.0`` moved into their bounds and ``multipleOf``,
    booleans ``true``; arrays hold one item (or ``minItems``, distinct when
    ``uniqueItems``), objects fill every listed and required property, ``enum`` and
    ``const`` give their first value, ``anyOf``/``oneOf`` their first non-null branch,
    ``allOf`` branches are merged and local ``$ref`` (``#/$defs/...``) are followed.
    Past a few levels of nesting only required parts are built, so recursive schemas give
    small finite values. ``root`` is the document ``$ref`` resolves against (default
    ``schema``).

    Example:
        >>> value_for_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
        {'n': 1}
        >>> value_for_schema({"type": "array", "items": {"enum": ["b", "a"]}})
        ['b']
        >>> value_for_schema({"type": "number", "exclusiveMinimum": 0, "maximum": 0.5})
        0.5
    """
    base = root if root is not None else schema if isinstance(schema, Mapping) else {}
    return _Builder(base).value(schema, depth, 0)


class _Builder:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root
        self._nodes = 0

    def value(self, schema: object, depth: int, variant: int) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES or depth > MAX_DEPTH or schema is False:
            return None
        if not isinstance(schema, Mapping):
            return "x"
        schema = self._flatten(schema, depth)
        lean = depth > LEAN_DEPTH
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[variant % len(enum)]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = _pick_branch([self._flatten(b, depth) for b in branches], lean)
                return self.value({**rest, **branch}, depth + 1, variant)
        kind = _schema_type(schema, lean)
        if kind == "object":
            return self._object(schema, depth, variant, lean)
        if kind == "array":
            return self._array(schema, depth, variant, lean)
        if kind == "integer":
            return _integer(schema, variant)
        if kind == "number":
            return _number(schema, variant)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return _string(schema, variant)

    def _flatten(self, schema: object, depth: int) -> Mapping[str, Any]:
        """``schema`` with its ``$ref`` resolved and its ``allOf`` branches merged in."""
        if not isinstance(schema, Mapping):
            return {}
        parts: list[object] = []
        ref = schema.get("$ref")
        if isinstance(ref, str) and depth <= MAX_DEPTH:
            parts.append(_resolve_ref(ref, self._root))
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            parts.extend(all_of)
        if not parts:
            return schema
        merged = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
        for part in parts:
            _merge_into(merged, self._flatten(part, depth + 1))
        return merged

    def _object(
        self, schema: Mapping[str, Any], depth: int, variant: int, lean: bool
    ) -> dict[str, Any]:
        properties = schema.get("properties")
        props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
        required = [str(k) for k in _list(schema.get("required"))]
        extra = schema.get("additionalProperties", {})
        names = list(dict.fromkeys(required if lean else [*map(str, props), *required]))
        wanted = _natural(schema.get("minProperties"), 0)
        if extra is not False:
            names.extend(_fresh_names(names, wanted - len(names)))
        return {
            name: self.value(props.get(name, extra), depth + 1, variant if i == 0 else 0)
            for i, name in enumerate(names)
        }

    def _array(self, schema: Mapping[str, Any], depth: int, variant: int, lean: bool) -> list[Any]:
        prefix = _list(schema.get("prefixItems"))
        items = schema.get("items", {})
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        low = _natural(schema.get("minItems"), 0)
        count = low if lean else max(low, 1, len(prefix))
        count = min(count, _natural(schema.get("maxItems"), count), MAX_ITEMS)
        if items is False:
            count = min(count, len(prefix))
        distinct = schema.get("uniqueItems") is True
        return [
            self.value(prefix[i] if i < len(prefix) else items, depth + 1, i if distinct else 0)
            for i in range(count)
        ]


def _pick_branch(branches: list[Mapping[str, Any]], lean: bool) -> Mapping[str, Any]:
    nulls = [b for b in branches if _is_null(b)]
    others = [b for b in branches if not _is_null(b)]
    if lean and nulls:
        return nulls[0]
    return (others or branches)[0]


def _merge_into(target: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties" and isinstance(value, Mapping):
            current = target.get("properties")
            target["properties"] = {**(current if isinstance(current, Mapping) else {}), **value}
        elif key == "required" and isinstance(value, list):
            target["required"] = list(dict.fromkeys([*_list(target.get("required")), *value]))
        else:
            target.setdefault(key, value)


def _is_null(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null"


def _schema_type(schema: Mapping[str, Any], lean: bool) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "null" if lean and "null" in kind else next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> object:
    if not ref.startswith("#"):
        return {}
    node: object = root
    for part in ref[1:].strip("/").split("/"):
        if not part:
            continue
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, Mapping):
            return {}
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _natural(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _fresh_names(taken: list[str], count: int) -> list[str]:
    names: list[str] = []
    index = 0
    while len(names) < count:
        index += 1
        if f"k{index}" not in taken:
            names.append(f"k{index}")
    return names


def _bound(schema: Mapping[str, Any], key: str) -> float | None:
    value = schema.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """Lower bound, whether exclusive, upper bound, whether exclusive (draft 4 or 6+ form)."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    low_open = schema.get("exclusiveMinimum") is True
    high_open = schema.get("exclusiveMaximum") is True
    open_low, open_high = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
    if open_low is not None and (low is None or open_low >= low):
        low, low_open = open_low, True
    if open_high is not None and (high is None or open_high <= high):
        high, high_open = open_high, True
    return low, low_open, high, high_open


def _integer(schema: Mapping[str, Any], variant: int) -> int:
    low, low_open, high, high_open = _bounds(schema)
    first = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    last = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
    given = _bound(schema, "multipleOf")
    step = int(given) if given is not None and given >= 1 and given.is_integer() else 1
    preferred = 1 if first is None else max(first, 1)
    if last is not None and preferred > last:
        preferred = last if first is None else max(first, last)
    value = -(-preferred // step) * step + variant * step
    if last is not None and value > last:
        value = (last // step) * step - variant * step
    return value


def _number(schema: Mapping[str, Any], variant: int) -> float:
    low, low_open, high, high_open = _bounds(schema)
    step = _bound(schema, "multipleOf")
    if step is not None and step <= 0:
        step = None
    if step is not None and step.is_integer():
        return float(_integer(schema, variant))
    candidates = [1.0 + variant]
    if low is not None:
        candidates += [low + variant, low + 1.0 + variant]
    if high is not None:
        candidates += [high - variant, high - 1.0 - variant]
    if low is not None and high is not None:
        candidates.append(low + (high - low) * (variant + 1) / (variant + 2))
    for candidate in candidates:
        value = candidate if step is None else math.ceil(candidate / step) * step
        if (
            (low is None or value > low or (value == low and not low_open))
            and (high is None or value < high or (value == high and not high_open))
            and (step is None or (value / step).is_integer())
        ):
            return value
    return candidates[-1]


def _string(schema: Mapping[str, Any], variant: int) -> str:
    low = _natural(schema.get("minLength"), 0)
    high = _natural(schema.get("maxLength"), max(low, 1) + 64)
    pattern = schema.get("pattern")
    sample = _FORMAT_SAMPLES.get(str(schema.get("format", "")))
    matches = 0
    for candidate in _string_candidates(sample, low, high):
        if isinstance(pattern, str) and not _search(pattern, candidate):
            continue
        if matches == variant:
            return candidate
        matches += 1
    return "x" * low if low > 1 else "x"[:high]


def _string_candidates(sample: str | None, low: int, high: int) -> Iterator[str]:
    seen: set[str] = set()
    if sample is not None and low <= len(sample) <= high:
        seen.add(sample)
        yield sample
    for length in range(max(1, low), min(high, max(1, low) + 24) + 1):
        for head in _PATTERN_CHARS:
            for tail in _PATTERN_CHARS[:4]:
                text = head + tail * (length - 1)
                if text not in seen:
                    seen.add(text)
                    yield text
    if low == 0:
        yield ""


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True
