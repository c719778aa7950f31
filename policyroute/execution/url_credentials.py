"""An ``api_base``'s user info sent as ``Authorization: Basic``, the same on every path.

A deployment behind a basic-auth proxy is reached with the proxy's credentials in its URL:
``api_base: http://user:secret@gateway/v1``. litellm hands that URL to httpx as it is, and httpx
(``Client._build_request_auth``) turns the user info into ``Authorization: Basic
base64(user:secret)``, replacing any ``Authorization`` header the request already had. The
sync path sends that and works. The async path does not: litellm's aiohttp transport
(``LiteLLMAiohttpTransport._make_aiohttp_request``, litellm 1.106) gives aiohttp the URL with
its user info still in it *and* httpx's headers, Basic header included, and aiohttp refuses
the pair before anything is sent (``ValueError: Cannot combine AUTHORIZATION header with AUTH
argument or credentials encoded in URL``). The openai SDK reports that as ``Connection error.``
and litellm's Anthropic handler as a 500: errors that look retryable, so the call retried and
fell over without a request ever leaving the process.

:func:`credentials_as_header` does what httpx does, before litellm sees the call: the user
info leaves ``api_base`` and becomes the ``Authorization`` header in ``extra_headers``,
replacing any other ``Authorization`` header of the call (in ``extra_headers`` or
``headers``). Every path then sends what the sync path always sent. What a proxy receives:

- ``Authorization: Basic base64(user:password)``, username and password percent-decoded
  first and encoded as UTF-8 (a URL with a username alone sends ``user:``);
- an Anthropic-format deployment's key in its own ``x-api-key`` header, beside it;
- no key from an OpenAI-format deployment: its key travels as ``Authorization: Bearer``, the
  header the URL's credentials take over, on the sync path as on the others.

litellm reports the URL it was given as the answer's ``_hidden_params["api_base"]``; the
wrappers put the deployment's URL back there, its password redacted, so observability tools
see the deployment as configured and never the password. A stream's chunks keep the URL
litellm was given, which no longer holds the password either (they used to hold it raw).

The executor wraps litellm's own ``completion`` and ``acompletion``; a completion callable
injected in their place gets the call's params as the policy gave them. A call whose
``api_base`` has no ``@`` costs one lookup more (:func:`has_url_credentials`): the async
wrapper then hands back litellm's own awaitable.

Example:
    >>> shown = credentials_as_header({"api_base": "http://u:pw@gw/v1", "api_key": "k"})
    >>> shown["api_base"], shown["extra_headers"]
    ('http://gw/v1', {'Authorization': 'Basic dTpwdw=='})
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote

from policyroute.costs.redact import scrub

__all__ = [
    "basic_authorization",
    "credentials_as_header",
    "has_url_credentials",
    "with_credentials_as_header",
    "with_credentials_as_header_async",
]

# What stands for the password in the URL shown, as costs.redact writes any secret.
_REDACTED = "[REDACTED]"

# The parameters whose headers litellm sends; an Authorization header in either would be sent
# beside the Basic one, or instead of it, where httpx would have replaced it.
_HEADER_PARAMS = ("extra_headers", "headers")


class _Split(NamedTuple):
    """A URL cut around its user info: ``before + userinfo + "@" + after``."""

    before: str
    userinfo: str
    after: str


def _split(url: str) -> _Split | None:
    # The authority runs from "//" to the first "/", "?" or "#", and its user info up to its
    # last "@": how httpx reads a URL (``httpx._urlparse``), so the header built here is the
    # one httpx would build from the same text.
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    end = len(url)
    for mark in "/?#":
        at = url.find(mark, start)
        if 0 <= at < end:
            end = at
    at = url.rfind("@", start, end)
    if at < 0:
        return None
    return _Split(url[:start], url[start:at], url[at + 1 :])


def basic_authorization(url: str) -> str | None:
    """The ``Authorization`` value httpx sends for ``url``'s user info; ``None`` without any.

    Example:
        >>> basic_authorization("https://user:p%40ss@gw/v1")
        'Basic dXNlcjpwQHNz'
        >>> basic_authorization("https://gw/v1") is None
        True
    """
    parts = _split(url)
    if parts is None or not parts.userinfo:
        return None
    user, _, password = parts.userinfo.partition(":")
    if not user and not password:  # "http://:@host": httpx sends no credentials either
        return None
    token = f"{unquote(user)}:{unquote(password)}".encode()
    return f"Basic {base64.b64encode(token).decode('ascii')}"


def has_url_credentials(params: Mapping[str, Any]) -> bool:
    """Whether litellm keyword arguments ``params`` may carry user info in ``api_base``: when
    not, :func:`credentials_as_header` returns them as they are, and the wrappers call litellm
    with them unchanged (callers on a hot path may skip the wrappers then).

    Example:
        >>> has_url_credentials({"api_base": "http://u:pw@gw/v1"})
        True
        >>> has_url_credentials({"api_base": "http://gw/v1"}), has_url_credentials({})
        (False, False)
    """
    base = params.get("api_base")
    return isinstance(base, str) and "@" in base


def credentials_as_header(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """litellm keyword arguments ``params`` with ``api_base``'s user info moved into an
    ``Authorization: Basic`` header (see the module's docstring); ``params`` itself when its
    ``api_base`` has none.

    Example:
        >>> credentials_as_header({"api_base": "http://u:pw@gw/v1",
        ...                        "extra_headers": {"authorization": "Bearer t", "X-Trace": "7"}})
        {'api_base': 'http://gw/v1', 'extra_headers': {'X-Trace': '7', 'Authorization': 'Basic dTpwdw=='}}
    """  # noqa: E501
    if not has_url_credentials(params):
        return params
    base: str = params["api_base"]
    parts = _split(base)
    if parts is None:
        return params
    authorization = basic_authorization(base)
    moved = dict(params)
    moved["api_base"] = parts.before + parts.after
    if authorization is None:  # an empty user info ("http://@host") is dropped, as httpx does
        return moved
    for name in _HEADER_PARAMS:
        headers = params.get(name)
        if isinstance(headers, Mapping):
            moved[name] = {k: v for k, v in headers.items() if str(k).lower() != "authorization"}
    extra = moved.get("extra_headers")
    kept = extra if isinstance(extra, Mapping) else {}
    moved["extra_headers"] = {**kept, "Authorization": authorization}
    return moved


def with_credentials_as_header(completion: Callable[..., Any]) -> Callable[..., Any]:
    """``completion`` (litellm's sync call) given :func:`credentials_as_header`'s params.

    Example:
        >>> complete = with_credentials_as_header(litellm.completion)  # doctest: +SKIP
    """

    @functools.wraps(completion)
    def call(*args: Any, **kwargs: Any) -> Any:
        moved = credentials_as_header(kwargs)
        if moved is kwargs:
            return completion(*args, **kwargs)
        return _configured_base(completion(*args, **moved), kwargs["api_base"], moved["api_base"])

    return call


def with_credentials_as_header_async(
    acompletion: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """Async twin of :func:`with_credentials_as_header` (for ``litellm.acompletion``).

    Example:
        >>> acomplete = with_credentials_as_header_async(litellm.acompletion)  # doctest: +SKIP
    """

    @functools.wraps(acompletion)
    def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
        moved = credentials_as_header(kwargs)
        if moved is kwargs:
            # litellm's own awaitable, as it is: a call without user info costs no coroutine
            # of the wrapper's around it.
            return acompletion(*args, **kwargs)
        return _shown_configured(acompletion(*args, **moved), kwargs["api_base"], moved["api_base"])

    return call


async def _shown_configured(pending: Awaitable[Any], configured: str, sent: str) -> Any:
    """:func:`_configured_base` of what ``pending`` answers."""
    return _configured_base(await pending, configured, sent)


def _configured_base(answer: Any, configured: str, sent: str) -> Any:
    """``answer`` (a response or a stream) with litellm's hidden ``api_base`` showing the
    deployment's URL as configured, its password redacted, instead of the URL litellm got."""
    hidden = getattr(answer, "_hidden_params", None)
    if isinstance(hidden, dict):
        base = hidden.get("api_base")
        if isinstance(base, str) and base.startswith(sent):
            hidden["api_base"] = scrub(_without_password(configured), ()) + base[len(sent) :]
    return answer


def _without_password(url: str) -> str:
    """``url`` with the password of its user info replaced, in place: replacing the password's
    text wherever it occurs would also replace it inside the host or the path."""
    parts = _split(url)
    if parts is None:
        return url
    user, colon, password = parts.userinfo.partition(":")
    return f"{parts.before}{user}{colon}{password and _REDACTED}@{parts.after}"
