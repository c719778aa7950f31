"""Checks of what a call sends over HTTP: a deployment's ``api_base`` (an http(s) URL, and
credentials that hide the key) and the ``extra_headers`` of a model's or route's ``params``.

Both run on the URL a call would use: ``${ENV_VAR}`` references are expanded first, from the
environment the policy is validated with (the one it is built with), and a URL with an unset
variable is left to PR119. No message shows the URL or any part of a variable's value: either
may hold a password.

- PR136: litellm sends every provider call over HTTP, so anything but an ``http://`` or
  ``https://`` URL with a host (no scheme, ``ftp:``, ``unix:``, a space or line break inside)
  fails every call at send time, with a connection error that is retried and fallen over.
- PR135: user info in the URL (``http://user:pw@gateway/v1``) is sent as ``Authorization:
  Basic ...`` (see :mod:`policyroute.execution.url_credentials`), which takes the place of the
  ``Authorization: Bearer <api_key>`` header of an OpenAI-format deployment: the key is never
  sent. Providers that send their key in a header of its own keep it.
- PR140: a header value httpx cannot send (a character outside ASCII, a line break or another
  control character, a space or tab at either end) fails every call at send time, inside the
  HTTP client, with an error that reads as the provider's and is retried and fallen over.

Example:
    >>> url_problem("https://api.example.com/v1") is None
    True
    >>> url_problem("api.example.com/v1")
    'has no scheme'
    >>> key_header("anthropic/claude-haiku-4-5"), key_header("openai/gpt-4o-mini")
    ('x-api-key', 'Authorization')
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from policyroute.api_headers import header_value_problem
from policyroute.policy.envrefs import env_names, expand_env

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = [
    "authority_problem",
    "blank_problem",
    "check_endpoints",
    "check_param_headers",
    "key_header",
    "url_problem",
]

# litellm providers whose key travels in a header other than Authorization (litellm 1.8x:
# AnthropicModelInfo.validate_environment, the openai SDK's AzureOpenAI client, and
# VertexBase._get_token_and_url for Google AI Studio). Every other provider, the
# OpenAI-compatible ones and Bedrock's bearer keys among them, sends ``Bearer <key>``.
_OWN_HEADER = {"anthropic": "x-api-key", "azure": "api-key", "gemini": "x-goog-api-key"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_NAMED = {"line break": "\n\r", "space": " ", "tab": "\t"}


def key_header(model: str) -> str:
    """The header litellm sends a deployment's ``api_key`` in, from its model string.

    Example:
        >>> key_header("azure/my-gpt-4o"), key_header("claude-sonnet-4-5")
        ('api-key', 'x-api-key')
    """
    prefix, slash, _ = model.partition("/")
    if not slash:
        prefix = "anthropic" if model.lower().startswith("claude") else "openai"
    return _OWN_HEADER.get(prefix, "Authorization")


def blank_problem(url: str) -> str | None:
    """The space, line break, tab or control character ``url`` holds, as a phrase that follows
    "the URL"; ``None`` when it holds none. No URL has one that means what its author meant.

    Example:
        >>> blank_problem("redis://cache :6379"), blank_problem("https://gw/v1")
        ('holds a space', None)
    """
    for name, chars in _NAMED.items():
        if any(ch in url for ch in chars):
            return f"holds a {name}"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "holds a control character"
    return None


def authority_problem(url: str) -> str | None:
    """The phrase that follows "the URL" when ``url``'s host or port cannot be read (a port
    that is not a number, a bracket left open); ``None`` when both can. ``urlsplit`` and
    ``urlparse`` read the authority alike, so this holds for a caller of either.

    Example:
        >>> authority_problem("redis://cache:63x9"), authority_problem("https://[::1]:8080/v1")
        ('has a malformed host or port', None)
    """
    try:
        urlsplit(url).port  # noqa: B018 - reading it checks it: a port that is not a number raises
    except ValueError:
        return "has a malformed host or port"
    return None


def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being an ``http(s)://`` URL with a host, as a phrase that
    follows "the URL"; ``None`` when it is one. The phrase never quotes the URL.

    Example:
        >>> url_problem("ftp://files.example.com"), url_problem("http://gw/v1\\n")
        ("uses the scheme 'ftp'", 'holds a line break')
    """
    blank = blank_problem(url)
    if blank is not None:
        return blank
    scheme = _SCHEME.match(url)
    if scheme is None or not url[scheme.end() :].startswith("//"):
        # "localhost:11434" reads as the scheme "localhost": naming it would mislead
        return "has no scheme"
    if scheme.group(1).lower() not in ("http", "https"):
        return f"uses the scheme {scheme.group(1).lower()!r}"
    malformed = authority_problem(url)
    if malformed is not None:
        return malformed
    if not urlsplit(url).hostname:
        return "has no host"
    return None


def _has_credentials(url: str) -> bool:
    # urlsplit reads the user info as httpx does (up to the authority's last "@"), and
    # httpx, like url_credentials.basic_authorization, sends nothing for "http://:@host".
    # That module is not imported: validation stays clear of the execution package.
    parts = urlsplit(url)
    return bool(parts.username or parts.password)


def check_endpoints(c: Checker) -> None:
    """PR136 an ``api_base`` that is not an http(s) URL; PR135 one whose user info replaces
    the deployment's ``api_key``."""
    for alias, model in c.models.items():
        if not isinstance(model, dict):
            continue
        base = model.get("api_base")
        if not isinstance(base, str) or not base:
            continue  # the schema reports it
        url = expand_env(base, c.environ)
        if url is None:
            continue  # an unset variable: PR119
        path = ("models", alias, "api_base")
        refs = ", ".join(f"${{{name}}}" for name in dict.fromkeys(env_names(base)))
        after = f" (with {refs} expanded)" if refs else ""
        problem = url_problem(url)
        if problem is not None:
            c.emit(
                "PR136",
                path,
                f"api_base{after} is not an http:// or https:// URL: it {problem}",
                hint="litellm reaches every provider over HTTP; give a URL such as"
                " https://gateway.example.com/v1",
            )
            continue
        _check_credentials(c, alias, model, url, after)


def _check_credentials(c: Checker, alias: str, model: dict[str, Any], url: str, after: str) -> None:
    name = model.get("model")
    if "api_key" not in model or not isinstance(name, str):
        return
    if not _has_credentials(url) or key_header(name) != "Authorization":
        return
    c.emit(
        "PR135",
        ("models", alias, "api_base"),
        f"api_base{after} holds credentials (user info before '@'), sent as 'Authorization:"
        " Basic ...' in place of the 'Authorization: Bearer' header that would carry the"
        f" api_key of {name!r}: the key never reaches the provider",
        hint="if the gateway adds the key itself, remove api_key; otherwise take the"
        " credentials out of api_base",
    )


def check_param_headers(c: Checker) -> None:
    """PR140: a value in a model's or route's ``params.extra_headers`` that httpx cannot send.
    Names and types are the schema's (PR013, PR012); the value is never shown."""
    owners: list[tuple[str | int, Any]] = list(c.models.items())
    owners += [(i, route) for i, route in enumerate(c.routes)]
    for key, owner in owners:
        params = owner.get("params") if isinstance(owner, dict) else None
        headers = params.get("extra_headers") if isinstance(params, dict) else None
        if not isinstance(headers, dict):
            continue
        where = "models" if isinstance(key, str) else "routes"
        for name, value in headers.items():
            problem = header_value_problem(value) if isinstance(value, str) else None
            if problem is None:
                continue
            c.emit(
                "PR140",
                (where, key, "params", "extra_headers", name),
                f"header {name!r} {problem}",
            )
