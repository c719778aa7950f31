"""Policy unit tests: ``*.tests.yaml`` files that pin down how a policy routes requests.

A tests file names the policy (relative to the tests file) and lists cases; each case gives a
request, optionally environment variables, and what routing must decide::

    policy: support-assistant.yaml
    cases:
      - name: code review goes to the strong model
        env: {OPENAI_API_KEY: sk-test}          # optional, set while the case runs
        request: {metadata: {task: review}, messages: [{role: user, content: "review this"}]}
        expect:
          route: code                           # the matched route
          model: sonnet                         # alias of the first candidate
          candidates: [sonnet, mini]            # optional: every candidate alias, in order
          params: {temperature: 0}              # optional: the route's parameter overrides
          budgets: [per-user-daily]             # optional: names of the budgets in scope

``expect`` may instead say ``error: NoCandidateError`` (or ``RoutingError``) for a request the
policy must refuse. Only the keys given in ``expect`` are compared; ``params`` is compared as a
whole. A failing case carries a unified diff of the YAML renderings of expected and actual.

Example:
    >>> results = run_policy_tests(["policies/"])  # doctest: +SKIP
    >>> sum(r.passed for r in results), sum(r.failed for r in results)  # doctest: +SKIP
    (42, 0)
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyroute.errors import PolicyValidationError, RequestError, RoutingError
from policyroute.policy.validate import folder_files, is_tests_name

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.facts import TokenCounter
    from policyroute.policy.load import LoadedDocument
    from policyroute.policy.model import PolicySpec

__all__ = [
    "EXPECT_KEYS",
    "CaseResult",
    "SuiteResult",
    "find_tests_files",
    "run_policy_tests",
    "run_tests_file",
]

EXPECT_KEYS = ("route", "model", "candidates", "params", "budgets", "error")
"""What a case's ``expect`` may say, in the order expected and actual are rendered."""

_CASE_KEYS = frozenset({"name", "request", "expect", "env", "description"})
_FILE_KEYS = frozenset({"policy", "cases", "description"})


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
        return self.error is None and dict(self.expected) == dict(self.actual)

    @property
    def location(self) -> str:
        """``file:line`` of the case in its tests file."""
        return f"{self.file}:{self.line}"

    def diff(self) -> str:
        """Unified diff of the YAML renderings of expected and actual (``""`` when equal)."""
        expected = _to_yaml(self.expected).splitlines()
        actual = _to_yaml(self.actual).splitlines()
        if expected == actual:
            return ""
        lines = difflib.unified_diff(
            expected,
            actual,
            fromfile="expected",
            tofile="actual",
            n=max(len(expected), len(actual)),
            lineterm="",
        )
        return "\n".join(lines)


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


def _plain(value: Any) -> Any:
    """Plain YAML-representable data (mapping proxies, tuples and odd scalars flattened)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _to_yaml(data: Mapping[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml: Any = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keep route, model, ... in reading order
    out = io.StringIO()
    yaml.dump(_plain(data), out)
    return out.getvalue()


# --------------------------------------------------------------------------- discovery


def find_tests_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Tests files named by ``paths``: files as given, folders searched for ``*.tests.yaml``.

    Folders are searched as ``policyroute validate`` searches them (hidden folders, virtual
    environments, ``node_modules`` and ``__pycache__`` skipped), for ``*.tests.yaml``,
    ``*_tests.yaml`` and their ``.yml`` forms in any case. Missing paths are returned as given,
    so running them reports the problem.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            found.append(path)
            continue
        found.extend(file for file, _ in folder_files(path, is_tests_name))
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------- running


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` for the duration of the block, restoring what was there before."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Policies:
    """Loads the policy once per distinct ``env`` (``${ENV}`` references resolve at load)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: dict[frozenset[tuple[str, str]], CompiledPolicy] = {}

    def get(self, env: Mapping[str, str]) -> CompiledPolicy:
        from policyroute.policy.loader import load_policy

        key = frozenset(env.items())
        if key not in self._cache:
            self._cache[key] = load_policy(self.path)
        return self._cache[key]


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a list" if isinstance(value, list) else "a mapping"


def _check_case(raw: Any) -> str | None:
    """What is wrong with the shape of a case, or ``None``."""
    if not isinstance(raw, Mapping):
        return "a case must be a mapping with 'name', 'request' and 'expect'"
    unknown = sorted(str(k) for k in raw if k not in _CASE_KEYS)
    if unknown:
        return f"unknown case key(s) {', '.join(unknown)}; expected name, request, expect, env"
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        return "a case needs a 'name' (a non-empty string)"
    if not isinstance(raw.get("request"), Mapping):
        return "a case needs a 'request' mapping"
    expect = raw.get("expect")
    if not isinstance(expect, Mapping) or not expect:
        return f"a case needs an 'expect' mapping with some of {', '.join(EXPECT_KEYS)}"
    unknown = sorted(str(k) for k in expect if k not in EXPECT_KEYS)
    if unknown:
        return (
            f"unknown expect key(s) {', '.join(unknown)}; expected some of {', '.join(EXPECT_KEYS)}"
        )
    if "error" in expect and len(expect) > 1:
        return "'expect.error' cannot be combined with other expectations"
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
            return f"'expect.{key}' must be a {key} name, got {_kind(expect[key])}"
    if "candidates" in expect and not _names(expect["candidates"]):
        return "'expect.candidates' must be a list of model aliases"
    if "params" in expect and not isinstance(expect["params"], Mapping):
        return "'expect.params' must be a mapping"
    if "budgets" in expect and not _names(expect["budgets"]):
        return "'expect.budgets' must be a list of budget names"
    env = raw.get("env", {})
    if not isinstance(env, Mapping) or not all(
        isinstance(v, (str, int, float, bool)) for v in env.values()
    ):
        return "'env' must map variable names to strings"
    return None


def _actual(
    policy: CompiledPolicy,
    request: Mapping[str, Any],
    expected: Mapping[str, Any],
    token_counter: TokenCounter | None,
) -> dict[str, Any]:
    from policyroute.policy.facts import request_from_mapping

    try:
        decision = policy.route(
            request_from_mapping(request), token_counter=token_counter, trace=False
        )
    except RoutingError as exc:
        if "error" in expected:
            return {"error": type(exc).__name__}
        return {"error": _describe(exc)}
    aliases = [c.alias for c in decision.candidates]
    full = {
        "route": decision.route,
        "model": aliases[0] if aliases else None,
        "candidates": aliases,
        "params": _plain(decision.params),
        "budgets": [b.name for b in decision.budgets],
    }
    wanted = [k for k in EXPECT_KEYS if k in expected and k != "error"] or ["route", "model"]
    return {k: full[k] for k in wanted}


def _unknown_names(expected: Mapping[str, Any], spec: PolicySpec) -> str | None:
    """An ``expect`` name the policy does not define, said as such (``None`` when all exist).

    Compared as written, a misspelt route or model would only ever show up as a diff that
    looks like a routing change.
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


def _run_case(
    raw: Any,
    index: int,
    doc: LoadedDocument,
    policies: _Policies,
    token_counter: TokenCounter | None,
) -> CaseResult:
    line = doc.locate(("cases", index)).line
    name = raw.get("name") if isinstance(raw, Mapping) else None
    name = name if isinstance(name, str) and name else f"case {index + 1}"
    problem = _check_case(raw)
    if problem is not None:
        return CaseResult(doc.file, line, name, {}, {}, error=problem)
    expected = {k: _plain(raw["expect"][k]) for k in EXPECT_KEYS if k in raw["expect"]}
    env = {str(k): str(v) for k, v in raw.get("env", {}).items()}
    try:
        with _environment(env):
            policy = policies.get(env)
            problem = _unknown_names(expected, policy.spec)
            if problem is not None:
                return CaseResult(doc.file, line, name, expected, {}, error=problem)
            actual = _actual(policy, raw["request"], expected, token_counter)
    except RequestError as exc:
        return CaseResult(doc.file, line, name, expected, {}, error=f"bad request: {exc}")
    return CaseResult(doc.file, line, name, expected, actual)


def _unique_names(cases: tuple[CaseResult, ...]) -> tuple[CaseResult, ...]:
    """A case named like an earlier one becomes an error: a failure must say which case."""
    first: dict[str, int] = {}
    out: list[CaseResult] = []
    for case in cases:
        if case.name in first:
            problem = f"duplicate case name {case.name!r} (first used at line {first[case.name]})"
            case = CaseResult(case.file, case.line, case.name, case.expected, {}, error=problem)
        else:
            first[case.name] = case.line
        out.append(case)
    return tuple(out)


def _load_tests_doc(path: Path) -> tuple[LoadedDocument | None, list[str]]:
    from policyroute.policy.load import load_yaml, not_utf8

    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read tests file: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: the tests file is {not_utf8(data, exc)}"]
    doc = load_yaml(text, file=str(path), what="tests file")
    problems = [d.format() for d in doc.diagnostics if d.severity == "error"]
    data = doc.data
    if problems:
        return None, problems
    if not isinstance(data, Mapping):
        return None, [f"{path}: a tests file must be a mapping with 'policy' and 'cases'"]
    unknown = sorted(str(k) for k in data if k not in _FILE_KEYS)
    if unknown:
        where = doc.locate((unknown[0],), key=True)
        problems.append(f"{path}:{where.line}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("policy"), str) or not data["policy"]:
        problems.append(f"{path}: 'policy' must name the policy file, relative to this file")
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        problems.append(f"{path}: 'cases' must be a non-empty list")
    return (None, problems) if problems else (doc, [])


def run_tests_file(
    path: str | os.PathLike[str], *, token_counter: TokenCounter | None = None
) -> SuiteResult:
    """Run every case of one tests file.

    ``token_counter`` replaces litellm's counter for ``input_tokens`` conditions. Problems
    that keep the whole file from running (unreadable file, invalid policy) are returned in
    ``problems`` rather than raised.
    """
    tests_path = Path(path)
    doc, problems = _load_tests_doc(tests_path)
    if doc is None:
        return SuiteResult(str(tests_path), None, (), tuple(problems))
    policy_path = tests_path.parent / str(doc.data["policy"])
    if not policy_path.is_file():
        line = doc.locate(("policy",)).line
        why = "'policy' names a directory" if policy_path.is_dir() else "policy file not found"
        return SuiteResult(
            str(tests_path),
            str(policy_path),
            (),
            (f"{tests_path}:{line}: {why}: {policy_path}",),
        )
    policies = _Policies(policy_path)
    try:
        cases = _unique_names(
            tuple(
                _run_case(raw, i, doc, policies, token_counter)
                for i, raw in enumerate(doc.data["cases"])
            )
        )
    except PolicyValidationError as exc:
        lines = [d.format() for d in exc.diagnostics if d.severity == "error"]
        return SuiteResult(
            str(tests_path),
            str(policy_path),
            (),
            (f"{policy_path}: the policy is invalid", *lines),
        )
    return SuiteResult(str(tests_path), str(policy_path), cases)


def run_policy_tests(
    paths: Sequence[str | os.PathLike[str]], *, token_counter: TokenCounter | None = None
) -> list[SuiteResult]:
    """Run the tests files named by ``paths`` (files, or folders of ``*.tests.yaml``)."""
    return [run_tests_file(p, token_counter=token_counter) for p in find_tests_files(paths)]
