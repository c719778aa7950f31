"""The output limit a call will send to a deployment, known before the call is made.

``fastest`` compares unstreamed deployments at the answer length the request can have: an
answer capped at 20 tokens cannot take as long as one of the typical 400, and where two
deployments' answer-time lines cross (a quick start with slow generation against a slow start
with fast generation) the one quicker for short answers should win short requests.

The limit is the one the executor will send, so it is worked out the way the executor merges
parameters, later winning: the deployment's ``params`` < the call's own < the route's
``params``; then ``defaults.max_tokens`` when neither ``max_tokens`` nor
``max_completion_tokens`` is set (a limit given as ``None`` is not given). When both are set,
either may be the one the provider honours, so the larger bounds the answer (as budget
estimates read it). A model's own output limit is not counted: it is not sent, and the
typical answer is far shorter than any model's limit.

Example:
    >>> sent_output_bound({"max_tokens": 20}, {}, {}, 1000)
    20
    >>> sent_output_bound({"max_tokens": 20}, {"max_tokens": 50}, {}, None)
    50
    >>> sent_output_bound({}, {}, {"max_completion_tokens": 64}, 1000)
    64
    >>> sent_output_bound({}, {}, {}, None) is None
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["OUTPUT_LIMIT_KEYS", "OutputBound", "given_limit", "limits_output", "sent_output_bound"]

OUTPUT_LIMIT_KEYS: Final = ("max_tokens", "max_completion_tokens")
"""The call parameters that cap an answer's length."""

OutputBound = Callable[[str], "int | None"]
"""A deployment alias's output limit for one request (``None``: unlimited)."""


def limits_output(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` name an output limit (even as ``None``, which unsets one).

    Example:
        >>> limits_output({"temperature": 0.2}), limits_output({"max_tokens": None})
        (False, True)
    """
    return any(key in params for key in OUTPUT_LIMIT_KEYS)


def given_limit(params: Mapping[str, Any]) -> int | None:
    """The larger of the output limits ``params`` give as whole numbers of at least 0, or
    ``None`` if they give none. When both keys are set, either may be the one the provider
    honours (litellm maps both onto one field for some providers, the last one winning), so
    the larger bounds the answer; a bool, a negative or a non-integer limits nothing.

    Example:
        >>> given_limit({"max_tokens": 100, "max_completion_tokens": 300})
        300
        >>> given_limit({"max_tokens": True}), given_limit({})
        (None, None)
    """
    given = [
        value
        for key in OUTPUT_LIMIT_KEYS
        if isinstance(value := params.get(key), int) and not isinstance(value, bool) and value >= 0
    ]
    return max(given) if given else None


def sent_output_bound(
    call: Mapping[str, Any],
    route: Mapping[str, Any],
    model: Mapping[str, Any],
    default_max_tokens: int | None,
) -> int | None:
    """The most output tokens the call's answer can have, or ``None`` if nothing caps it.

    ``call``, ``route`` and ``model`` are the call's, the route's and the deployment's params;
    ``default_max_tokens`` is the policy's ``defaults.max_tokens``.
    """
    sent = {
        key: route[key] if key in route else call[key] if key in call else model.get(key)
        for key in OUTPUT_LIMIT_KEYS
    }
    if all(value is None for value in sent.values()):
        return default_max_tokens
    return given_limit(sent)
