"""Sort a failed provider call into one of policyroute's error classes.

litellm maps most provider failures to its own exception types, but not all of them the way
a retry policy needs: a reset connection arrives as ``InternalServerError("Connection
error.")``, a body that does not parse as ``InternalServerError`` or ``APIConnectionError``,
an Azure-style ``content_filter`` 400 as a plain ``BadRequestError``, a 403 from an
OpenAI-compatible server as a ``BadRequestError`` with status 403. :func:`classify` therefore
looks at the exception chain (``__cause__`` / ``__context__``) first, then at litellm's type,
then at the HTTP status, so every failure lands in the class that says what happened.

litellm also reports failures of its own before anything was sent (a call parameter of the
wrong type, a provider SDK it cannot import) as connection errors or unreadable answers. Such a
failure, and one of policyroute adapting the messages, is told apart by where it was raised: no
HTTP client sending or reading, no reading of an answer, led to it. It is a ``bad_request``
without status, marked ``failed_locally``: not retried on the deployment nor counted by its
breaker, and the call moves on to its next candidate.

Example:
    >>> import litellm  # doctest: +SKIP
    >>> err = classify(litellm.RateLimitError("slow down", "openai", "gpt-4o"),
    ...                deployment="mini", model="openai/gpt-4o")  # doctest: +SKIP
    >>> err.error_class, err.deployment  # doctest: +SKIP
    ('rate_limit', 'mini')
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import traceback
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from policyroute.costs.redact import scrub, scrub_exception
from policyroute.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextWindowExceededError,
    ErrorClass,
    MalformedResponseError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from policyroute.execution.failed_locally import failed_locally, raised_where
from policyroute.execution.ratelimit_headers import rate_limit_reset_seconds
from policyroute.execution.retry_info import retry_info_seconds, retry_text_seconds

__all__ = ["CLASS_TO_ERROR", "classify", "make_error", "retry_after_seconds"]

CLASS_TO_ERROR: Mapping[ErrorClass, type[ProviderError]] = {
    "rate_limit": RateLimitError,
    "timeout": ProviderTimeoutError,
    "server_error": ServerError,
    "connection": ProviderConnectionError,
    "context_window": ContextWindowExceededError,
    "content_policy": ContentPolicyError,
    "authentication": AuthenticationError,
    "not_found": NotFoundError,
    "bad_request": BadRequestError,
    "malformed_response": MalformedResponseError,
}
"""The :class:`~policyroute.errors.ProviderError` subclass raised for each error class."""

# litellm exception class name -> error class. Matched by name along the MRO so that
# classification never imports litellm (and so also works on litellm's subclasses).
_LITELLM_NAMES: Mapping[str, ErrorClass] = {
    "ContextWindowExceededError": "context_window",
    "ContentPolicyViolationError": "content_policy",
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "AuthenticationError": "authentication",
    "PermissionDeniedError": "authentication",
    "ServiceUnavailableError": "server_error",
    "InternalServerError": "server_error",
    "BadGatewayError": "server_error",
    "APIConnectionError": "connection",
    "APIResponseValidationError": "malformed_response",
    "NotFoundError": "not_found",
    "UnprocessableEntityError": "bad_request",
    "BadRequestError": "bad_request",
}

# Exceptions found in the chain that say more than litellm's wrapper does.
_CHAIN_NAMES: Mapping[str, ErrorClass] = {
    "JSONDecodeError": "malformed_response",
    "ReadTimeout": "timeout",
    "ConnectTimeout": "timeout",
    "WriteTimeout": "timeout",
    "PoolTimeout": "timeout",
    "TimeoutException": "timeout",
    "RemoteProtocolError": "connection",
    "ReadError": "connection",
    "WriteError": "connection",
    "ConnectError": "connection",
    "ConnectionResetError": "connection",
    "ConnectionRefusedError": "connection",
    "ConnectionAbortedError": "connection",
    "BrokenPipeError": "connection",
}

# litellm reads a 200 body it cannot make sense of into one of these, then wraps it as a 500
# (InternalServerError) or a connection error: a response that broke litellm's parser.
_PARSE_ERRORS = frozenset(
    {"KeyError", "TypeError", "AttributeError", "IndexError", "ValidationError"}
)
# ... or says so in words (litellm 1.7x: an HTML page, an empty or non-object body; 1.108 and
# later: an object without choices).
_MALFORMED_TEXT = (
    "empty or invalid response from llm endpoint",
    "invalid response object",
    "provider returned 'choices'",
    "provider returned a response with no 'choices'",
    "unable to get json response",
)

# litellm 1.108 and later raise this (as a connection error, wrapped in a 503 of its own) when
# an OpenAI-style stream's body ends cleanly before any finish reason: a truncated answer.
_NO_FINISH_TEXT = "stream ended before a finish_reason was received"
NO_FINISH_REASON = (
    "the stream ended without a finish reason from the provider: the answer is truncated"
    " (a proxy or the provider closed the body early)"
)

# Where litellm reads a 2xx body into a response; an ``error`` object found there is raised
# from it with the body's ``code`` as status, or 422 when the body names none.
_READS_ANSWER = "convert_to_model_response_object"
_NO_STATUS_GIVEN = 422

# Where litellm turns chat messages into each provider's format (request side only).
_PROMPT_TEMPLATES = "litellm/litellm_core_utils/prompt_templates/"
# What litellm appends to some of its errors: the caller's messages, which are no detail.
_ECHOED_MESSAGES = "\nReceived Messages="
# Where litellm maps the call's OpenAI parameters (tools, response_format...) to the provider's.
_MAPS_PARAMS = frozenset({"get_optional_params", "map_openai_params"})

_CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})
_CONTENT_POLICY_TEXT = (
    "content_policy_violation",
    "content_filter_policy",
    "responsibleaipolicyviolation",
    "rejected as a result of our safety system",
    "rejected as a result of the safety system",
)
_CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded"})
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded"})
_CONTEXT_WINDOW_TEXT = ("context_length_exceeded", "maximum context length", "prompt is too long")

# A litellm proxy forwards the upstream provider's headers under this prefix; its own come first.
_RETRY_AFTER_PREFIXES = ("", "llm_provider-")
# No real Retry-After is longer; bounding the text keeps parsing cheap on hostile input.
_MAX_HEADER_CHARS = 64

_HintSource = Literal["retry_after", "rate_limit_reset"]


def classify(
    exc: BaseException,
    *,
    deployment: str | None = None,
    model: str | None = None,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """Return ``exc`` as a :class:`~policyroute.errors.ProviderError` of the right class.

    A ``ProviderError`` is returned as is (its deployment and model filled in if missing).
    Otherwise a new error is built with the status code, the ``Retry-After`` the provider
    sent (seconds) and ``exc`` as its ``__cause__``. A rate limit without ``Retry-After``
    takes its wait from the provider's rate-limit reset headers instead, when they give one
    (:mod:`policyroute.execution.ratelimit_headers`). Providers and HTTP clients echo keys,
    headers and URLs with their passwords: the message, and the texts of ``exc`` and the
    exceptions under it, are scrubbed of ``secrets`` (the attempt's credential values) and of
    anything shaped like a credential (:mod:`policyroute.costs.redact`).

    Example:
        >>> classify(TimeoutError(), deployment="mini").error_class
        'timeout'
        >>> classify(json.JSONDecodeError("bad", "{", 0)).error_class
        'malformed_response'
    """
    if isinstance(exc, ProviderError):
        if exc.deployment is None:
            exc.deployment = deployment
        if exc.model is None:
            exc.model = model
        return exc
    error_class = _class_of(exc)
    status = _provider_status(exc)
    local = False
    message = _message(exc, deployment)
    if error_class == "malformed_response":
        # litellm reports an answer it could not read as a 500 of its own making; the
        # provider's status (a 2xx) is the true one, when litellm kept it.
        status = _answered_status(exc)
        message = _malformed_message(exc, deployment, model)
    elif _is_statusless_error_object(root := _root(exc)):
        # An error object in a 2xx body whose code or words name its class (a gateway's
        # context-length refusal): litellm's own text has lost the provider's message.
        status = _answered_status(exc)
        where = f"deployment '{deployment}'" if deployment else "the provider"
        code = _code(root)
        said = _short(str(getattr(root, "message", "") or "no message"))
        message = f"{where} answered with an error object: {said}" + (
            f" (code {code!r})" if code else ""
        )
    elif error_class == "bad_request" and isinstance(root, ImportError):
        # litellm imports some provider SDKs and optional modules on first use: the call
        # cannot go this way in this environment, which a "connection" message would hide.
        status, local = None, True
        where = f"deployment '{deployment}': " if deployment else ""
        missing = f"'{root.name}'" if root.name else "a module"
        # litellm raises its own ImportError around some, saying which package to install.
        around = next(c for c in (exc, *_chain(exc)) if isinstance(c, ImportError))
        message = (
            f"{where}litellm could not import {missing}, which this call needs"
            f" ({_short(str(around))}); nothing was sent: install the package that provides it"
        )
    elif error_class == "bad_request" and _is_unencodable_request(root):
        # Nothing was sent: litellm's "InternalServerError" wrapper would mislead.
        status = None
        where = f"deployment '{deployment}': " if deployment else ""
        message = (
            f"{where}the request could not be sent: a call parameter holds a value JSON cannot"
            f" carry ({_short(str(root))})"
        )
    elif error_class == "bad_request" and _params_unsupported(exc):
        status = None  # litellm refused before sending
        where = f"deployment '{deployment}': " if deployment else ""
        message = (
            f"{where}this provider does not take a parameter of the call"
            f" ({_unsupported_text(exc)}); a route passes over such a deployment to its next"
            " one, if it has one (drop_params: true in the model's params sends the call"
            " without them)"
        )
    elif error_class == "bad_request" and _is_untranslatable_request(exc, _chain(exc)):
        status = None  # nothing was sent: litellm's 400 or 500 is its own
        where = f"deployment '{deployment}': " if deployment else ""
        message = (
            f"{where}litellm could not turn the call into this provider's request"
            f" ({_translation_detail(exc, root)}); check the call's messages (a tool message"
            " answers an assistant tool call by its id; tool-call arguments are JSON)"
        )
    elif error_class == "bad_request" and failed_locally(exc, _chain(exc)):
        # litellm's "connection error" or "500" around it is its own: no provider was asked.
        status, local = None, True
        where = f"deployment '{deployment}': " if deployment else ""
        raised = raised_where(root)
        message = (
            f"{where}the call failed in this process, not at the provider"
            f" ({type(root).__name__}: {_short(str(root).split(_ECHOED_MESSAGES, 1)[0])}"
            + (f", raised in {raised}" if raised else "")
            + "); check the call's parameters and messages for a value of the wrong type"
        )
    known = tuple(secrets)
    scrub_exception(exc, known)
    wait, wait_source = _wait_asked(exc, error_class)
    err = make_error(
        error_class,
        scrub(message, known),
        deployment=deployment,
        model=model,
        status_code=status,
        retry_after=wait,
    )
    err.retry_after_source = wait_source
    err.params_unsupported = error_class == "bad_request" and _params_unsupported(exc)
    err.failed_locally = local
    err.__cause__ = exc
    return err


def make_error(error_class: ErrorClass, message: str, **fields: Any) -> ProviderError:
    """Build the :class:`~policyroute.errors.ProviderError` subclass for ``error_class``.

    Example:
        >>> make_error("rate_limit", "429", deployment="mini").__class__.__name__
        'RateLimitError'
    """
    return CLASS_TO_ERROR[error_class](message, **fields)


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait the provider asked for, from ``retry-after-ms`` or ``retry-after`` (seconds).

    Looks at the headers litellm kept (``litellm_response_headers``), the exception's own
    ``headers`` and its ``response.headers``. A ``retry-after`` HTTP date (RFC 9110, as some
    gateways send it) counts from now; one already past asks for no wait (``None``). A litellm
    proxy passes the upstream provider's headers on as ``llm_provider-retry-after-ms`` and
    ``llm_provider-retry-after``: they are read when the proxy sent no wait of its own.

    Example:
        >>> class E(Exception):
        ...     headers = {"retry-after": "1.5"}
        >>> retry_after_seconds(E())
        1.5
        >>> class Proxied(Exception):
        ...     headers = {"llm_provider-retry-after-ms": "250"}
        >>> retry_after_seconds(Proxied())
        0.25
    """
    for headers in _header_sources(exc):
        for prefix in _RETRY_AFTER_PREFIXES:
            ms = _header(headers, prefix + "retry-after-ms")
            if ms is not None:
                value = _number(ms)
                if value is not None:
                    return value / 1000.0
            seconds = _header(headers, prefix + "retry-after")
            if seconds is not None:
                value = _number(seconds)
                if value is None:
                    value = _until_http_date(seconds)
                if value is not None:
                    return value
    return None


def _wait_asked(
    exc: BaseException, error_class: ErrorClass
) -> tuple[float | None, _HintSource | None]:
    """``Retry-After`` if the provider sent one, else the ``retryDelay`` Google puts in its
    error body, or for a rate limit the wait its message names ("Please retry in 37.4s.",
    :mod:`~policyroute.execution.retry_info`); for a rate limit with none of these, the
    reset of the exhausted limit
    (:func:`~policyroute.execution.ratelimit_headers.rate_limit_reset_seconds`), which then goes
    the same way: capped at ``retry_after_max``, or fallen over past it. The second item says
    where the wait came from (a provider's asked-for wait, header or body, is ``retry_after``)."""
    wait = retry_after_seconds(exc)
    if wait is None:
        wait = retry_info_seconds(exc, *_chain(exc))
        if wait is not None and error_class == "rate_limit":
            # Google rounds RetryInfo down to whole seconds ("26s") where its message names
            # the same wait exactly ("Please retry in 26.66s."): waiting the rounded one, the
            # retry comes before the quota is back.
            said = retry_text_seconds(exc, *_chain(exc))
            if said is not None and wait <= said < wait + 1:
                wait = said
    if wait is None and error_class == "rate_limit":
        # Google's message says the same wait ("Please retry in 37.4s."), kept where a gateway
        # passed on the message without the RetryInfo detail.
        wait = retry_text_seconds(exc, *_chain(exc))
    if wait is not None:
        return wait, "retry_after"
    if error_class != "rate_limit":
        return None, None
    for headers in _header_sources(exc):
        wait = rate_limit_reset_seconds(headers)
        if wait is not None:
            return wait, "rate_limit_reset"
    return None, None


def _until_http_date(text: str) -> float | None:
    """Seconds from now until the HTTP date ``text``; ``None`` if it is not one or is past."""
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, origin unknown
        when = when.replace(tzinfo=timezone.utc)
    wait = (when - datetime.now(timezone.utc)).total_seconds()
    return wait if wait > 0 else None


# --------------------------------------------------------------------------- internals


def _class_of(exc: BaseException) -> ErrorClass:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, json.JSONDecodeError):
        return "malformed_response"
    if isinstance(exc, ConnectionError):
        return "connection"
    names = {cls.__name__ for cls in type(exc).__mro__}
    by_type = next((_LITELLM_NAMES[n] for n in _LITELLM_NAMES if n in names), None)
    if by_type in ("context_window", "content_policy", "rate_limit", "authentication"):
        return by_type
    # Below here litellm's type is generic (500, 400, connection): the root cause decides.
    chain = _chain(exc)
    if _ended_unfinished(exc, chain):
        return "malformed_response"
    if _is_untranslatable_request(exc, chain):
        return "bad_request"
    if failed_locally(exc, chain):
        # Nothing was sent: the caller's input or code in this process failed, which says
        # nothing about the deployment, and which a retry meets again.
        return "bad_request"
    for cause in (exc, *chain):
        cause_class = _CHAIN_NAMES.get(type(cause).__name__)
        if cause_class is not None:
            return cause_class
    if chain and _is_unencodable_request(chain[-1]):
        return "bad_request"
    status = _status_code(exc)
    text = str(exc).lower()
    # An error code that names its class says it whatever the status (a stream's error event
    # comes as a 500, an error object in a 200 as no status at all).
    codes = {_code(cause) for cause in (exc, *chain)}
    if codes & _CONTENT_POLICY_CODES:
        return "content_policy"
    if codes & _CONTEXT_WINDOW_CODES:
        return "context_window"
    if codes & _RATE_LIMIT_CODES:
        return "rate_limit"
    if _is_unreadable_answer(exc, chain, text):
        if chain and _is_statusless_error_object(chain[-1]):
            said = str(getattr(chain[-1], "message", "")).lower()
            if any(t in said for t in _CONTEXT_WINDOW_TEXT):
                return "context_window"
            if any(t in said for t in _CONTENT_POLICY_TEXT):
                return "content_policy"
        return "malformed_response"
    statuses = {status, *(_status_code(cause) for cause in chain)}
    if by_type == "bad_request" or status == 400 or 413 in statuses:
        if any(t in text for t in _CONTENT_POLICY_TEXT):
            return "content_policy"
        if any(t in text for t in _CONTEXT_WINDOW_TEXT):
            return "context_window"
    if 413 in statuses:
        # Too large for this deployment (a provider's byte limit, reported as a 400 by litellm
        # for some): another deployment of the route may take it, as with a context window.
        return "context_window"
    if status in (401, 402, 403, 451):
        # 402: the account cannot pay (OpenRouter's credits ran out); 451: the provider may
        # not serve this account or region. Neither is the request's fault.
        return "authentication"
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status in (404, 410):
        # No such model or endpoint at this deployment (retired, not deployed, not pulled, a
        # wrong api_base path): the deployment's doing; another one may serve the call.
        return "not_found"
    if status == 409:
        # A conflict met meanwhile (Vertex AI's ABORTED, a lock that timed out): transient,
        # as the provider SDKs treat it (the OpenAI SDK retries it), not the request's fault.
        return "server_error"
    if by_type is not None:
        return by_type
    if status is not None and status >= 500:
        return "server_error"
    if status is not None and 400 <= status < 500:
        return "bad_request"
    if "Timeout" in names:
        return "timeout"
    # Anything else raised by litellm (APIError without status, a provider SDK error) is
    # most likely a response it could not make sense of.
    return "malformed_response" if "APIError" in names else "connection"


def _ended_unfinished(exc: BaseException, chain: list[BaseException]) -> bool:
    """Whether litellm found the stream's body ended before the provider's finish reason."""
    return any(_NO_FINISH_TEXT in str(cause).lower() for cause in (exc, *chain))


def _is_unencodable_request(root: BaseException) -> bool:
    """Whether the request itself could not be written as JSON (a call parameter holding an
    object): the caller's input, not an answer, so neither retried nor passed to another
    deployment that would fail alike."""
    return isinstance(root, TypeError) and "is not JSON serializable" in str(root)


def _is_untranslatable_request(exc: BaseException, chain: list[BaseException]) -> bool:
    """Whether litellm failed turning the call into the provider's request, before sending it
    (a tool message without its ``tool_call_id``, tool-call arguments that are not JSON, a role
    the provider has no place for, a tool or response format it cannot map for the provider).
    litellm wraps these as a 400, a 500 or a connection error around a ``KeyError`` or
    ``JSONDecodeError`` that reads like an unreadable answer; where it was raised tells them
    apart: the caller's input, which every retry would fail alike, and which says nothing about
    the deployment's health."""
    if isinstance(chain[-1] if chain else exc, ImportError):
        return False  # a missing module: the environment's doing, reported as such
    return any(_raised_translating(cause) for cause in (exc, *chain))


def _translation_detail(exc: BaseException, root: BaseException) -> str:
    """What went wrong turning the call into the provider's request: the innermost exception,
    or the one litellm raised around it saying what it expected (``Image url not in expected
    format ... Error: list index out of range`` around the ``IndexError``), without the
    messages litellm's own wrapper appends (``Received Messages=...``: the caller's content)."""
    said = str(root)
    detail = f"{type(root).__name__}: {_short(said)}"
    chain = _chain(exc)
    if said and len(chain) >= 2:
        around = str(chain[-2]).split(_ECHOED_MESSAGES, 1)[0].strip()
        if said in around and len(around) > len(said) and not around.startswith("litellm."):
            detail = _short(around)
    return detail


def _raised_translating(exc: BaseException) -> bool:
    frames: Iterable[tuple[Any, int]] = traceback.walk_tb(exc.__traceback__)
    for frame, _ in frames:
        code = frame.f_code
        if "transform_request" in code.co_name or code.co_name in _MAPS_PARAMS:
            return True
        if _PROMPT_TEMPLATES in code.co_filename.replace("\\", "/"):
            return True
    return False


def _is_unreadable_answer(exc: BaseException, chain: list[BaseException], text: str) -> bool:
    """Whether litellm failed reading an answer the provider did send (a 2xx body)."""
    if any(200 <= (_status_code(cause) or 0) < 300 for cause in chain):
        return True
    if chain and _is_statusless_error_object(chain[-1]):
        return True
    if chain and type(chain[-1]).__name__ in _PARSE_ERRORS:
        return True
    return any(t in text for t in _MALFORMED_TEXT)


def _is_statusless_error_object(root: BaseException) -> bool:
    """Whether ``root`` is litellm's report of an ``error`` object in a 2xx body that names no
    status (``{"error": {"message": "overloaded"}}``, as some OpenAI-compatible gateways
    answer): litellm calls it a 422, so a bad request, which would stop the call although
    nothing says the request was at fault. OpenAI's own shape gives a ``code`` that is null or
    text (``"server_error"``), no status either. With a numeric ``code`` (OpenRouter's 429,
    502...), the status is the body's own and classifies as any other."""
    # litellm sets the body's code as status_code, null included; its other failures there
    # ("Error in response object format") carry none.
    if not hasattr(root, "status_code") or _status_code(root) not in (None, _NO_STATUS_GIVEN):
        return False
    frames = [frame for frame, _ in traceback.walk_tb(root.__traceback__)]
    return bool(frames) and frames[-1].f_code.co_name == _READS_ANSWER


def _root(exc: BaseException) -> BaseException:
    """The innermost exception behind ``exc`` (``exc`` itself when nothing is behind it)."""
    chain = _chain(exc)
    return chain[-1] if chain else exc


def _chain(exc: BaseException) -> list[BaseException]:
    """The exceptions behind ``exc``, nearest first (litellm keeps the provider's error)."""
    found: list[BaseException] = []
    seen = {id(exc)}
    pending: list[BaseException | None] = [exc.__cause__ or exc.__context__]
    original = getattr(exc, "original_exception", None)
    if isinstance(original, BaseException):
        pending.insert(0, original)
    for current in pending:
        while current is not None and id(current) not in seen and len(found) < 16:
            found.append(current)
            seen.add(id(current))
            current = current.__cause__ or current.__context__
    return found


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _provider_status(exc: BaseException) -> int | None:
    """The HTTP status the provider answered with: that of the innermost exception holding
    the HTTP response (the transport's), else ``exc``'s own. litellm reports some under a
    status of its own: Anthropic's 529 overloaded as a 500, a 413 as a 400."""
    for cause in reversed([exc, *_chain(exc)]):
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return _status_code(exc)


def _code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    # litellm raises an error object found in a 2xx body with its code as ``status_code``.
    code = getattr(exc, "status_code", None)
    if isinstance(code, str):
        return code
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return None


def _message(exc: BaseException, deployment: str | None) -> str:
    where = f"deployment '{deployment}': " if deployment else ""
    return f"{where}{_short(str(exc) or type(exc).__name__)}"


def _malformed_message(exc: BaseException, deployment: str | None, model: str | None) -> str:
    who = f"deployment '{deployment}'" if deployment else "the provider"
    if model:
        who += f" ({model})"
    root = _root(exc)
    if _ended_unfinished(exc, _chain(exc)):
        return f"{who}: {NO_FINISH_REASON}"
    detail = _short(str(exc) or type(exc).__name__)
    if type(root).__name__ in _PARSE_ERRORS:
        # litellm's own text is then a traceback; the parse error says what was missing.
        detail = f"{type(root).__name__}: {_short(str(root))}"
    elif _is_statusless_error_object(root):
        # litellm's text may have lost the provider's message; the body's error says it.
        said = getattr(root, "message", None)
        detail = f"an error object without a status code: {_short(str(said or root))}"
    return (
        f"{who} answered with something that is not a valid response"
        f" (a proxy's page, an empty body or a body of another shape?): {detail}"
    )


def _params_unsupported(exc: BaseException) -> bool:
    """Whether litellm refused the call's parameters for the target provider, before sending
    (its ``UnsupportedParamsError``: ``thinking`` on gpt-4o, ``parallel_tool_calls`` on o1)."""
    return any(type(c).__name__ == "UnsupportedParamsError" for c in (exc, *_chain(exc)))


def _unsupported_text(exc: BaseException) -> str:
    """litellm's first sentence of an ``UnsupportedParamsError`` ("openai does not support
    parameters: ['thinking'], for model=gpt-4o"), without its advice for litellm's proxy."""
    cause = next(c for c in (exc, *_chain(exc)) if type(c).__name__ == "UnsupportedParamsError")
    text = str(getattr(cause, "message", None) or cause)
    text = text.removeprefix("litellm.UnsupportedParamsError: ")
    return _short(text.split(". To drop these", 1)[0].split("\n", 1)[0])


def _short(text: str) -> str:
    # litellm appends tracebacks to some messages; they say nothing about the provider.
    text = text.split("Traceback (most recent call last)", 1)[0].strip()
    return text[:500] + "..." if len(text) > 500 else text


def _answered_status(exc: BaseException) -> int | None:
    for cause in (exc, *_chain(exc)):
        status = _status_code(cause)
        if status is not None and 200 <= status < 300:
            return status
    return None


def _header_sources(exc: BaseException) -> list[Any]:
    sources = [
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ]
    return [s for s in sources if s]


def _header(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
    except (AttributeError, TypeError):
        return None
    return str(value) if value is not None else None


def _number(text: str) -> float | None:
    if len(text) > _MAX_HEADER_CHARS:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    # "inf" or "nan" says nothing about when to come back: no hint, like any other garbage.
    return value if math.isfinite(value) and value >= 0 else None
