"""The wait Google asks for in an error's body: ``google.rpc.RetryInfo``'s ``retryDelay``.

Gemini and Vertex AI send no ``Retry-After`` header on a 429 (``RESOURCE_EXHAUSTED``) or a
503 (``UNAVAILABLE``); they put the wait in the JSON error, as a ``RetryInfo`` detail whose
``retryDelay`` is a protobuf duration (``"37s"``, ``"0.500s"``)::

    {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}

litellm keeps that body in the text of the error it raises (and of the provider error under
it); Google's OpenAI-compatible endpoint sends the same detail. :func:`retry_info_seconds`
reads it from there. Only the first 64 KiB of each text is searched, and only a text that names
``google.rpc.RetryInfo``: a stray ``retryDelay`` elsewhere is no hint.

The same wait is written in the error's message, as a Go duration: ``"...limit: 10, model:
gemini-2.5-flash\nPlease retry in 37.412285355s."`` (``"2h47m56.58s"`` past an hour). A gateway
between policyroute and Gemini that passes on only the message (an OpenAI-compatible proxy
reducing Google's error to ``{"error": {"message": ...}}``) leaves no ``RetryInfo``:
:func:`retry_text_seconds` reads the sentence then, for a rate limit. Vertex AI's 429 ("Resource
exhausted. Please try again later.") names no wait in either form.

Example:
    >>> body = ('{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",'
    ...         ' "retryDelay": "1.5s"}]}}')
    >>> retry_info_seconds(RuntimeError("GeminiException - " + body))
    1.5
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from policyroute.execution.ratelimit_headers import parse_go_duration

__all__ = ["retry_info_seconds", "retry_text_seconds"]

_MAX_TEXT_CHARS = 65_536
_MARKER = "google.rpc.RetryInfo"
# A protobuf Duration in its JSON form: seconds with up to nine decimals, then "s". Python
# reprs of the same body (single quotes) occur in some wrappers' messages.
_DELAY = re.compile(r"""["']retryDelay["']\s*:\s*["'](\d{1,12}(?:\.\d{1,9})?)s["']""")
# Google's sentence, with a Go duration (``time.Duration.String``: hours, minutes, seconds, or
# a unit below a second) and its closing full stop.
_SENTENCE = re.compile(
    r"Please retry in ((?:\d{1,12}(?:\.\d{1,9})?(?:h|ms|m|s|us|\u00b5s|\u03bcs|ns)){1,4})\.(?!\d)"
)


def retry_info_seconds(*errors: BaseException) -> float | None:
    """The ``retryDelay`` of the first ``google.rpc.RetryInfo`` in the texts of ``errors``.

    ``errors`` are searched in order (the error litellm raised, then those under it); ``None``
    when none carries one.

    Example:
        >>> retry_info_seconds(ValueError("quota exceeded"))
        >>> retry_info_seconds(ValueError('"retryDelay": "5s"'))  # no RetryInfo named
    """
    for text in _texts(errors):
        if _MARKER not in text:
            continue
        match = _DELAY.search(text)
        if match is not None:
            return float(match.group(1))
    return None


def retry_text_seconds(*errors: BaseException) -> float | None:
    """The wait of the first ``Please retry in <duration>.`` in the texts of ``errors``, as
    Google writes it in a 429's message; ``None`` when none says one.

    For an error with no readable ``RetryInfo`` (:func:`retry_info_seconds` first): the
    sentence is Google's rendering of the same wait.

    Example:
        >>> retry_text_seconds(ValueError("Quota exceeded.\\nPlease retry in 1m2.5s."))
        62.5
        >>> retry_text_seconds(ValueError("Please retry in a moment."))
    """
    for text in _texts(errors):
        match = _SENTENCE.search(text)
        if match is not None:
            return parse_go_duration(match.group(1))
    return None


def _texts(errors: Iterable[BaseException]) -> Iterable[str]:
    for error in errors:
        try:
            text = str(error)
        except Exception:  # a broken __str__ on a provider's error is no reason to fail
            continue
        yield text[:_MAX_TEXT_CHARS]
        # The openai SDK from 3.0 leaves a body that is not an object (Google's
        # OpenAI-compatible endpoint answers with a list) out of its message; it keeps it,
        # parsed, in ``body``.
        body = getattr(error, "body", None)
        if isinstance(body, (list, dict)):
            try:
                yield json.dumps(body, default=str)[:_MAX_TEXT_CHARS]
            except (TypeError, ValueError):  # a body that does not serialise says no wait
                continue
