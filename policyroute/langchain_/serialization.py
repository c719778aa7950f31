"""Where ``ChatPolicyRoute`` finds its policy when none is given, and how it is serialised.

A policy serialises as what names it, never as what it resolves to: a path as the path, YAML
text as the text, in which keys are ``${VAR}`` references (the policy language refuses literal
keys, PR120). What cannot be rebuilt from the serialised form, or may carry a secret, is
written as LangChain's ``not_implemented`` entry, whose ``repr`` says why; ``load`` refuses it
unless told ``ignore_unserializable_fields=True``. Every callback and tracer of every run is
sent the serialised model, so the test for a secret errs on the side of withholding the text:
any literal user info or query string in a URL, any literal credential-like header.

Example:
    >>> import os
    >>> os.environ[POLICY_ENV] = "policies/tiered.yaml"
    >>> policy_from_env()
    'policies/tiered.yaml'
    >>> del os.environ[POLICY_ENV]
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from langchain_core.load.serializable import Serializable, SerializedNotImplemented

from policyroute.errors import PolicyError
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.load import JsonPath, format_path, is_policy_text, load_yaml
from policyroute.policy.model import PolicySpec, Secret

__all__ = [
    "POLICY_ENV",
    "Withheld",
    "constructor_kwargs",
    "policy_from_env",
    "secret_risks",
    "serialised_policy",
]

POLICY_ENV = "POLICYROUTE_POLICY"
"""The environment variable read when ``ChatPolicyRoute`` is given no policy."""

# Header names whose values are credentials by convention (Authorization, X-Api-Key, ...).
_SECRET_HEADER = re.compile(
    r"auth|key|token|secret|cookie|passw|signature|credential|session|jwt|bearer", re.I
)
# Header values that are credentials whatever the header is called: an HTTP auth scheme, or the
# prefix of a well-known key format (OpenAI/Anthropic, GitHub, Google, Slack, AWS, JWT).
_SECRET_VALUE = re.compile(
    r"^\s*(?:(?:bearer|basic|digest|token|apikey|negotiate)\s+\S"
    r"|(?-i:sk-|ghp_|gho_|ghs_|github_pat_|AIza|xox[abpr]-|AKIA|eyJ))",
    re.I,
)
# An HTTP auth scheme on its own: what is left of ``Bearer ${TOKEN}`` once the reference is gone.
_AUTH_SCHEME = re.compile(r"^\s*(?:bearer|basic|digest|token|apikey|negotiate)?\s*$", re.I)
_REF = re.compile(r"\$\{[^}]*\}")


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
            " file's path or its YAML text"
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


def constructor_kwargs(
    kwargs: dict[str, Any],
    policy: str | os.PathLike[str] | CompiledPolicy,
    compiled: CompiledPolicy,
    accounting: object | None,
) -> None:
    """Fix LangChain's constructor ``kwargs`` of a model in place: the policy as
    :func:`serialised_policy` writes it, and any accounting object withheld.

    Example:
        >>> kwargs = {"policy": "policies/tiered.yaml"}
        >>> constructor_kwargs(kwargs, "policies/tiered.yaml", compiled, None)  # doctest: +SKIP
        >>> kwargs  # doctest: +SKIP
        {'policy': 'policies/tiered.yaml'}
    """
    kwargs["policy"] = serialised_policy(policy, compiled)
    if accounting is not None:
        kwargs["accounting"] = Withheld.of(
            accounting,
            "accounting objects hold live state (budget stores, sinks) and are not"
            " serialised; load with ignore_unserializable_fields=True to rebuild the model"
            " with the policy's own budgets and receipts",
        )


def serialised_policy(
    policy: str | os.PathLike[str] | CompiledPolicy, compiled: CompiledPolicy
) -> str | Withheld:
    """What ``policy`` (compiled as ``compiled``) is serialised as: its path, its text, or a
    :class:`Withheld`.

    A :class:`CompiledPolicy` loaded from a file serialises as that file's path, and a path as
    itself (the file is not read); one compiled from text or built in code has nothing to be
    rebuilt from. Policy text serialises as itself unless it may hold a secret: a URL
    (``api_base``, ``store.url``) with user info, a query string or a fragment written in the
    text rather than through ``${VAR}`` references, a literal credential in ``extra_headers``,
    or the value of a secret the policy takes from the environment. The ``repr`` of the
    :class:`Withheld` names the fields, never their values.

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
    risks = sorted(set(secret_risks(text, compiled.spec)))
    if risks:
        return Withheld.of(
            policy,
            "the policy text may hold a secret (" + "; ".join(risks) + "); move it to an"
            " ${ENV_VAR} reference or give ChatPolicyRoute the policy's path",
        )
    return text


def secret_risks(text: str, spec: PolicySpec) -> Iterator[str]:
    """Why ``text`` (which compiled to ``spec``) may hold a secret: one line per field, naming
    the field and never its value; nothing for a policy safe to write out.

    The policy is judged on its parsed values, so YAML quoting and escapes hide nothing, and
    conservatively: any literal user info or query string in a URL counts, whether or not it
    really is a credential.

    Example:
        >>> spec = PolicySpec(name="p", version=1, models={}, groups={}, routes=())
        >>> list(secret_risks("store: {url: 'redis://:pw@host'}\\n", spec))
        ['store.url has user info']
        >>> list(secret_risks("store: {url: 'redis://:${REDIS_PASSWORD}@host'}\\n", spec))
        []
    """
    parsed = _parse(text)
    if parsed is None:
        yield "the policy text cannot be read again"
        return
    literal, strings = parsed
    flagged: set[str] = set()
    for field, problem in literal:
        flagged.add(field)
        yield f"{field} {problem}"
    # A secret taken from the environment must not sit in the text as well, in any field or
    # comment: compared both with the text (comments) and with every parsed string (escapes).
    for field, value in _environment_secrets(spec):
        if field in flagged or not value:
            continue
        if value in text or any(value in s for s in strings):
            flagged.add(field)
            yield f"the value of {field} is written in the text"


@functools.lru_cache(maxsize=16)
def _parse(text: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]] | None:
    """The literal risks and every string of ``text``, ``None`` if it cannot be parsed.

    Cached: parsing takes milliseconds and every new model on the same text serialises it.
    """
    data = load_yaml(text).data
    if not isinstance(data, dict):
        return None
    return tuple(_literal_risks(data)), tuple(value for _, value in _strings(data, ()))


def _literal_risks(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, problem) for every URL or header of the parsed policy that may hold a secret."""
    models = data.get("models")
    for alias, model in models.items() if isinstance(models, dict) else ():
        if isinstance(model, dict):
            yield from _url_risks(model.get("api_base"), ("models", alias, "api_base"))
            yield from _header_risks(model.get("params"), ("models", alias, "params"))
    routes = data.get("routes")
    for i, route in enumerate(routes if isinstance(routes, list) else ()):
        if isinstance(route, dict):
            yield from _header_risks(route.get("params"), ("routes", i, "params"))
    store = data.get("store")
    if isinstance(store, dict):
        yield from _url_risks(store.get("url"), ("store", "url"))


def _url_risks(url: object, where: JsonPath) -> Iterator[tuple[str, str]]:
    """User info, a query string or a fragment written literally in ``url``."""
    if not isinstance(url, str):
        return
    # ``${VAR}`` references are written as names, not values: only what is left can leak.
    literal = _REF.sub("", url)
    _, sep, rest = literal.partition("://")
    if not sep:
        rest = literal
    # Broader than urlsplit on purpose: an ``@`` or ``?`` anywhere past the scheme counts, so
    # a password holding ``/`` or ``#`` cannot slip into what a parser would call the path.
    userinfo, at, _ = rest.rpartition("@")
    if at and userinfo.replace(":", ""):
        yield format_path(where), "has user info"
    _, question, query = rest.partition("?")
    if question and query:
        yield format_path(where), "has a query string"
    _, hash_, fragment = rest.partition("#")
    if hash_ and fragment:
        yield format_path(where), "has a fragment"


def _header_risks(params: object, where: JsonPath) -> Iterator[tuple[str, str]]:
    """Header values in ``params`` that look like credentials and are written literally."""
    headers = params.get("extra_headers") if isinstance(params, dict) else None
    for name, value in headers.items() if isinstance(headers, dict) else ():
        text = str(value)
        looks_secret = _SECRET_HEADER.search(str(name)) or _SECRET_VALUE.search(text)
        if looks_secret and not _AUTH_SCHEME.match(_REF.sub("", text)):
            yield format_path((*where, "extra_headers", name)), "is a literal credential"


def _strings(value: object, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    """Every string in the parsed policy, mapping keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), str(key)
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def _environment_secrets(spec: PolicySpec) -> Iterator[tuple[str, str]]:
    """(field, value) for every secret the compiled policy took from the environment."""
    for alias, model in spec.models.items():
        if model.api_key is not None:
            yield format_path(("models", alias, "api_key")), model.api_key.reveal() or ""
        if model.api_base is not None:
            for value in _url_credentials(model.api_base):
                yield format_path(("models", alias, "api_base")), value
    url = spec.store.url
    if isinstance(url, Secret):
        url = url.reveal()
    if url is not None:
        for value in _url_credentials(url):
            yield "store.url", value


def _url_credentials(url: str) -> Iterator[str]:
    """The user name, password and query values of an expanded URL."""
    try:
        parts = urlsplit(url)
        yield parts.username or ""
        yield parts.password or ""
        for _, value in parse_qsl(parts.query):
            yield value
    except ValueError:
        return
