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

__all__ = ["OUTPUT_LIMIT_KEYS", "OutputBound", "limits_output", "sent_output_bound"]

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
    return "max_tokens" in params or "max_completion_tokens" in params


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
    largest: int | None = None
    unset = True
    for key in OUTPUT_LIMIT_KEYS:
        if key in route:
            value = route[key]
        elif key in call:
            value = call[key]
        else:
            value = model.get(key)
        if value is None:
            continue
        unset = False
        # a limit no provider reads as one (a bool, a negative or a non-integer) caps nothing
        if type(value) is int and value >= 0 and (largest is None or value > largest):
            largest = value
    if unset:
        return default_max_tokens
    return largest
