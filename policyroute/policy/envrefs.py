"""``${ENV_VAR}`` references: where they are allowed, whether they are set, and literal keys.

Only ``models.<alias>.api_base``, ``models.<alias>.api_key`` and ``store.url`` are expanded.
``api_key`` must be exactly one reference, so a key never sits in a policy file. No message
ever shows the value of a variable or of a literal key.

Example:
    >>> env_names("http://${HOST}:${PORT}/v1")
    ['HOST', 'PORT']
    >>> is_single_ref("${OPENAI_API_KEY}")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from policyroute.policy.load import JsonPath

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_env", "env_names", "expand_env", "is_env_allowed", "is_single_ref"]

_REF = re.compile(r"\$\{([^}]*)\}")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SINGLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def env_names(text: str) -> list[str]:
    """The variable names referenced in ``text``, in order."""
    return _REF.findall(text)


def is_single_ref(text: str) -> bool:
    """Whether ``text`` is exactly one well-formed ``${VAR}`` reference."""
    return _SINGLE.fullmatch(text) is not None


def is_env_allowed(path: JsonPath) -> bool:
    """Whether ``${...}`` is expanded at ``path``."""
    if len(path) == 3 and path[0] == "models" and path[2] in ("api_base", "api_key"):
        return True
    return path == ("store", "url")


def expand_env(text: str, environ: Any) -> str | None:
    """``text`` with every ``${VAR}`` replaced; ``None`` if any variable is unset."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = environ.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return str(value)

    out = _REF.sub(sub, text)
    return None if missing else out


def _malformed(text: str) -> bool:
    """Whether a ``${`` in ``text`` is unclosed or names no valid variable (``${1HOST}``)."""
    names = env_names(text)
    return text.count("${") != len(names) or any(not _VAR.fullmatch(n) for n in names)


def _strings(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def check_env(c: Checker) -> None:
    """PR119 unset variables, PR120 literal api_key, PR121 misplaced refs, PR126 malformed."""
    for path, text in _strings(c.data, ()):
        is_key = len(path) == 3 and path[0] == "models" and path[2] == "api_key"
        if is_key and not is_single_ref(text) and not (text.startswith("${") and _malformed(text)):
            c.emit(
                "PR120",
                path,
                "api_key must be an ${ENV_VAR} reference; literal keys are not allowed",
                hint="write api_key: ${OPENAI_API_KEY} and set the variable",
            )
            continue
        if "${" not in text:
            continue
        if not is_env_allowed(path):
            c.emit(
                "PR121",
                path,
                "${...} is not expanded here",
                hint="environment references are allowed only in api_base, api_key and store.url",
            )
            continue
        if _malformed(text):
            c.emit(
                "PR126",
                path,
                "malformed ${...} reference",
                hint="write ${NAME} with letters, digits and '_', not starting with a digit",
            )
            continue
        for name in dict.fromkeys(env_names(text)):
            if name not in c.environ:
                c.emit(
                    "PR119",
                    path,
                    f"environment variable {name} is not set",
                    severity="error" if c.strict else "warning",
                )
