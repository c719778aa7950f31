"""Semantic checks of ``defaults.retry``: error classes a retry of the same deployment cannot fix.

A retry sends the same request to the same deployment. For some classes that is certain to
fail the same way, so listing them in ``retry.on`` only adds attempts, backoff and cost
before the call moves on or stops (PR142, a warning):

- ``context_window`` and ``content_policy`` are never retried on the same deployment, whatever
  ``on`` says: listed there they only fall over to the next deployment, which is what
  ``fallback_on`` says;
- ``authentication`` and ``not_found`` (a key refused, a model that does not exist there) are
  retried as asked, and refused again: ``fallback_on`` tries the next deployment at once;
- ``bad_request`` is retried as asked, and the same request is refused again.

Example:
    >>> from policyroute.policy.validate import validate_text
    >>> text = "policyroute: 1\\nname: t\\nmodels: {m: {model: openai/gpt-4o-mini}}\\n"
    >>> text += "routes: [{name: d, to: m}]\\ndefaults: {retry: {on: [timeout, not_found]}}\\n"
    >>> [(d.code, d.path) for d in validate_text(text, environ={}).diagnostics]
    [('PR142', 'defaults.retry.on[1]')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyroute.policy.model import NEVER_RETRIED, RetrySpec

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_retry_classes"]

_DEFAULT_FALLBACK_ON = RetrySpec().fallback_on
# What a retry of the same deployment meets again, per class listed in ``retry.on``.
_REFUSED_AGAIN = {
    "authentication": "the deployment refuses the same credentials again",
    "not_found": "the deployment still has no such model or endpoint",
    "bad_request": "the same request is refused again",
}


def check_retry_classes(c: Checker) -> None:
    """PR142: ``defaults.retry.on`` entries that a retry of the same deployment cannot fix."""
    defaults = c.data.get("defaults")
    retry = defaults.get("retry") if isinstance(defaults, dict) else None
    if not isinstance(retry, dict):
        return
    on, fallback_on = retry.get("on"), retry.get("fallback_on")
    if not isinstance(on, list):
        return
    falls_over = _names(fallback_on) if isinstance(fallback_on, list) else _DEFAULT_FALLBACK_ON
    for i, name in enumerate(on):
        if not isinstance(name, str):
            continue  # the schema reports it
        path = ("defaults", "retry", "on", i)
        listed = name in falls_over
        if name in NEVER_RETRIED:
            # Never retried, a class in ``on`` falls over as one in ``fallback_on`` does.
            c.emit(
                "PR142",
                path,
                f"retry.on lists '{name}', which is never retried on the same deployment:"
                + (
                    " the entry does nothing (fallback_on lists it)"
                    if listed
                    else " the entry only falls over to the next deployment, as fallback_on does"
                ),
                hint="remove it from retry.on" if listed else "move it to fallback_on",
            )
        elif name in _REFUSED_AGAIN:
            hint = "remove it from retry.on"
            if name != "bad_request":
                hint += (
                    "; fallback_on moves to the next deployment at once"
                    if listed
                    else " and add it to fallback_on to move to the next deployment at once"
                )
            c.emit(
                "PR142",
                path,
                f"retry.on lists '{name}': a retry of the same deployment only adds attempts"
                f" and waits, as {_REFUSED_AGAIN[name]}",
                hint=hint,
            )


def _names(values: list[Any]) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str))
