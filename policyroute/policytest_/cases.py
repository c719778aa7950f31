"""Policy test cases: what a case may expect, how it is checked, and what it came to.

A case's ``expect`` names some of :data:`EXPECT_KEYS`; :func:`check_case` says what is wrong
with the shape of a case before it runs (a value of the wrong shape could never equal what
routing gives, so it would only ever fail as a diff that hides the mistake), and
:func:`unknown_names` says which expected route, model or budget the policy does not define.
A case ran is a :class:`CaseResult`, passing when expected equals actual; a tests file ran is a
:class:`SuiteResult`. Both render as plain YAML, so a failure reads as a unified diff.
Expected and actual are compared as written, but a route's ``params`` are shown redacted (a
credential header in the policy must not reach a CI log); a difference that lies only in a
redacted value is named by a note under the diff.

Example:
    >>> case = CaseResult("t.tests.yaml", 3, "review", {"route": "code"}, {"route": "chat"})
    >>> case.passed, case.location
    (False, 't.tests.yaml:3')
    >>> print(case.diff())
    --- expected
    +++ actual
    @@ -1 +1 @@
    -route: code
    +route: chat
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyroute.costs.redact import redact_params
from policyroute.errors import RoutingError
from policyroute.policy.hints import with_hints

if TYPE_CHECKING:
    from policyroute.policy.load import JsonPath
    from policyroute.policy.model import PolicySpec

__all__ = [
    "EXPECT_KEYS",
    "CaseResult",
    "SuiteResult",
    "check_case",
    "not_text",
    "plain",
    "same",
    "unknown_names",
    "value_kind",
]

EXPECT_KEYS = ("route", "model", "candidates", "params", "budgets", "error")
"""What a case's ``expect`` may say, in the order expected and actual are rendered."""

_CASE_KEYS = frozenset({"name", "request", "expect", "env", "description"})


def _subclass_names(cls: type[BaseException]) -> frozenset[str]:
    return frozenset({cls.__name__}).union(*(_subclass_names(c) for c in cls.__subclasses__()))


# The errors a route can end in: what ``expect.error`` may name.
_ROUTING_ERRORS = _subclass_names(RoutingError)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case.

    ``error`` is set when the case could not be run as written (a malformed case or request);
    otherwise the case passed when ``expected == actual``.
    """

    file: str
    line: int
    name: str
    expected: Mapping[str, Any]
    actual: Mapping[str, Any]
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the case ran and routing decided what it expects."""
        return self.error is None and same(dict(self.expected), dict(self.actual))

    @property
    def location(self) -> str:
        """``file:line`` of the case in its tests file."""
        return f"{self.file}:{self.line}"

    def diff(self) -> str:
        """Unified diff of the YAML renderings of expected and actual (``""`` when equal),
        ``params`` redacted; a difference hidden by the redaction is named by a last line."""
        expected = _to_yaml(_shown(self.expected)).splitlines()
        actual = _to_yaml(_shown(self.actual)).splitlines()
        hidden = _hidden_difference(self.expected.get("params"), self.actual.get("params"))
        if expected == actual and not hidden:
            return ""
        lines = list(
            difflib.unified_diff(
                expected,
                actual,
                fromfile="expected",
                tofile="actual",
                n=max(len(expected), len(actual)),
                lineterm="",
            )
        )
        if hidden:
            # Redacted alike, the renderings may not differ at all: the note still needs headers.
            lines = (lines or ["--- expected", "+++ actual"]) + [_HIDDEN_NOTE]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"CaseResult(file={self.file!r}, line={self.line!r}, name={self.name!r}, "
            f"expected={_shown(self.expected)!r}, actual={_shown(self.actual)!r}, "
            f"error={self.error!r})"
        )


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The outcome of one tests file: its cases, or the problems that kept it from running."""

    file: str
    policy: str | None
    cases: tuple[CaseResult, ...]
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        """Number of passing cases."""
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        """Number of failing cases."""
        return sum(1 for c in self.cases if not c.passed)

    @property
    def ok(self) -> bool:
        """No file-level problem and every case passed."""
        return not self.problems and self.failed == 0


# --------------------------------------------------------------------------- rendering


def plain(value: Any) -> Any:
    """Plain YAML-representable data (mapping proxies, tuples and odd scalars flattened).

    Example:
        >>> plain({"params": (1, {"t": None})})
        {'params': [1, {'t': None}]}
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def same(expected: Any, actual: Any) -> bool:
    """Whether two plain values are equal as YAML values: ``false`` is not ``0`` nor ``true``
    ``1`` (Python's ``==`` says they are, so ``params: {temperature: false}`` passed against a
    route's ``temperature: 0``), while ``0`` and ``0.0`` are the same number.

    Example:
        >>> same({"temperature": 0}, {"temperature": 0.0}), same([False], [0])
        (True, False)
    """
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(
            same(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same, expected, actual))
    return bool(expected == actual)


_HIDDEN_NOTE = "# params differ in credential values, which are shown redacted"


def _shown(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` fit to print: its ``params`` (a route's, which may carry a credential header)
    through :func:`~policyroute.costs.redact.redact_params`."""
    shown = dict(data)
    if isinstance(shown.get("params"), Mapping):
        shown["params"] = redact_params(shown["params"])
    return shown


def _hidden_difference(expected: Any, actual: Any) -> bool:
    """Whether ``expected`` and ``actual`` differ somewhere their redacted forms agree, so that
    a failing case whose diff shows nothing still says why it fails."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        if expected == actual:
            return False
        shown_expected, shown_actual = redact_params(expected), redact_params(actual)
        return any(
            _hidden_difference(expected[k], actual[k])
            if isinstance(expected[k], Mapping) and isinstance(actual[k], Mapping)
            else expected[k] != actual[k] and shown_expected[str(k)] == shown_actual[str(k)]
            for k in expected.keys() & actual.keys()
        )
    return False


def _to_yaml(data: Mapping[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml: Any = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keep route, model, ... in reading order
    out = io.StringIO()
    yaml.dump(plain(data), out)
    return out.getvalue()


# --------------------------------------------------------------------------- checking


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def value_kind(value: Any) -> str:
    """What a YAML value is, said for a message: ``null``, ``a number``, ``an empty list``...

    Example:
        >>> value_kind(3), value_kind([]), value_kind("")
        ('a number', 'an empty list', "''")
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "''"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return "a mapping"


def not_text(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the free text ``key`` holds (a ``description``), or ``None``.

    A policy's ``description`` is a string by its schema; a tests file's is held to the same.

    Example:
        >>> not_text("description", ["a", "b"])
        "'description' must be a string, got a list"
        >>> not_text("description", 1.0)
        "'description' must be a string, got a number (quote it to keep it text)"
    """
    if isinstance(value, str):
        return None
    quote = " (quote it to keep it text)" if isinstance(value, (bool, int, float)) else ""
    return f"'{key}' must be a string, got {value_kind(value)}{quote}"


def check_case(raw: Any, line_of: Callable[[JsonPath], int] | None = None) -> str | None:
    """What is wrong with the shape of a case, or ``None``; ``line_of`` gives the line of a
    path within the case, for a message that points below the case's first line.

    Example:
        >>> check_case({"name": "n", "request": {}, "expect": {"route": 3}})
        "'expect.route' must be a route name, got a number"
    """
    if not isinstance(raw, Mapping):
        return "a case must be a mapping with 'name', 'request' and 'expect'"
    unknown = sorted(str(k) for k in raw if k not in _CASE_KEYS)
    if unknown:
        named = with_hints(unknown, _CASE_KEYS)
        return f"unknown case key(s) {named}; expected name, request, expect, env"
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        return "a case needs a 'name' (a non-empty string)"
    if not isinstance(raw.get("request"), Mapping):
        return "a case needs a 'request' mapping"
    if "description" in raw and not isinstance(raw["description"], str):
        return not_text("description", raw["description"])
    expect = raw.get("expect")
    if not isinstance(expect, Mapping) or not expect:
        return f"a case needs an 'expect' mapping with some of {', '.join(EXPECT_KEYS)}"
    unknown = sorted(str(k) for k in expect if k not in EXPECT_KEYS)
    if unknown:
        named = with_hints(unknown, EXPECT_KEYS)
        return f"unknown expect key(s) {named}; expected some of {', '.join(EXPECT_KEYS)}"
    if "error" in expect and len(expect) > 1:
        return "'expect.error' cannot be combined with other expectations"
    if "error" in expect and not isinstance(expect["error"], str):
        # Checked before the name is looked up: a list or mapping cannot be (unhashable).
        return f"'expect.error' must be an error class name, got {value_kind(expect['error'])}"
    if "error" in expect and expect["error"] not in _ROUTING_ERRORS:
        # A misspelt name would otherwise only ever show up as a failed comparison.
        return (
            f"unknown 'expect.error' {expect['error']!r}; routing raises one of "
            f"{', '.join(sorted(_ROUTING_ERRORS))}"
        )
    # A value of the wrong shape could never equal what routing gives: the case would only
    # ever fail, as a diff that hides the mistake in the tests file.
    for key in ("route", "model"):
        if key in expect and not isinstance(expect[key], str):
            return f"'expect.{key}' must be a {key} name, got {value_kind(expect[key])}"
    if "candidates" in expect and not _names(expect["candidates"]):
        return "'expect.candidates' must be a list of model aliases"
    if "params" in expect and not isinstance(expect["params"], Mapping):
        return "'expect.params' must be a mapping"
    if "budgets" in expect and not _names(expect["budgets"]):
        return "'expect.budgets' must be a list of budget names"
    env = raw.get("env", {})
    if not isinstance(env, Mapping):
        return f"'env' must map variable names to values, got {value_kind(env)}"
    for name, value in env.items():
        # The operating system refuses these (os.environ raises): the whole run stopped with
        # an internal error instead of naming the case.
        if not str(name) or "=" in str(name) or "\0" in str(name):
            return f"'env' variable name {str(name)!r} is not valid (empty, or holds '=' or NUL)"
        if not isinstance(value, (str, int, float, bool)):
            at = f" at line {line_of(('env', name))}" if line_of else ""
            empty = " (write '' for an empty value)" if value is None else ""
            return (
                f"'env.{name}'{at} must be a string, number or boolean, got"
                f" {value_kind(value)}{empty}"
            )
        if "\0" in str(value):
            return f"'env.{name}' holds a NUL character, which no environment variable can"
    return None


def unknown_names(expected: Mapping[str, Any], spec: PolicySpec) -> str | None:
    """An ``expect`` name the policy does not define, said as such (``None`` when all exist).

    Compared as written, a misspelt route or model would only ever show up as a diff that
    looks like a routing change.

    Example:
        >>> unknown_names({"model": "sonet"}, policy.spec)  # doctest: +SKIP
        "'expect.model' names no model of the policy: 'sonet' (did you mean 'sonnet'?)"
    """
    routes = [r.name for r in spec.routes]
    models = list(spec.models)
    named = [
        ("route", "route", [expected.get("route")], routes),
        ("model", "model", [expected.get("model")], models),
        ("candidates", "model", list(expected.get("candidates", ())), models),
        ("budgets", "budget", list(expected.get("budgets", ())), [b.name for b in spec.budgets]),
    ]
    for key, what, given, names in named:
        for value in given:
            if key in expected and value not in names:
                close = difflib.get_close_matches(str(value), names, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"it has {', '.join(names)}"
                    if names
                    else f"it has no {what}s"
                )
                return f"'expect.{key}' names no {what} of the policy: {value!r} ({hint})"
    return None
