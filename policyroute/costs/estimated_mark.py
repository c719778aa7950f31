"""The mark saying a response's usage was counted locally, not reported by its provider.

The executor counts tokens itself (litellm's token counter) when a stream ends without the
provider's usage or a response reports counts no provider can mean; it marks the response so
that the attempt's receipt says ``usage_estimated``. The mark lives in the response's
``_hidden_params``, beside what litellm itself keeps there.

Example:
    >>> response = {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    >>> usage_estimated(response)
    False
    >>> mark_usage_estimated(response)
    >>> usage_estimated(response)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from policyroute._fields import read as _get

__all__ = ["mark_usage_estimated", "usage_estimated"]

_log = logging.getLogger("policyroute.costs")


# The mark :func:`mark_usage_estimated` leaves in a response's ``_hidden_params``, where
# litellm keeps what it knows about a response beyond the provider's body.
_ESTIMATED = "policyroute_usage_estimated"


def mark_usage_estimated(response: Any) -> None:
    """Note on ``response`` that its usage was counted locally (litellm's token counter):
    the provider never reported it, or reported counts no provider can mean.

    Example:
        >>> response = {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}
        >>> mark_usage_estimated(response)
        >>> usage_estimated(response)
        True
    """
    hidden = _get(response, "_hidden_params")
    if isinstance(hidden, dict):
        hidden[_ESTIMATED] = True
    elif isinstance(response, MutableMapping):
        response["_hidden_params"] = {_ESTIMATED: True}
    else:
        try:
            response._hidden_params = {_ESTIMATED: True}
        except (AttributeError, TypeError, ValueError):  # a frozen or slotted object
            _log.debug("could not mark %s as estimated", type(response).__name__)


def usage_estimated(response: Any) -> bool:
    """Whether :func:`mark_usage_estimated` marked ``response``.

    Example:
        >>> usage_estimated({"usage": {"prompt_tokens": 3}})
        False
    """
    hidden = _get(response, "_hidden_params")
    return isinstance(hidden, Mapping) and hidden.get(_ESTIMATED) is True
