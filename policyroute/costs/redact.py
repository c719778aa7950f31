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

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["prompt_texts", "redact_prompt", "scrub"]

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
