"""The shape of a call, checked before it is routed, priced or sent.

A malformed call must fail at once with a :class:`~policyroute.errors.RequestError` that
names the field, not travel on: a budget estimate would read ``max_tokens="lots"`` as no
limit, a provider would answer it with a 400 after the reservation was made, and litellm
fails on some shapes (a ``response_format`` that is a number) with errors that look like a
provider's and would be retried. Only what has one unambiguous type is checked; parameters
policyroute does not know are passed on untouched, for the provider to judge.

Example:
    >>> check_params({"max_tokens": 256, "temperature": 0.2, "stop": ["\\n\\n"]})
    >>> try:
    ...     check_params({"n": "two"})
    ... except RequestError as exc:
    ...     print(exc)
    request parameter 'n' must be a whole number of at least 1, got 'two'
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from policyroute._lazy import import_litellm
from policyroute.api_headers import refuse_credential_headers
from policyroute.errors import RequestError
from policyroute.message_checks import check_parts, shown

__all__ = ["check_call", "check_facts", "check_params", "check_parts", "refuse_takeovers"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _count(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _seed(value: Any) -> bool:
    # Providers read a seed as a signed 64-bit integer (OpenAI refuses any other with a 400).
    return _is_int(value) and -(2**63) <= value < 2**63


def _stop(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value)
    )


def _mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _timeout(value: Any) -> bool:
    # A number must be positive. litellm also takes an httpx.Timeout, and fails on any other
    # object (float() of a list) with an error read as an unreadable answer from the provider.
    if _is_number(value):
        return bool(value > 0)
    httpx = sys.modules.get("httpx")  # an httpx.Timeout's caller has imported it
    return httpx is not None and isinstance(value, httpx.Timeout)


_Check = tuple[Callable[[Any], bool], str]
_COUNT: _Check = (_count, "a whole number of at least 1")
_WHOLE: _Check = (_is_int, "a whole number")
_NUMBER: _Check = (_is_number, "a number")
_FLAG: _Check = (_flag, "true or false")

# Parameter -> (test, what it must be). A call's few parameters are looked up here, rather
# than every known parameter being looked up in the call.
_CHECKS: dict[str, _Check] = {
    "n": _COUNT,
    "max_tokens": _COUNT,
    "max_completion_tokens": _COUNT,
    "max_output_tokens": _COUNT,
    "seed": (_seed, "a whole number from -2**63 to 2**63 - 1"),
    "top_logprobs": _WHOLE,
    "top_k": _WHOLE,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "logprobs": _FLAG,
    "parallel_tool_calls": _FLAG,
    "stop": (_stop, "a string or a list of strings"),
    "timeout": (_timeout, "a positive number of seconds or an httpx.Timeout"),
    # litellm reads these itself before sending (``dict.update``, ``WebSearchOptions(**...)``);
    # of another type they fail there with errors it reports as a connection failure or an
    # unreadable answer, which would be retried, fall over and open the deployment's breaker.
    "extra_body": (_mapping, "a mapping of fields to add to the request body"),
    "web_search_options": (_mapping, "a mapping such as {'search_context_size': 'low'}"),
}


# litellm arguments that would take over what the policy decides, refused with the reason
# and what to do instead. The retry counts pass when they ask for no retries (0), which is
# what policyroute sends anyway.
_RETRIES = "policyroute is the only retry layer; set defaults.retry in the policy instead"
_FALLBACKS = (
    "litellm's own fallbacks would bypass the policy's routes, budgets and receipts;"
    " list the fallback deployments in the route's 'to' instead"
)
_DEPLOYMENT = (
    "a deployment setting would be sent to every candidate of the route, another"
    " provider's included; set it on the policy's model (for a key: api_key: ${ENV_VAR})"
)
_ELSEWHERE = (
    "litellm would send the call to other deployments than the route's, with their own keys,"
    " outside the policy's breakers; declare them under the policy's models and route to them"
)
_CLIENT = (
    "litellm would send the call through that SDK client, to its endpoint with its key, in"
    " place of the api_base and api_key of the policy's models; set those on the models"
)
_PRICE = (
    "litellm would take it as the model's price for every later call in the process, those of"
    " other policies included, and budgets and receipts would charge it; give the policy's"
    " model a price: {input_per_mtok: ..., output_per_mtok: ...} instead"
)
_MOCK = (
    "litellm's mock answers without a provider, yet its made-up usage would be charged to"
    " the policy's budgets and receipts; test with policyroute.testing.FakeProvider instead"
)
_REFUSED: dict[str, str] = {
    "num_retries": _RETRIES,
    "max_retries": _RETRIES,
    # litellm reads it before num_retries and retries inside the attempt as it says.
    "retry_policy": _RETRIES,
    "fallbacks": _FALLBACKS,
    "context_window_fallback_dict": _FALLBACKS,
    "api_key": _DEPLOYMENT,
    "api_base": _DEPLOYMENT,
    "base_url": _DEPLOYMENT,
    "api_version": _DEPLOYMENT,
    "custom_llm_provider": _DEPLOYMENT,
    # litellm turns the call into an Azure one on every candidate (its deployment name, or
    # the route's model name as one), whatever provider the policy's model names.
    "deployment_id": _DEPLOYMENT,
    "azure": _DEPLOYMENT,
    "model_list": _ELSEWHERE,
    "client": _CLIENT,
    "mock_response": _MOCK,
    "mock_tool_calls": _MOCK,
    "mock_timeout": _MOCK,
}


def _litellm_price(name: str) -> bool:
    """Whether litellm reads a call argument ``name`` as a price of the model
    (``input_cost_per_token``, ``output_cost_per_second``...): given with a per-token or
    per-second price, litellm registers them in its price map for the whole process.

    Example:
        >>> _litellm_price("input_cost_per_token"), _litellm_price("temperature")
        (True, False)
    """
    # Every price litellm takes has one of these words in its name; the usual parameters are
    # told apart without importing litellm (seconds, where a model is only being built).
    if "cost" not in name and "pricing" not in name and "uplift" not in name:
        return False
    return name in _litellm_prices()


@functools.cache
def _litellm_prices() -> frozenset[str]:
    """The names of litellm's per-call price arguments, as the installed litellm lists them."""
    fields = import_litellm().types.utils.CustomPricingLiteLLMParams.model_fields
    return frozenset(fields)


def refuse_takeovers(params: Mapping[str, Any]) -> None:
    """Refuse litellm arguments that would take over what the policy decides: retries,
    litellm's own fallbacks, a deployment's key, endpoint or provider (sent to every
    candidate, another provider's included), an SDK ``client`` (its own endpoint and key),
    litellm's ``model_list`` of other deployments,
    prices (``input_cost_per_token``..., which litellm would keep for the whole process)
    and litellm's mock answers (whose made-up usage would be
    charged). Each is a :class:`RequestError` saying what to do instead; ``None``,
    ``False`` and retry counts of 0 pass.

    Example:
        >>> refuse_takeovers({"num_retries": 0, "temperature": 0.2})
        >>> try:
        ...     refuse_takeovers({"fallbacks": ["gpt-4o"]})
        ... except RequestError as exc:
        ...     print(str(exc)[:46])
        request parameter 'fallbacks' is not accepted:
    """
    for name, value in params.items():
        reason = _REFUSED.get(name)
        if reason is None and _litellm_price(name):
            reason = _PRICE
        if reason is None or value is None or value is False:
            continue
        if reason is _RETRIES and value == 0:
            continue
        raise RequestError(f"request parameter {name!r} is not accepted: {reason}")


def refuse_policy_owned(params: Mapping[str, Any]) -> None:
    """Refuse what a call may not set because the policy owns it: :func:`refuse_takeovers`'
    arguments, and headers that carry a credential or cannot be sent
    (:func:`~policyroute.api_headers.refuse_credential_headers`). Every entry point runs it on
    the arguments it is given: at the call, where they are bound, where a model is built.

    Example:
        >>> refuse_policy_owned({"temperature": 0, "extra_headers": {"X-Trace": "t1"}})
        >>> try:
        ...     refuse_policy_owned({"extra_headers": {"x-api-key": "k"}})
        ... except RequestError as exc:
        ...     print(str(exc)[:63])
        request parameter 'extra_headers' may not carry the 'x-api-key'
    """
    refuse_takeovers(params)
    refuse_credential_headers(params)


def check_facts(model: Any, metadata: Any, tags: Any) -> None:
    """Check the routing facts of a call: a ``model`` string, a ``metadata`` mapping and a
    collection of string ``tags`` (each may be ``None``). Of the wrong shape they would be read
    as other facts (a string of tags as one tag per letter) or fail deep inside routing.

    Example:
        >>> check_facts("gpt-4o", {"user_id": "u1"}, ["beta"])
        >>> try:
        ...     check_facts(None, None, "beta")
        ... except RequestError as exc:
        ...     print(exc)
        request field 'tags' must be a list of strings, got 'beta'
    """
    if model is not None and not isinstance(model, str):
        raise RequestError(f"request field 'model' must be a string, got {type(model).__name__}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise RequestError(
            f"request field 'metadata' must be a mapping, got {type(metadata).__name__}"
        )
    if tags is not None and (
        isinstance(tags, str)
        or not isinstance(tags, (Sequence, set, frozenset))
        or not all(isinstance(tag, str) for tag in tags)
    ):
        raise RequestError(f"request field 'tags' must be a list of strings, got {shown(tags)}")


def check_params(params: Mapping[str, Any]) -> None:
    """Raise :class:`RequestError` when a call parameter policyroute knows has a wrong type,
    or when any parameter holds a number that is not finite.

    ``None`` means "not given" and passes. ``n`` and the ``max_*tokens`` limits are whole
    numbers of at least 1; sampling parameters are numbers; ``stop`` is a string or a list
    of strings; ``timeout`` is a positive number of seconds or an ``httpx.Timeout``;
    ``extra_body`` and
    ``web_search_options`` are mappings. No parameter may hold ``NaN`` or
    an infinity, at any depth (``temperature``, ``timeout``, ``logit_bias``, ``extra_body``):
    a call is sent as JSON, which has neither, so litellm would send a token providers refuse
    with a 400, after the budget reservation was made (or, for ``timeout``, overflow the
    clock the call is timed with).

    Example:
        >>> try:
        ...     check_params({"temperature": float("nan")})
        ... except RequestError as exc:
        ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
        request parameter 'temperature' holds nan, which is not a finite number: a call is
        sent as JSON, which has no NaN or infinity; give a finite number
    """
    for key, value in params.items():
        check = _CHECKS.get(key)
        if check is not None and value is not None and not check[0](value):
            raise RequestError(f"request parameter {key!r} must be {check[1]}, got {shown(value)}")
        for where, number in _non_finite(value, key, 0):
            raise RequestError(
                f"request parameter {where!r} holds {number!r}, which is not a finite number:"
                " a call is sent as JSON, which has no NaN or infinity; give a finite number"
            )


# Deep enough for any provider's nested options; a deeper (or self-containing) value is the
# provider's to judge.
_MAX_DEPTH = 8


def _non_finite(value: Any, where: str, depth: int) -> Iterator[tuple[str, float]]:
    """The places in ``value`` (named from ``where``) holding a float that is not finite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield where, value
    elif depth >= _MAX_DEPTH or isinstance(value, (str, bytes)):
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{where}[{i}]", depth + 1)


def check_call(
    params: Mapping[str, Any],
    *,
    tools: Any = None,
    tool_choice: Any = None,
    response_format: Any = None,
) -> None:
    """:func:`check_params`, plus the shape of ``tools``, ``tool_choice`` and
    ``response_format`` (OpenAI format; ``response_format`` may also be a pydantic class,
    which litellm turns into a JSON schema).

    Example:
        >>> check_call({}, tools=[{"type": "function", "function": {"name": "f"}}])
        >>> try:
        ...     check_call({}, response_format=5)
        ... except RequestError as exc:
        ...     print(exc)  # doctest: +ELLIPSIS
        request field 'response_format' must be a mapping such as {'type': 'json_object'} or ...
    """
    check_params(params)
    if tools is not None:
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
            raise RequestError(f"request field 'tools' must be a list of tools, got {shown(tools)}")
        for i, tool in enumerate(tools):
            _check_tool(i, tool)
    if tool_choice is not None and not isinstance(tool_choice, (str, Mapping)):
        raise RequestError(
            "request field 'tool_choice' must be a string such as 'auto' or a mapping,"
            f" got {shown(tool_choice)}"
        )
    if response_format is not None and not (
        isinstance(response_format, Mapping) or _is_pydantic_class(response_format)
    ):
        raise RequestError(
            "request field 'response_format' must be a mapping such as {'type': 'json_object'}"
            f" or a pydantic model class, got {shown(response_format)}"
        )
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        _check_json_schema(response_format.get("json_schema"))


def _check_json_schema(spec: Any) -> None:
    """A ``json_schema`` response format's own field: a mapping (OpenAI's has a ``name``; a
    policy test may leave it out) whose ``schema``, if given, is a mapping. litellm converts it
    for other providers (Anthropic's output format, Gemini's response schema) before sending,
    and fails on other shapes with errors it reports as an unreadable answer from the
    deployment."""
    where = "response_format.json_schema"
    if not isinstance(spec, Mapping):
        raise RequestError(
            f"request field '{where}' must be a mapping such as"
            f" {{'name': 'answer', 'schema': {{...}}}}, got {shown(spec)}"
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise RequestError(
            f"request field '{where}.schema' must be a JSON schema mapping, got {shown(schema)}"
        )


def _is_pydantic_class(value: Any) -> bool:
    # Told by its schema method, so the check needs no pydantic import.
    return isinstance(value, type) and callable(getattr(value, "model_json_schema", None))


def _check_tool(i: int, tool: Any) -> None:
    if not isinstance(tool, Mapping):
        raise RequestError(f"request field 'tools[{i}]' must be a mapping, got {shown(tool)}")
    if "function" not in tool:
        return  # a provider's own tool type (web search, code execution...): theirs to judge
    function = tool["function"]
    if not isinstance(function, Mapping):
        raise RequestError(
            f"request field 'tools[{i}].function' must be a mapping with a 'name',"
            f" got {shown(function)}"
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(
            f"request field 'tools[{i}].function.name' must be a non-empty string,"
            f" got {shown(name)}"
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise RequestError(
            f"request field 'tools[{i}].function.parameters' must be a JSON schema mapping,"
            f" got {shown(parameters)}"
        )
