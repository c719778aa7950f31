"""Validate policy files: load, check against the schema, run the semantic checks, build.

Example:
    >>> result = validate_text("policyroute: 1\\nname: demo\\n"
    ...                        "models: {mini: {model: openai/gpt-4o-mini}}\\n"
    ...                        "routes: [{name: default, to: mini}]\\n")
    >>> result.ok, result.spec.routes[0].name
    (True, 'default')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from policyroute.policy.diagnostics import Diagnostic
from policyroute.policy.load import not_utf8
from policyroute.policy.model import PolicySpec

__all__ = ["ValidationResult", "validate_file", "validate_paths", "validate_text"]

_TEST_SUFFIXES = (".tests.yaml", "_tests.yaml", ".tests.yml", "_tests.yml")


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The outcome of validating one policy.

    ``spec`` is set only when there is no error. ``ok`` is false on any error, and under
    ``strict`` on any warning too.
    """

    file: str
    spec: PolicySpec | None
    diagnostics: tuple[Diagnostic, ...]
    content_hash: str
    strict: bool = False

    @property
    def ok(self) -> bool:
        """No errors (and, when strict, no warnings)."""
        if self.strict:
            return not self.diagnostics
        return all(d.severity != "error" for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics of severity ``error``."""
        return tuple(d for d in self.diagnostics if d.severity == "error")


def _sort_key(d: Diagnostic) -> tuple[int, int, str, str]:
    return (d.line, d.column, d.code, d.path)


# A value already reported as unreadable, of the wrong type or not allowed is one problem;
# later stages would only restate it.
_VALUE_CODES = frozenset({"PR004", "PR008", "PR009", "PR012", "PR013", "PR016"})


def _unseen(new: list[Diagnostic], earlier: list[Diagnostic]) -> list[Diagnostic]:
    taken = {d.path for d in earlier if d.code in _VALUE_CODES}
    return [d for d in new if d.path not in taken]


def _validate(
    text: str,
    *,
    file: str,
    strict: bool,
    environ: Mapping[str, str],
    content_hash: str,
) -> ValidationResult:
    from policyroute.policy.build import build_spec
    from policyroute.policy.checks import semantic_diagnostics
    from policyroute.policy.load import load_yaml
    from policyroute.policy.schema import schema_diagnostics

    doc = load_yaml(text, file=file)
    diagnostics = list(doc.diagnostics)
    spec = None
    if doc.data is not None:
        diagnostics += _unseen(schema_diagnostics(doc), diagnostics)
        diagnostics += _unseen(
            semantic_diagnostics(doc, strict=strict, environ=environ), diagnostics
        )
        if all(d.severity != "error" for d in diagnostics):
            spec = build_spec(doc, environ=environ)
    diagnostics.sort(key=_sort_key)
    return ValidationResult(file, spec, tuple(diagnostics), content_hash, strict)


def validate_text(
    text: str,
    *,
    file: str = "<string>",
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ValidationResult:
    """Validate policy YAML given as text; ``environ`` defaults to ``os.environ``."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    env = os.environ if environ is None else environ
    return _validate(text, file=file, strict=strict, environ=env, content_hash=digest)


def validate_file(path: str | os.PathLike[str], *, strict: bool = False) -> ValidationResult:
    """Validate the policy file at ``path``; an unreadable file is a PR001 diagnostic.

    Example:
        >>> validate_file("policies/missing.yaml").diagnostics[0].code
        'PR001'
    """
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _unreadable(name, f"cannot read the policy file: {reason}", "")
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unreadable(name, f"the file is {not_utf8(data, exc)}", digest)
    return _validate(text, file=name, strict=strict, environ=os.environ, content_hash=digest)


def _unreadable(file: str, message: str, digest: str) -> ValidationResult:
    return ValidationResult(file, None, (Diagnostic("PR001", message, "", file),), digest)


def validate_paths(
    paths: Iterable[str | os.PathLike[str]], *, strict: bool = False
) -> list[ValidationResult]:
    """Validate files and folders (recursing into ``*.yaml``/``*.yml``, skipping test files)."""
    results: list[ValidationResult] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.suffix in (".yaml", ".yml") and f.is_file()
                if not f.name.endswith(_TEST_SUFFIXES)
            )
            results.extend(validate_file(f, strict=strict) for f in found)
        else:
            results.append(validate_file(p, strict=strict))
    return results
