"""Where ``ChatPolicyRoute`` finds its policy when none is given, and how it is serialised.

A policy serialises as what names it, never as what it resolves to: a path as the path, YAML
text as the text, in which keys are ``${VAR}`` references (the policy language refuses literal
keys, PR120). What cannot be rebuilt from the serialised form, or would carry a secret, is
written as LangChain's ``not_implemented`` entry, whose ``repr`` says why; ``load`` refuses it
unless told ``ignore_unserializable_fields=True``.

Example:
    >>> import os
    >>> os.environ[POLICY_ENV] = "policies/tiered.yaml"
    >>> policy_from_env()
    'policies/tiered.yaml'
    >>> del os.environ[POLICY_ENV]
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from langchain_core.load.serializable import Serializable, SerializedNotImplemented

from policyroute.errors import PolicyError
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.model import PolicySpec, Secret

__all__ = ["POLICY_ENV", "Withheld", "is_policy_text", "policy_from_env", "serialised_policy"]

POLICY_ENV = "POLICYROUTE_POLICY"
"""The environment variable read when ``ChatPolicyRoute`` is given no policy."""

# Header names whose values are credentials by convention (Authorization, X-Api-Key, ...).
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|passw|signature|credential", re.I)


def is_policy_text(policy: object) -> TypeGuard[str]:
    """Whether ``policy`` is a policy's YAML text rather than a path: a string with a line break.

    Example:
        >>> is_policy_text("policyroute: 1\\nname: x\\n"), is_policy_text("policies/x.yaml")
        (True, False)
    """
    return isinstance(policy, str) and "\n" in policy


def policy_from_env() -> str:
    """The policy named by ``$POLICYROUTE_POLICY``: YAML text if it has a line break inside
    (as for ``policy=``), else a file's path, stripped of surrounding blanks and line breaks
    (a value written from a file often ends with one).

    Raises :class:`~policyroute.errors.PolicyError` saying what to set when it is unset or blank.
    """
    value = os.environ.get(POLICY_ENV, "")
    stripped = value.strip()
    if not stripped:
        raise PolicyError(
            "ChatPolicyRoute has no policy: pass policy=... (a policy file's path, its YAML text"
            f" or a CompiledPolicy) or set the environment variable {POLICY_ENV} to a policy"
            " file's path"
        )
    return value if is_policy_text(stripped) else stripped


class Withheld(Serializable):
    """Stands in for a value that is not serialised: ``dumpd`` writes it as a ``not_implemented``
    entry naming the value's class (``id``) and the reason (``repr``), and nothing of the value.

    Example:
        >>> Withheld.of(object(), "no reason").to_json()["id"]
        ['builtins', 'object']
    """

    id: list[str]
    reason: str

    @classmethod
    def of(cls, value: object, reason: str) -> Withheld:
        """A stand-in for ``value``, named by its class."""
        kind = type(value)
        return cls(id=[*kind.__module__.split("."), kind.__qualname__], reason=reason)

    def to_json(self) -> SerializedNotImplemented:  # type: ignore[override]
        return {"lc": 1, "type": "not_implemented", "id": list(self.id), "repr": self.reason}


def serialised_policy(
    policy: str | os.PathLike[str] | CompiledPolicy, compiled: CompiledPolicy
) -> str | Withheld:
    """What ``policy`` (compiled as ``compiled``) is serialised as: its path, its text, or a
    :class:`Withheld`.

    A :class:`CompiledPolicy` loaded from a file serialises as that file's path; one compiled
    from text or built in code has nothing to be rebuilt from. Policy text serialises as itself
    unless it holds a secret in a place where the language allows a literal (a password in a
    URL, a credential header in ``extra_headers``) or the value of a ``${VAR}`` it references.

    Example:
        >>> serialised_policy(Path("policies/tiered.yaml"), compiled)  # doctest: +SKIP
        'policies/tiered.yaml'
    """
    if isinstance(policy, CompiledPolicy):
        if policy.source is not None:
            return policy.source
        return Withheld.of(
            policy,
            f"{policy!r} was not loaded from a file, so there is nothing to rebuild it from;"
            " give ChatPolicyRoute the policy's path or YAML text to serialise it",
        )
    if not is_policy_text(policy):
        return os.fspath(policy)
    text = str(policy)
    # Exact, not a guess from the shape: a value is leaked only if it is in the text itself.
    leaked = [where for where, value in _secrets(compiled.spec) if value and value in text]
    if leaked:
        return Withheld.of(
            policy,
            "the policy text holds a secret (at " + ", ".join(sorted(set(leaked))) + "); move it"
            " to an ${ENV_VAR} reference or give ChatPolicyRoute the policy's path",
        )
    return text


def _secrets(spec: PolicySpec) -> Iterator[tuple[str, str]]:
    """(where, value) for every secret value the compiled policy holds."""
    for alias, model in spec.models.items():
        where = f"models.{alias}"
        if model.api_key is not None:
            yield f"{where}.api_key", model.api_key.reveal() or ""
        if model.api_base is not None:
            yield f"{where}.api_base", _url_password(model.api_base)
        yield from _header_secrets(model.params, f"{where}.params")
    for route in spec.routes:
        yield from _header_secrets(route.params, f"routes.{route.name}.params")
    url = spec.store.url
    if isinstance(url, Secret):
        url = url.reveal()
    if url is not None:
        yield "store.url", _url_password(url)


def _header_secrets(params: Mapping[str, Any], where: str) -> Iterator[tuple[str, str]]:
    headers = params.get("extra_headers") or {}
    for name, value in headers.items():
        if _SECRET_HEADER.search(name):
            yield f"{where}.extra_headers.{name}", str(value)


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
