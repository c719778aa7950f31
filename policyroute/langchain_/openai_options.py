"""``ChatOpenAI``'s client options, as ``ChatPolicyRoute`` takes them.

Code moving from langchain-openai's ``ChatOpenAI`` brings keywords that configure its OpenAI
client rather than the request. ``ChatPolicyRoute`` gathers undeclared keywords as provider
parameters (see :mod:`policyroute.langchain_.model_kwargs`), so without this step they would
reach the provider as unknown body fields, which OpenAI refuses with a 400
("Unrecognized request argument"), or vanish. Here, in the constructor and in every call:

- ``stream_usage`` is taken and not sent: a stream always asks the provider for usage
  (budgets and receipts need it); its last chunk carries it as ``usage_metadata`` unless
  ``stream_usage=False`` (on the model or the call) or ``stream_options={"include_usage":
  False}`` says not to, as with ``ChatOpenAI`` (see :func:`usage_on_chunks`);
- ``default_headers`` are sent with every call, merged under the call's ``extra_headers``
  (a header named in both, in any case, keeps its ``extra_headers`` value), as the OpenAI
  client merges them; the policy's own headers (a model's or route's
  ``params.extra_headers``) are sent beside them, as they are beside a call's
  ``extra_headers``;
- options of the OpenAI client with no counterpart here (``use_responses_api``,
  ``include_response_headers``, ``tiktoken_model_name``, ``http_client``...) are refused with a
  :class:`~policyroute.errors.RequestError` saying why; ``None`` and ``False`` pass, as their
  defaults do nothing.

Example:
    >>> adapt({"stream_usage": True, "default_headers": {"X-Team": "a"}, "top_p": 0.5})
    {'top_p': 0.5, 'extra_headers': {'X-Team': 'a'}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policyroute.api_headers import merged_headers, refuse_credential_headers
from policyroute.errors import RequestError

__all__ = ["NAMES", "adapt", "check_stream_usage", "usage_on_chunks"]

_CLIENT = "it configures ChatOpenAI's OpenAI client, which ChatPolicyRoute does not use"

_REFUSED: dict[str, str] = {
    "use_responses_api": (
        "calls go through litellm's chat completions for every deployment of the route"
    ),
    "use_previous_response_id": (
        "calls go through litellm's chat completions, which keep no response ids"
    ),
    "include_response_headers": (
        "an answer may come from any deployment of the route; its response_metadata"
        " ['policyroute'] says which"
    ),
    "tiktoken_model_name": (
        "token counts use litellm's tokenizer for the requested model; pass"
        " custom_get_token_ids=... for another"
    ),
    "http_client": _CLIENT,
    "http_async_client": _CLIENT,
    "openai_proxy": _CLIENT + "; set HTTPS_PROXY, which litellm's client reads",
    "default_query": _CLIENT,
    "disabled_params": _CLIENT,
}

NAMES = frozenset({"stream_usage", "default_headers", *_REFUSED})
"""Every ``ChatOpenAI`` option :func:`adapt` handles: keywords holding none of them pass as
they are."""


def adapt(params: Mapping[str, Any], *, merge_headers: bool = True) -> dict[str, Any]:
    """``params`` (a constructor's or a call's keywords) with ``ChatOpenAI``'s client options
    taken out or translated, as the module docstring says. With ``merge_headers=False``
    (a constructor's keywords, which a call's ``extra_headers`` add to), ``default_headers``
    are checked and kept as they are.

    Raises :class:`RequestError` for a client option with no counterpart, a ``stream_usage``
    that is not a boolean, or ``default_headers`` that are not a mapping or hold a credential
    header or one that cannot be sent.

    Example:
        >>> try:
        ...     adapt({"use_responses_api": True})
        ... except RequestError as exc:
        ...     print(str(exc)[:58])
        ChatOpenAI's 'use_responses_api' has no counterpart in Cha
    """
    out = dict(params)
    for name, reason in _REFUSED.items():
        value = out.pop(name, None)
        if value is not None and value is not False:
            raise RequestError(
                f"ChatOpenAI's {name!r} has no counterpart in ChatPolicyRoute: {reason}"
            )
    check_stream_usage(out.pop("stream_usage", None))
    headers = out.pop("default_headers", None) if merge_headers else out.get("default_headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise RequestError(
                f"default_headers must be a mapping of header names to values,"
                f" got {type(headers).__name__}"
            )
        # Checked as written: merged, a credential would be named as an extra_headers one.
        refuse_credential_headers({"default_headers": headers})
        extra = out.get("extra_headers")
        if extra is not None and not isinstance(extra, Mapping):
            raise RequestError(
                f"extra_headers must be a mapping of header names to values,"
                f" got {type(extra).__name__}"
            )
        if merge_headers:
            out["extra_headers"] = merged_headers(headers, extra)
    return out


def check_stream_usage(value: object) -> None:
    """Raise :class:`RequestError` unless ``value`` is a ``stream_usage`` (a boolean or
    ``None``)."""
    if value is not None and not isinstance(value, bool):
        raise RequestError(f"stream_usage must be a boolean, got {type(value).__name__}")


def usage_on_chunks(
    own: bool | None, model_kwargs: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> bool:
    """Whether a stream's chunks carry the call's ``usage_metadata``, asked as ``ChatOpenAI``
    asks it: the call's ``stream_usage``, then the ``include_usage`` of the call's
    ``stream_options``, then that of the model's ``model_kwargs``, then the model's own
    ``stream_usage`` (``own``); the first that is a boolean decides, and usage is reported
    when none is. The provider is asked for usage whatever this says.

    Example:
        >>> usage_on_chunks(None, {}, {"stream_usage": False})
        False
        >>> usage_on_chunks(False, {}, {"stream_options": {"include_usage": True}})
        True
        >>> usage_on_chunks(None, {}, {})
        True
    """
    given = kwargs.get("stream_usage")
    check_stream_usage(given)
    for source in (given, _include_usage(kwargs), _include_usage(model_kwargs), own):
        if isinstance(source, bool):
            return source
    return True


def _include_usage(params: Mapping[str, Any]) -> object:
    options = params.get("stream_options")
    return options.get("include_usage") if isinstance(options, Mapping) else None
