"""Redaction of receipt error messages: credentials always, prompt text unless kept.

Providers echo what they were sent: OpenAI names the rejected key by its first and last
characters (``Incorrect API key provided: sk-abc***``), proxies print URLs with their
credentials, OpenAI-compatible servers quote the request body, and exception ``repr``s carry
their arguments. A receipt keeps the shape of the message (what went wrong) without any of it.

Example:
    >>> scrub("Incorrect API key provided: sk-abc***.", secrets=())
    'Incorrect API key provided: [REDACTED].'
    >>> redact_prompt("bad input: 'Tell me about Jane Roe'", ["Tell me about Jane Roe"])
    "bad input: '[PROMPT]'"
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "param_secrets",
    "prompt_texts",
    "redact_params",
    "redact_prompt",
    "scrub",
    "scrub_exception",
]

_REDACTED = "[REDACTED]"
_PROMPT = "[PROMPT]"
# Shorter message texts ("hi", "ok") would blank ordinary words of the provider's message.
_MIN_PROMPT_CHARS = 8
_MAX_PROMPT_NEEDLES = 64

_SECRET_PATTERNS = (
    # Keys by their vendor prefix: OpenAI/Anthropic/DeepSeek ``sk-``, Groq ``gsk_``, xAI,
    # Perplexity, NVIDIA, Cerebras, Replicate. Masked echoes (``sk-abc***``, ``sk-proj-***abcd``)
    # count too: the visible characters narrow a search for the key.
    re.compile(
        r"\b(?:sk|gsk|xai|pplx|nvapi|csk|r8)[-_][A-Za-z0-9_\-]*[A-Za-z0-9*][A-Za-z0-9_\-*]*"
    ),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-*]{6,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids (Bedrock)
    re.compile(r"\b(?:gh[pousr]|hf|xox[abpr])_[A-Za-z0-9_\-]{16,}"),  # GitHub, HF, Slack
    # ``Incorrect API key provided: <key>`` whatever the key looks like (a self-hosted proxy's).
    re.compile(r"(?i)(\bapi[ _-]?key\s+provided\s*:\s*['\"]?)[^\s'\",}]+?(?=[.,]?(?:[\s'\",}]|$))"),
    # ``scheme://user:password@host``: the password.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+(?=@)"),
    # ``Authorization: <scheme> <credentials>`` for any scheme (Basic, Token, Digest, ...):
    # the scheme word is kept out of the value so the credentials after it are caught too.
    re.compile(
        r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
        r"(?:[A-Za-z][A-Za-z0-9_\-]*(?:\s+|%20))?[^\s\"',}&]+"
    ),
    # ``name=value`` / ``"name": "value"`` where the name ends like a credential's
    # (api_key, x-api-key, aws_secret_access_key, refresh_token, password) or is a URL's
    # ``key=`` (Gemini); ``max_tokens: 10`` is not one (the name must end in ``token``).
    re.compile(
        r"(?i)((?:\b[\w-]*(?:key|token|secret|password|passwd|credentials?)|[?&]key)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"
    ),
)

# Names of parameters, headers and URL query fields whose values are credentials by convention
# (api_key, Authorization, X-Api-Key, Cookie, a Gemini URL's ``key``, an Azure ``sig``).
_SECRET_NAME = re.compile(
    r"(?i)auth|key|token|secret|cookie|passw|signature|\bsig\b|credential|session|jwt|bearer"
)
# Parameters holding URLs that may carry user info or a credential in their query string.
_URL_PARAMS = ("api_base", "base_url", "proxy", "url")
# Parameters holding HTTP headers.
_HEADER_PARAMS = ("extra_headers", "headers", "default_headers")
# Shorter known values would blank ordinary words of a message (as ``scrub`` does).
_MIN_SECRET_CHARS = 4

# The value of a ``content`` / ``text`` field of an echoed message (JSON or a Python repr),
# for echoes cut short or re-encoded beyond what :func:`redact_prompt` can match verbatim.
_CONTENT_FIELD = re.compile(
    r"""(?x)
    (["'](?:content|text|prompt|input)["']\s*:\s*)
    (?: "(?:[^"\\]|\\.)*"? | '(?:[^'\\]|\\.)*'? )
    """
)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with known secret values and anything shaped like a credential redacted.

    Example:
        >>> scrub("Authorization: Bearer abc.def.ghi123", secrets=())
        'Authorization: [REDACTED]'
    """
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) if m.re.groups else "") + _REDACTED,
            text,
        )
    return text


def prompt_texts(messages: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The texts of ``messages`` worth looking for in an error (longest first).

    String contents and the ``text`` of content parts, each whole and line by line, as they
    would read once echoed: with runs of whitespace as one space, JSON-escaped, or ``repr``'d.

    Example:
        >>> prompt_texts([{"role": "user", "content": "a question"}])
        ('a question',)
    """
    found: set[str] = set()
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        parts: list[Any] = [content] if isinstance(content, str) else []
        if isinstance(content, list):
            parts += [p.get("text") for p in content if isinstance(p, Mapping)]
        for part in parts:
            if not isinstance(part, str):
                continue
            for piece in (part, *part.splitlines()):
                for spelling in (piece, json.dumps(piece)[1:-1], repr(piece)[1:-1]):
                    needle = " ".join(spelling.split())
                    if len(needle) >= _MIN_PROMPT_CHARS:
                        found.add(needle)
    return tuple(sorted(found, key=len, reverse=True)[:_MAX_PROMPT_NEEDLES])


def redact_prompt(text: str, prompts: Iterable[str]) -> str:
    """``text`` (whitespace already collapsed) without the prompt ``texts`` it echoes, nor
    the values of ``content``-like fields.

    Example:
        >>> redact_prompt('{"content": "secret plan"}', [])
        '{"content": "[PROMPT]"}'
    """
    for needle in prompts:
        if needle in text:
            text = text.replace(needle, _PROMPT)
    return _CONTENT_FIELD.sub(_content_value, text)


def _content_value(match: re.Match[str]) -> str:
    quote = match.group(0)[len(match.group(1))]
    return f"{match.group(1)}{quote}{_PROMPT}{quote}"


def param_secrets(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The credential values in litellm keyword arguments ``params`` (longest first): the
    ``api_key``, the password and credential query values of ``api_base`` (and the Basic
    credentials its user info is sent as), the values of credential headers in
    ``extra_headers``. Providers and HTTP clients echo them in shapes no pattern knows (a
    self-hosted proxy's key, a bare password), so they are replaced by value.

    Example:
        >>> param_secrets({"api_key": "k-123456", "api_base": "https://u:pw12@gw/v1?key=abcd",
        ...                "extra_headers": {"Authorization": "Bearer tok-9876"}})
        ('Bearer tok-9876', 'dTpwdzEy', 'k-123456', 'tok-9876', 'abcd', 'pw12')
    """
    found: set[str] = set()
    for name, value in params.items():
        if name in _URL_PARAMS and isinstance(value, str):
            found.update(_url_secrets(value))
        elif name in _HEADER_PARAMS and isinstance(value, Mapping):
            for header, text in value.items():
                if isinstance(text, str) and _SECRET_NAME.search(str(header)):
                    found.add(text)
                    # An echo may show the credentials without their scheme word.
                    found.add(text.split(None, 1)[-1])
        elif _SECRET_NAME.search(name):
            revealed = value.reveal() if callable(getattr(value, "reveal", None)) else value
            if isinstance(revealed, str):
                found.add(revealed)
    kept = {v.strip() for v in found}
    return tuple(sorted((v for v in kept if len(v) >= _MIN_SECRET_CHARS), key=_longest_first))


def _longest_first(value: str) -> tuple[int, str]:
    # Longest first, so that a key is replaced whole before a shorter secret inside it.
    return -len(value), value


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of call parameters ``params`` fit to show (traces, callbacks, reprs): credential
    parameters and headers as ``[REDACTED]``, URLs without their user info or credential query
    values, anything else shaped like a credential scrubbed; nested mappings alike.

    Example:
        >>> redact_params({"temperature": 0, "api_key": "k-1",
        ...                "extra_headers": {"Authorization": "Bearer t", "X-Trace": "7"}})
        {'temperature': 0, 'api_key': '[REDACTED]', 'extra_headers': {'Authorization': \
'[REDACTED]', 'X-Trace': '7'}}
    """
    secrets = param_secrets(params)
    return {str(k): _redacted_value(str(k), v, secrets) for k, v in params.items()}


def _redacted_value(name: str, value: Any, secrets: tuple[str, ...]) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if name not in _URL_PARAMS and _SECRET_NAME.search(name) and not isinstance(value, Mapping):
        return _REDACTED
    if isinstance(value, Mapping):
        inner = param_secrets(value) + secrets
        return {str(k): _redacted_value(str(k), v, inner) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_redacted_value("", v, secrets) for v in value)
    if isinstance(value, str):
        return scrub(value, secrets)
    return value


def _url_secrets(url: str) -> set[str]:
    """The password and credential query values written in ``url``, and the credentials of
    the ``Authorization: Basic`` header its user info is sent as."""
    try:
        parts = urlsplit(url)
        found = {parts.password} if parts.password else set()
    except ValueError:  # a malformed port or bracket: the patterns of ``scrub`` still apply
        return set()
    if parts.password:
        # httpx sends the user info as base64("user:password") (percent-decoded, UTF-8); an
        # echo of that header needs no pattern's help to give the password away.
        userpass = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
        found.add(base64.b64encode(userpass.encode()).decode("ascii"))
    found.update(v for k, v in parse_qsl(parts.query) if _SECRET_NAME.search(k) and v)
    return found


# String attributes of litellm's and openai's exceptions that may quote the request.
_EXCEPTION_TEXTS = ("message", "litellm_debug_info")


def scrub_exception(exc: BaseException, secrets: Iterable[str]) -> None:
    """Scrub, in place, the messages of ``exc`` and of every exception it was raised from.

    policyroute hands provider errors on with litellm's exception as their ``__cause__``, so
    that a traceback shows what happened; its text (and that of the openai, httpx or aiohttp
    errors under it) can quote the key, the request's headers or the URL with its password.

    What changes: ``args``, the ``message`` and ``litellm_debug_info`` texts, and ``body`` (the
    provider's decoded error body, which may echo the request): a scrubbed copy replaces it,
    credential-named fields redacted as :func:`redact_params` does, so the provider's object
    is never mutated. What is kept: the exception's type (``isinstance`` still holds), its
    status code, and the ``response`` and ``request`` objects. Those are httpx's own, shared
    with the client that sent them, and stay raw: ``exc.request.headers`` still holds the
    ``Authorization`` header and ``repr(exc.request)`` the URL with its password or ``key=``.
    Code that records exceptions field by field (an error tracker capturing attributes) must
    not record those two.

    Example:
        >>> err = ValueError("401 for http://u:pw@gw/v1")
        >>> scrub_exception(err, ())
        >>> str(err)
        '401 for http://u:[REDACTED]@gw/v1'
    """
    known = tuple(secrets)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            current.args = tuple(scrub(a, known) if isinstance(a, str) else a for a in current.args)
        except (AttributeError, TypeError):  # an exception type with read-only fields
            pass
        for name in _EXCEPTION_TEXTS:
            text = getattr(current, name, None)
            if isinstance(text, str):
                _set_field(current, name, scrub(text, known))
        body = getattr(current, "body", None)
        if isinstance(body, (str, Mapping, list, tuple)):
            _set_field(current, "body", _redacted_value("", body, known))
        current = current.__cause__ or current.__context__


def _set_field(exc: BaseException, name: str, value: Any) -> None:
    try:
        setattr(exc, name, value)
    except (AttributeError, TypeError):  # a read-only property or slot: left as it is
        pass
