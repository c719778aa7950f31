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
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from policyroute._files import dangling_link, path_kind, read_at_most
from policyroute.policy.diagnostics import Diagnostic
from policyroute.policy.load import MAX_CHARS, not_utf8
from policyroute.policy.model import PolicySpec

if TYPE_CHECKING:
    from policyroute.policy.load import LoadedDocument

__all__ = [
    "MAX_FILE_BYTES",
    "ValidationResult",
    "folder_files",
    "is_tests_name",
    "validate_file",
    "validate_paths",
    "validate_text",
]


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
    tests_file = _tests_file(doc)
    if tests_file is not None:
        # Checked against the policy schema, every key of a tests file is unknown and every
        # key of a policy missing: none of those would say what the file is.
        diagnostics.append(tests_file)
    elif doc.data is not None:
        diagnostics += _unseen(schema_diagnostics(doc), diagnostics)
        diagnostics += _unseen(
            semantic_diagnostics(doc, strict=strict, environ=environ), diagnostics
        )
        if all(d.severity != "error" for d in diagnostics):
            spec = build_spec(doc, environ=environ)
    diagnostics.sort(key=_sort_key)
    return ValidationResult(file, spec, tuple(diagnostics), content_hash, strict)


def _tests_file(doc: LoadedDocument) -> Diagnostic | None:
    """PR018 when ``doc`` is a policy tests file (``cases`` and no ``policyroute``), naming
    the policy its ``policy`` key gives, relative to the file as ``policyroute test`` reads it.

    Example:
        >>> found = validate_text("policy: p.yaml\\ncases: []\\n").diagnostics[0]
        >>> found.code, found.message.endswith("its cases test the policy 'p.yaml'")
        ('PR018', True)
    """
    data = doc.data
    if not isinstance(data, Mapping) or "cases" not in data or "policyroute" in data:
        return None
    written = data.get("policy")
    hint = "run it with 'policyroute test'"
    if isinstance(written, str) and written:
        named = written
        if not doc.file.startswith("<"):
            named = os.path.normpath(os.path.join(os.path.dirname(doc.file), written))
        message = f"its cases test the policy {named!r}"
        hint += "; give 'validate' or 'explain' the policy it names"
        where = doc.locate(("policy",), key=True)
    else:
        message = "it names no policy (add 'policy: <path of the policy, relative to it>')"
        where = doc.locate(("cases",), key=True)
    if not doc.file.startswith("<") and not is_tests_name(os.path.basename(doc.file)):
        # In a folder, validate reads it as a policy and test passes it over, by its name.
        hint += "; name it *.tests.yaml so that a folder's tests files are told from its policies"
    message = f"this is a tests file for 'policyroute test', not a policy: {message}"
    return Diagnostic("PR018", message, "", doc.file, where.line, where.column, hint=hint)


def validate_text(
    text: str,
    *,
    file: str = "<string>",
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ValidationResult:
    """Validate policy YAML given as text; ``environ`` defaults to ``os.environ``.

    Raises ``TypeError`` when ``text`` is not a string (bytes, a path object, ``None``).

    Example:
        >>> validate_text(b"policyroute: 1")
        Traceback (most recent call last):
        TypeError: the policy's text must be a str, got bytes (decode it first, ...)
    """
    if not isinstance(text, str):
        hint = (
            " (decode it first, or pass the file's path to load_policy)"
            if isinstance(text, (bytes, bytearray))
            else " (a path goes to load_policy)"
            if isinstance(text, os.PathLike)
            else ""
        )
        raise TypeError(f"the policy's text must be a str, got {type(text).__name__}{hint}")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    env = os.environ if environ is None else environ
    return _validate(text, file=file, strict=strict, environ=env, content_hash=digest)


# UTF-8 spends at most 4 bytes on a character: a file longer than this holds more characters
# than a policy may have, and reading stops here (an endless pipe, a multi-gigabyte file).
MAX_FILE_BYTES = 4 * MAX_CHARS


def validate_file(path: str | os.PathLike[str], *, strict: bool = False) -> ValidationResult:
    """Validate the policy file at ``path``; an unreadable file is a PR001 diagnostic.

    At most :data:`MAX_FILE_BYTES` bytes are read: a longer file, an endless pipe
    (``<(yes)``) or a device is a PR009 diagnostic that names the limit.

    Example:
        >>> validate_file("policies/missing.yaml").diagnostics[0].code
        'PR001'
        >>> validate_file("/dev/zero").diagnostics[0].message
        'the policy file is more than 2,097,152 bytes long; a policy has at most 524,288 characters'
    """
    name = os.fspath(path)
    try:
        data = read_at_most(name, MAX_FILE_BYTES)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _unreadable(name, f"cannot read the policy file: {reason}", "")
    except ValueError as exc:  # a name no file can have: open() refuses it before trying
        reason = (
            "its name cannot be written as a file name"
            if isinstance(exc, UnicodeError)
            else "its name holds a NUL character"
        )
        return _unreadable(name, f"cannot read the policy file: {reason}", "")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_FILE_BYTES:
        message = (
            f"the policy file is more than {MAX_FILE_BYTES:,} bytes long;"
            f" a policy has at most {MAX_CHARS:,} characters"
        )
        too_long = Diagnostic("PR009", message, "", name, hint="is this the right file?")
        return ValidationResult(name, None, (too_long,), digest, strict)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unreadable(name, f"the file is {not_utf8(data, exc)}", digest)
    return _validate(text, file=name, strict=strict, environ=os.environ, content_hash=digest)


def _unreadable(
    file: str, message: str, digest: str = "", hint: str | None = None
) -> ValidationResult:
    diagnostic = Diagnostic("PR001", message, "", file, hint=hint)
    return ValidationResult(file, None, (diagnostic,), digest)


def _not_read(file: str, problem: tuple[str, str | None]) -> ValidationResult:
    message, hint = problem
    return _unreadable(file, message, hint=hint)


def validate_paths(
    paths: Iterable[str | os.PathLike[str]], *, strict: bool = False
) -> list[ValidationResult]:
    """Validate files and folders, in the order given; each folder's files in sorted order.

    A path given is validated whatever its name (``.github/policy.yaml`` too). In a folder,
    the files validated are those ending in ``.yaml`` or ``.yml`` (in any case), searched
    through its sub-folders, except:

    - policy tests files (``*.tests.yaml``, ``*_tests.yaml``; ``policyroute test`` runs them);
    - anything hidden below the folder: a file or folder whose name starts with ``.``
      (``.github/workflows``, ``.pre-commit-config.yaml``, ``.venv``, ``.git``);
    - ``node_modules``, ``__pycache__`` and Python virtual environments (a folder holding
      ``pyvenv.cfg``, such as ``venv/``): what they hold is other projects' YAML.

    Links to folders are not followed (so a link loop cannot recur); links to files are. What
    cannot be validated is reported in its place with PR001 instead of skipped: a broken
    link or a link loop, a pipe or device (never read), a sub-folder that cannot be listed,
    and a folder with no policy file at all.

    Example:
        >>> [r.diagnostics[0].message for r in validate_paths(["policyroute/schema"])]
        ['no policy files in this folder']
    """
    results: list[ValidationResult] = []
    for path in paths:
        p = Path(path)
        if path_kind(p) != "directory":  # Path.is_dir raises on a name too long
            results.append(validate_file(p, strict=strict))
            continue
        found = [
            validate_file(f, strict=strict) if problem is None else _not_read(str(f), problem)
            for f, problem in folder_files(p)
        ]
        results.extend(found or [_not_read(os.fspath(path), _NO_POLICIES)])
    return results


_TEST_SUFFIXES = (".tests.yaml", "_tests.yaml", ".tests.yml", "_tests.yml")
_NOT_SEARCHED = frozenset({"node_modules", "__pycache__"})
_NO_POLICIES = (
    "no policy files in this folder",
    "policies end in .yaml or .yml; hidden folders, virtual environments, node_modules and"
    " *.tests.yaml files are not searched",
)


def _is_policy_name(name: str) -> bool:
    lower = name.lower()
    return (
        not name.startswith(".")
        and lower.endswith((".yaml", ".yml"))
        and not lower.endswith(_TEST_SUFFIXES)
    )


def is_tests_name(name: str) -> bool:
    """Whether ``name`` is a policy tests file's (``*.tests.yaml``, ``*_tests.yml``, any case).

    Example:
        >>> is_tests_name("routing.TESTS.yaml"), is_tests_name("routing.yaml")
        (True, False)
    """
    return not name.startswith(".") and name.lower().endswith(_TEST_SUFFIXES)


def _searched(folder: str, name: str) -> bool:
    return not (
        name.startswith(".")
        or name in _NOT_SEARCHED
        or os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))
    )


def folder_files(
    top: Path, wanted: Callable[[str], bool] = _is_policy_name
) -> list[tuple[Path, tuple[str, str | None] | None]]:
    """The files under ``top`` whose name is ``wanted`` (policy files by default), sorted, each
    with why it cannot be read (or ``None``); folders are searched as :func:`validate_paths`
    says."""
    found: list[tuple[Path, tuple[str, str | None] | None]] = []

    def unlisted(exc: OSError) -> None:
        # A sub-folder that cannot be listed would otherwise be passed over in silence.
        if exc.filename is not None and os.fspath(exc.filename) != os.fspath(top):
            reason = exc.strerror or type(exc).__name__
            found.append((Path(exc.filename), (f"cannot list this folder: {reason}", None)))

    for folder, dirs, files in os.walk(top, onerror=unlisted):
        dirs[:] = [d for d in dirs if _searched(folder, d)]
        for name in files:
            if wanted(name):
                file = Path(folder, name)
                found.append((file, _not_a_policy_file(file)))
    found.sort(key=lambda item: item[0])
    return found


def _not_a_policy_file(file: Path) -> tuple[str, str | None] | None:
    """Why ``file`` (found in a folder) cannot be read, or ``None`` when it is a file."""
    try:
        st = file.stat()
    except OSError as exc:
        dangling = dangling_link(file)
        if dangling is not None:
            return dangling
        return f"cannot read the policy file: {exc.strerror or type(exc).__name__}", None
    if stat.S_ISREG(st.st_mode):
        return None
    # A pipe would block until something writes to it; a device might never end.
    return "not a regular file (a pipe or device in a folder is never read)", None
