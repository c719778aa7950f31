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

A number or boolean in ``env`` sets its variable to the text written (``true``, ``1.10``, ``007``),
not to Python's rendering of the value YAML read (``True``, ``1.1``, ``7``).

``expect`` may instead say ``error: NoCandidateError`` (or ``RoutingError``) for a request the
policy must refuse (``RoutingError`` matches any refusal). Only the keys given in ``expect``
are compared; ``params`` is compared as a whole, ``candidates`` in order, ``budgets`` in any
order. A failing case carries a unified diff of the YAML renderings of expected and actual.

A ``weighted`` group draws its order at random on every call: cases are routed with fixed seeds,
so a run repeats, and a ``model`` or ``candidates`` expectation that the draws disagree on is
an error in the case (:mod:`policyroute.policytest_.draws`).

This module finds tests files, loads them and runs their cases against the policy; the case
model (the expectations, how a case is checked, the results) lives in
:mod:`policyroute.policytest_.cases`. Every public name is exported here.

Example:
    >>> results = run_policy_tests(["policies/"])  # doctest: +SKIP
    >>> sum(r.passed for r in results), sum(r.failed for r in results)  # doctest: +SKIP
    (42, 0)
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyroute._environ import environment
from policyroute._files import path_kind
from policyroute.errors import PolicyValidationError, RequestError, RoutingError
from policyroute.policy.hints import with_hints
from policyroute.policy.validate import folder_files, is_tests_name
from policyroute.policytest_.cases import (
    EXPECT_KEYS,
    CaseResult,
    SuiteResult,
    check_case,
    not_text,
    plain,
    unknown_names,
    value_kind,
)
from policyroute.policytest_.draws import SEEDS, weighted_groups
from policyroute.request_place import request_error_path

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.facts import TokenCounter
    from policyroute.policy.load import LoadedDocument

__all__ = [
    "EXPECT_KEYS",
    "NO_TESTS_FILES",
    "CaseResult",
    "SuiteResult",
    "find_tests_files",
    "locate_tests_files",
    "run_policy_tests",
    "run_tests_file",
]

_FILE_KEYS = frozenset({"policy", "cases", "description"})


# --------------------------------------------------------------------------- discovery


NO_TESTS_FILES = (
    "no tests files in this folder (tests files end in .tests.yaml or _tests.yaml; hidden"
    " folders, virtual environments and node_modules are not searched)"
)
"""The problem :func:`locate_tests_files` gives a folder that holds no tests file."""


def locate_tests_files(
    paths: Sequence[str | os.PathLike[str]],
) -> list[tuple[Path, str | None]]:
    """Tests files named by ``paths``, each with why it cannot be run (``None`` when it can).

    Files are taken as given (a path that does not exist too, so running it reports the
    problem). Folders are searched as ``policyroute validate`` searches them (hidden folders,
    virtual environments, ``node_modules`` and ``__pycache__`` skipped), for ``*.tests.yaml``,
    ``*_tests.yaml`` and their ``.yml`` forms in any case; what a folder holds that cannot be
    read is named with its reason instead of read (a broken link, a link loop, a pipe that
    would block the run, a sub-folder that cannot be listed), and a folder with no tests file
    is itself returned, with :data:`NO_TESTS_FILES`. A file named twice (another spelling,
    a link, inside a folder also given) is returned once, as first named.
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[str] = set()

    def add(path: Path, why: str | None) -> None:
        # By real path, as validate counts files: its cases would run and count twice.
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append((path, why))

    for raw in paths:
        path = Path(raw)
        if path_kind(path) != "directory":
            add(path, None)
            continue
        files = folder_files(path, is_tests_name)
        if not files:
            add(path, NO_TESTS_FILES)
        for file, why in files:
            if why is not None:
                message, hint = why
                message = message.replace("the policy file", "the tests file")
                add(file, f"{message} ({hint})" if hint else message)
            else:
                add(file, None)
    return found


def find_tests_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The tests files named by ``paths`` (see :func:`locate_tests_files`), without the
    folders that hold none."""
    return [path for path, why in locate_tests_files(paths) if why != NO_TESTS_FILES]


# --------------------------------------------------------------------------- running


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Policies:
    """Loads the policy once per distinct ``env`` (``${ENV}`` references resolve at load).

    Each policy draws ``weighted`` orders from :attr:`rng`, which the runner seeds before
    routing a case, so that a case routes the same way on every run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rng = random.Random(SEEDS[0])
        self._cache: dict[frozenset[tuple[str, str]], CompiledPolicy] = {}

    def get(self, env: Mapping[str, str]) -> CompiledPolicy:
        from policyroute.policy.loader import load_policy

        key = frozenset(env.items())
        if key not in self._cache:
            self._cache[key] = load_policy(self.path, rng=self.rng)
        return self._cache[key]


def _decide(
    policy: CompiledPolicy,
    request: Mapping[str, Any],
    expected: Mapping[str, Any],
    token_counter: TokenCounter | None,
) -> dict[str, Any]:
    """Everything routing decided that a case may expect, or the error it raised.

    An expected ``error`` names a class: a subclass raised counts as it (every refusal a
    valid policy gives is a ``NoCandidateError``, which is a ``RoutingError``).
    """
    from policyroute.policy.facts import request_from_mapping

    try:
        decision = policy.route(
            request_from_mapping(request), token_counter=token_counter, trace=False
        )
    except RoutingError as exc:
        if "error" not in expected:
            return {"error": _describe(exc)}
        raised = [cls.__name__ for cls in type(exc).__mro__]
        return {"error": expected["error"] if expected["error"] in raised else raised[0]}
    aliases = [c.alias for c in decision.candidates]
    return {
        "route": decision.route,
        "model": aliases[0] if aliases else None,
        "candidates": aliases,
        "params": plain(decision.params),
        "budgets": [b.name for b in decision.budgets],
    }


def _as_expected(decided: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """What routing decided, cut to the keys ``expected`` gives (route and model when it
    expects an error that did not come).

    The budgets in scope are a set (every one is charged; none is tried before another, as
    candidates are): listed in another order than the policy's, the same budgets are given
    in the expected order, so they compare equal.
    """
    if "error" in decided:
        return dict(decided)
    wanted = [k for k in EXPECT_KEYS if k in expected and k != "error"] or ["route", "model"]
    actual = {k: decided[k] for k in wanted}
    if "budgets" in actual and sorted(expected["budgets"]) == sorted(actual["budgets"]):
        actual["budgets"] = list(expected["budgets"])
    return actual


def _actual(
    policies: _Policies,
    policy: CompiledPolicy,
    request: Mapping[str, Any],
    expected: Mapping[str, Any],
    token_counter: TokenCounter | None,
) -> tuple[dict[str, Any], str | None]:
    """What routing decided, as ``expected`` is written, and a problem when the case expects
    an order that ``weighted`` groups draw differently from call to call."""
    policies.rng.seed(SEEDS[0])
    decided = _decide(policy, request, expected, token_counter)
    actual = _as_expected(decided, expected)
    # The route decided, whether or not the case expects one: `expect: {model: a}` alone on a
    # weighted route depends on the draw as much as it does beside `route`.
    route = next((r for r in policy.spec.routes if r.name == decided.get("route")), None)
    ordered = [k for k in ("model", "candidates") if k in expected]
    if route is None or not ordered:
        return actual, None
    groups = weighted_groups(route.to.names, policy.spec.groups)
    if not groups:
        return actual, None
    for seed in SEEDS[1:]:
        policies.rng.seed(seed)
        draw = _as_expected(_decide(policy, request, expected, token_counter), expected)
        if all(draw.get(k) == actual.get(k) for k in ordered):
            continue
        key = next(k for k in ordered if draw.get(k) != actual.get(k))
        named = ("groups " if len(groups) > 1 else "group ") + ", ".join(map(repr, groups))
        return actual, (
            f"'expect.{key}' depends on chance: route {route.name!r} orders its candidates at"
            f" random by weight ({named}), and two draws gave"
            f" {actual.get(key)!r} and {draw.get(key)!r}; expect 'route', 'params' or"
            " 'budgets' of this request instead"
        )
    return actual, None


def _case_env(env: Mapping[str, Any], index: int, doc: LoadedDocument) -> dict[str, str]:
    """The values case ``index`` sets its variables to: a number or boolean as it is written
    (``true``, ``1.10``, ``007``), not as Python renders what YAML read (``True``, ``1.1``,
    ``7``), which no program reading the variable expects."""
    values: dict[str, str] = {}
    for name, value in env.items():
        written = None if isinstance(value, str) else doc.source_text(("cases", index, "env", name))
        values[str(name)] = str(value) if written is None else written
    return values


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
    problem = check_case(raw, lambda path: doc.locate(("cases", index, *path), key=True).line)
    if problem is not None:
        return CaseResult(doc.file, line, name, {}, {}, error=problem)
    expected = {k: plain(raw["expect"][k]) for k in EXPECT_KEYS if k in raw["expect"]}
    env = _case_env(raw.get("env", {}), index, doc)
    try:
        with environment(env):
            policy = policies.get(env)
            problem = unknown_names(expected, policy.spec)
            if problem is not None:
                return CaseResult(doc.file, line, name, expected, {}, error=problem)
            actual, problem = _actual(policies, policy, raw["request"], expected, token_counter)
    except RequestError as exc:
        # The case's line heads the failure; the field's own line says where in the request.
        field = request_error_path(str(exc), raw["request"])
        at = ""
        if field is not None:
            path, key = field
            at = f" at line {doc.locate(('cases', index, 'request', *path), key=key).line}"
        problem = f"bad request{at}: {exc}"
        return CaseResult(doc.file, line, name, expected, {}, error=problem)
    except PolicyValidationError as exc:
        if not env:
            raise
        # Invalid without the case's env too: the whole file is in error, said once.
        policies.get({})
        found = "; ".join(d.format() for d in exc.diagnostics if d.severity == "error")
        problem = f"the policy is invalid with this case's env: {found}"
        return CaseResult(doc.file, line, name, expected, {}, error=problem)
    return CaseResult(doc.file, line, name, expected, actual, error=problem)


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
    from policyroute._files import read_at_most
    from policyroute.policy.load import MAX_CHARS, load_yaml, not_utf8
    from policyroute.policy.validate import MAX_FILE_BYTES

    try:
        # Bounded, as a policy is read: an endless pipe (`policyroute test <(yes)`) ends too.
        data = read_at_most(path, MAX_FILE_BYTES)
        if len(data) > MAX_FILE_BYTES:
            return None, [
                f"{path}: the tests file is more than {MAX_FILE_BYTES:,} bytes long; a tests"
                f" file has at most {MAX_CHARS:,} characters (is this the right file?)"
            ]
        text = data.decode("utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read tests file: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: the tests file is {not_utf8(data, exc)}"]
    # A tests file grows with its cases: only what aliases add counts against the node limit.
    doc = load_yaml(text, file=str(path), what="tests file", count_written=False)
    problems = [d.format() for d in doc.diagnostics if d.severity == "error"]
    data = doc.data
    if problems:
        return None, problems
    if not isinstance(data, Mapping):
        return None, [f"{path}: a tests file must be a mapping with 'policy' and 'cases'"]
    if "policyroute" in data and "cases" not in data:
        # `policyroute test policies/` names the folder; `test p.yaml` names a policy.
        return None, [
            f"{path}: this is a policy, not a tests file (which has 'policy' and 'cases');"
            " check a policy with policyroute validate, and test it from a tests file whose"
            " 'policy' names it"
        ]
    unknown = [k for k in data if k not in _FILE_KEYS and not _is_extension(k)]
    if unknown:
        where = doc.locate((unknown[0],), key=True)
        named = with_hints(sorted(map(str, unknown)), _FILE_KEYS)
        problems.append(
            f"{path}:{where.line}: unknown key(s) {named}; a tests file has policy, cases and"
            " description (and x-... keys, a place for YAML anchors)"
        )
    for key, wanted, kind in (
        ("policy", "the policy file's path, relative to this file", str),
        ("cases", "a non-empty list of cases", list),
    ):
        if key not in data:
            problems.append(f"{path}: '{key}' is missing: give {wanted}")
        elif not isinstance(data[key], kind) or not data[key]:
            line = doc.locate((key,), key=True).line
            problems.append(f"{path}:{line}: '{key}' must be {wanted}, got {value_kind(data[key])}")
    if "description" in data and not isinstance(data["description"], str):
        line = doc.locate(("description",), key=True).line
        problems.append(f"{path}:{line}: {not_text('description', data['description'])}")
    return (None, problems) if problems else (doc, [])


def _is_extension(key: Any) -> bool:
    """Whether ``key`` is an ``x-...`` key, passed over as in a policy (a place for anchors)."""
    return isinstance(key, str) and key.startswith("x-")


def _policy_path_hint(written: str, tests_path: Path) -> str:
    """What a ``policy`` path that names no file was likely meant to say, or ``""``: it is read
    relative to the tests file, not the current directory, and as written (no ``~``, no
    ``${...}``)."""
    if written.startswith("~") or "$" in written:
        return " (the path is read as written: ~ and ${...} are not expanded)"
    meant = Path(written)
    if meant.is_absolute() or path_kind(meant) != "file":
        return ""
    relative = Path(os.path.relpath(meant.resolve(), tests_path.parent.resolve())).as_posix()
    return (
        f" (the path is relative to the tests file, not the current directory: write"
        f" 'policy: {relative}')"
    )


def run_tests_file(
    path: str | os.PathLike[str], *, token_counter: TokenCounter | None = None
) -> SuiteResult:
    """Run every case of one tests file.

    ``token_counter`` replaces litellm's counter for ``input_tokens`` conditions. Problems
    that keep the whole file from running (unreadable file, invalid policy) are returned in
    ``problems`` rather than raised; a policy that only a case's ``env`` makes invalid fails
    that case.
    """
    tests_path = Path(path)
    doc, problems = _load_tests_doc(tests_path)
    if doc is None:
        return SuiteResult(str(tests_path), None, (), tuple(problems))
    policy_path = tests_path.parent / str(doc.data["policy"])
    kind = path_kind(policy_path)
    if kind != "file":
        line = doc.locate(("policy",)).line
        if kind == "directory":
            why, hint = "'policy' names a directory", ""
        elif kind != "missing":  # a pipe or a device: never read, as in a folder
            why, hint = "'policy' names a pipe or device, not a policy file", ""
        else:
            why, hint = (
                "policy file not found",
                _policy_path_hint(str(doc.data["policy"]), tests_path),
            )
        return SuiteResult(
            str(tests_path),
            str(policy_path),
            (),
            (f"{tests_path}:{line}: {why}: {policy_path}{hint}",),
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
    """Run the tests files named by ``paths`` (files, or folders of ``*.tests.yaml``); what
    cannot be run is a result with its problem (see :func:`locate_tests_files`)."""
    return [
        run_tests_file(path, token_counter=token_counter)
        if why is None
        else SuiteResult(str(path), None, (), (f"{path}: {why}",))
        for path, why in locate_tests_files(paths)
    ]
