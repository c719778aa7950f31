"""The published JSON Schema, and its errors turned into readable diagnostics.

The schema ships inside the package (``policyroute/schema/policy.schema.json``, identical to
``schemas/policy.schema.json`` at the repository root). The validator is built once, on first
use. Each jsonschema error becomes at most one :class:`Diagnostic` at the most specific node:
unknown keys point at the key and suggest the closest known one, ``oneOf`` trees collapse into
the branch that fits the value's type.

Example:
    >>> from policyroute.policy.load import load_yaml
    >>> doc = load_yaml("policyroute: 1\\nname: x\\nmodels: {m: {model: a, tmeout: 1}}\\n"
    ...                 "routes: [{name: r, to: m}]\\n")
    >>> for d in schema_diagnostics(doc):
    ...     print(d.format())  # doctest: +NORMALIZE_WHITESPACE
    <string>:3:24 models.m.tmeout: unknown property 'tmeout' in models.m
        (did you mean 'timeout'?) [PR010]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from policyroute.policy.diagnostics import Diagnostic
from policyroute.policy.hints import boolean_word_hint, did_you_mean
from policyroute.policy.load import JsonPath, LoadedDocument, format_path

__all__ = ["load_schema", "schema_diagnostics", "validator"]

# Values at these keys may be credentials: never quote them in a message.
SENSITIVE_KEYS = frozenset({"api_key", "url"})

_JSON_TYPES = {
    dict: "mapping",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
_TYPE_WORDS = {"object": "mapping", "array": "list"}

# Keys people bring from litellm Router configs and similar files, which no spelling
# suggestion reaches: what the policy says instead.
_FALLBACKS_HINT = "list fallbacks as the later entries of 'to', tried in order: to: [main, backup]"
_FOREIGN_KEYS = {
    "fallbacks": _FALLBACKS_HINT,
    "fallback": _FALLBACKS_HINT,
    "model_list": "declare deployments under 'models' (alias: {model: provider/name})",
    "model_name": "a model's alias is its key under 'models'; 'model' is the litellm model name",
    "litellm_params": "put the litellm model name in 'model' and call parameters in 'params'",
    "condition": "a route's condition is its 'when'",
    "if": "a route's condition is its 'when'",
    "match": "a route's condition is its 'when'",
    "num_retries": "set retries under defaults: retry: {attempts: N}",
    "retries": "set retries under defaults: retry: {attempts: N}",
    "max_budget": "a budget's limit is 'limit_usd'",
    "budget_duration": "a budget's period is 'window' (call, day, week, month or a duration)",
}
_CONDITION_HINT = (
    "write a condition as a mapping of facts to values or operators, e.g."
    " when: {metadata.tier: gold, input_tokens: {gt: 100}}; a string is not parsed"
)


@functools.lru_cache(maxsize=1)
def load_schema() -> Mapping[str, Any]:
    """The policy JSON Schema shipped with the package, parsed."""
    text = resources.files("policyroute.schema").joinpath("policy.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def ecma_pattern(pattern: str) -> str:
    """``pattern`` for Python's ``re`` with each ``$`` anchor made ``\\Z``.

    JSON Schema's ``pattern`` is an ECMA-262 regex, whose ``$`` holds only at the end of the
    text, as editors check it; Python's ``$`` also holds before a final line break, so
    jsonschema let ``name: "demo\\n"`` (or a ``|`` block scalar) through every anchored pattern.

    Example:
        >>> ecma_pattern(r"^[a-z$]+\\$$")
        '^[a-z$]+\\\\$\\\\Z'
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Any:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=1)
def validator() -> Any:
    """A ``Draft202012Validator`` for the policy schema, built once per process, reading
    ``pattern`` as ECMA-262 does (see :func:`ecma_pattern`)."""
    from jsonschema import Draft202012Validator, validators

    checker = validators.extend(Draft202012Validator, {"pattern": _pattern})
    return checker(load_schema())


def schema_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Check ``doc.data`` against the schema; one diagnostic per real problem."""
    mapper = _ErrorMapper(doc)
    for error in validator().iter_errors(doc.data):
        mapper.add(error)
    return mapper.diagnostics


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _expected(schema: Mapping[str, Any]) -> str:
    if "title" in schema:
        return str(schema["title"])
    types = schema.get("type", [])
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in names]
    return " or ".join(words) if words else "another value"


def _key_hint(word: str, choices: Iterable[str]) -> str | None:
    """A spelling suggestion for an unknown key, else what the policy uses in its place."""
    return did_you_mean(word, choices) or _FOREIGN_KEYS.get(word.lower())


def _types(schema: Mapping[str, Any]) -> set[str]:
    types = schema.get("type", [])
    return {types} if isinstance(types, str) else set(types)


def _wants_text(schema: Mapping[str, Any]) -> bool:
    """Whether a schema takes text but neither numbers nor booleans (a name, a target)."""
    names = _types(schema)
    return "string" in names and names <= {"string", "array", "object"}


_NON_FINITE = frozenset({"nan", "inf", "infinity"})


def _non_finite(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` spells infinity or not-a-number where the schema wants a number (YAML
    1.2 reads only ``.nan`` and ``.inf`` as numbers, which the loader refuses)."""
    wanted = bool(_types(schema) & {"number", "integer"})
    return wanted and isinstance(value, str) and value.strip().lower().lstrip("+-") in _NON_FINITE


def _show(path: JsonPath, value: Any) -> str:
    if path and path[-1] in SENSITIVE_KEYS:
        return "the value"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _ErrorMapper:
    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple[str, str]] = set()

    def emit(
        self, code: str, path: JsonPath, message: str, *, key: bool = False, hint: str | None = None
    ) -> None:
        where = format_path(path)
        if (code, where) in self._seen:
            return
        self._seen.add((code, where))
        pos = self.doc.locate(path, key=key)
        self.diagnostics.append(
            Diagnostic(code, message, where, self.doc.file, pos.line, pos.column, hint=hint)
        )

    def add(self, error: Any) -> None:
        path: JsonPath = tuple(error.absolute_path)
        kind = error.validator
        schema = error.schema
        value = error.instance
        if "propertyNames" in error.absolute_schema_path:
            self._property_name(error, path)
        elif kind in ("oneOf", "anyOf"):
            self._one_of(error, path)
        elif kind == "additionalProperties":
            known = list(schema.get("properties", {}))
            for name in value:
                if name in known or not isinstance(name, str):
                    continue
                where = f"in {format_path(path)}" if path else "at the top level"
                self.emit(
                    "PR010",
                    (*path, name),
                    f"unknown property '{name}' {where}",
                    key=True,
                    hint=_key_hint(name, known),
                )
        elif kind == "required":
            # One diagnostic per mapping (diagnostics are one per code and path), naming all.
            missing = [f"'{name}'" for name in schema["required"] if name not in value]
            if len(missing) == 1:
                self.emit("PR011", path, f"missing required property {missing[0]}", key=True)
            elif missing:
                names = ", ".join(missing[:-1]) + f" and {missing[-1]}"
                self.emit("PR011", path, f"missing required properties {names}", key=True)
        elif kind == "type":
            expected = _expected(schema)
            hint = _CONDITION_HINT if expected == "condition" and isinstance(value, str) else None
            if _wants_text(schema) and isinstance(value, (bool, int, float)):
                # text that looks like a number or a boolean (007, 1e3, true) is read as one
                what = "a boolean" if isinstance(value, bool) else "a number"
                hint = f"YAML reads this unquoted value as {what}; quote it to keep it text"
            elif _non_finite(schema, value):
                hint = "YAML reads NaN and inf as text, and a call takes finite numbers only"
            elif "boolean" in _types(schema):
                hint = boolean_word_hint(value)
            self.emit("PR012", path, f"expected {expected}, got {_kind(value)}", hint=hint)
        elif kind in ("enum", "const"):
            allowed = schema["enum"] if kind == "enum" else [schema["const"]]
            listed = ", ".join(repr(a) for a in allowed)
            hint = (
                did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else None
            )
            self.emit(
                "PR013",
                path,
                f"{_show(path, value)} is not allowed; expected {listed}",
                hint=hint,
            )
        elif kind == "pattern":
            if path and path[-1] == "api_key":
                return  # the semantic check reports literal keys without quoting them
            self.emit("PR013", path, f"{_show(path, value)} is not a valid {_expected(schema)}")
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">"}.get(kind, "<")
            self.emit("PR013", path, f"must be {sign} {schema[kind]}, got {_show(path, value)}")
        elif kind == "minLength":
            self.emit("PR013", path, "must not be empty")
        elif kind in ("minItems", "minProperties"):
            self.emit("PR014", path, f"must have at least {schema[kind]} entry")
        elif kind in ("maxItems", "maxProperties"):
            self.emit("PR014", path, f"must have at most {schema[kind]} entries")
        elif kind == "uniqueItems":
            self.emit("PR015", path, "lists the same item more than once")
        else:
            self.emit("PR013", path, error.message)

    def _property_name(self, error: Any, path: JsonPath) -> None:
        # jsonschema checks each key as an instance of its own; the path is the mapping's.
        name = error.instance
        if not isinstance(name, str):
            return
        if name == "":
            message = "an empty key is not allowed"
        else:
            message = f"{name!r} is not a valid {_expected(error.schema)}"
        self.emit("PR013", (*path, name), message, key=True)

    def _one_of(self, error: Any, path: JsonPath) -> None:
        """Pick the branch meant by the value (by type, then by keys) and report only its errors."""
        branches: dict[int, list[Any]] = {}
        for sub in error.context or []:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        options: list[Mapping[str, Any]] = error.schema[error.validator]
        value = error.instance

        def type_fails(errs: list[Any]) -> bool:
            return any(e.validator in ("type", "const") and not e.relative_path for e in errs)

        fitting = [i for i, errs in branches.items() if not type_fails(errs)]
        if len(fitting) > 1 and isinstance(value, dict):
            keyed = [i for i in fitting if set(value) & set(options[i].get("properties", {}))]
            fitting = keyed or fitting
        if len(fitting) == 1:
            for sub in branches[fitting[0]]:
                self.add(sub)
            return
        if fitting and isinstance(value, dict) and value:
            # No branch knows any of the keys: report them as unknown, with a suggestion.
            known = [p for i in fitting for p in options[i].get("properties", {})]
            for name in value:
                self.emit(
                    "PR010",
                    (*path, name),
                    f"unknown property '{name}' in {format_path(path)}",
                    key=True,
                    hint=_key_hint(str(name), known),
                )
            return
        forms = " or ".join(str(o.get("title", "?")) for o in options)
        consts = [str(o["const"]) for o in options if "const" in o]
        hint = did_you_mean(value, consts) if isinstance(value, str) else None
        self.emit("PR016", path, f"expected {forms}, got {_show(path, value)}", hint=hint)
