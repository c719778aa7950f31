"""JSON mode on deployments that speak Anthropic's format, per attempt.

OpenAI's JSON mode (``response_format={"type": "json_object"}``) has no counterpart in
Anthropic's API, and litellm sends nothing for it there (it maps only a ``response_format``
that carries a schema, to Anthropic's ``output_format`` or a forced tool): Claude then answers
in prose and a JSON parser fails. A route may mix providers and fall over between them, so the
request is adapted for each deployment as it is tried:

- with a schema carried along (``with_structured_output(schema, method="json_mode")`` keeps it
  under :data:`SCHEMA_KEY`), an Anthropic-format deployment gets that schema as a
  ``json_schema`` response format, which litellm turns into a constrained answer; this is what
  langchain-anthropic does with ``json_mode``;
- without one (``policyroute.completion(response_format={"type": "json_object"})``), it gets a
  system instruction to answer with one JSON object only (:func:`messages_for`), the nearest
  thing Claude honours to an unconstrained JSON object;
- every other deployment gets ``json_object`` unchanged, and :data:`SCHEMA_KEY` never leaves.

Example:
    >>> carried = {"type": "json_schema", "json_schema": {"name": "P", "schema": {}}}
    >>> params = {"response_format": {"type": "json_object"}, SCHEMA_KEY: carried}
    >>> response_format_for(params, anthropic_format=True)["type"]
    'json_schema'
    >>> response_format_for(params, anthropic_format=False)
    {'type': 'json_object'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "JSON_INSTRUCTION",
    "SCHEMA_KEY",
    "messages_for",
    "needs_instruction",
    "response_format_for",
]

SCHEMA_KEY: Final = "policyroute_json_mode_schema"
"""The call parameter holding, beside a ``json_object`` response format, the ``json_schema``
response format an Anthropic-format deployment gets instead (taken off before every send)."""

JSON_INSTRUCTION: Final = (
    "Respond with a single valid JSON object and nothing else:"
    " no text before or after it and no code fences."
)
"""The system instruction an Anthropic-format deployment gets for JSON mode without a schema."""


def _json_object(params: Mapping[str, Any]) -> bool:
    fmt = params.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") == "json_object"


def response_format_for(params: Mapping[str, Any], *, anthropic_format: bool) -> Any:
    """The ``response_format`` of ``params`` as sent to a deployment: the carried
    ``json_schema`` form (:data:`SCHEMA_KEY`) in place of ``json_object`` where the deployment
    speaks Anthropic's format; unchanged everywhere else.

    Example:
        >>> response_format_for({"response_format": {"type": "json_object"}},
        ...                     anthropic_format=True)
        {'type': 'json_object'}
    """
    carried = params.get(SCHEMA_KEY)
    if anthropic_format and isinstance(carried, Mapping) and _json_object(params):
        return dict(carried)
    return params.get("response_format")


def needs_instruction(params: Mapping[str, Any], *, anthropic_format: bool) -> bool:
    """Whether a deployment gets :data:`JSON_INSTRUCTION`: it speaks Anthropic's format and
    ``params`` ask for a JSON object with no schema carried along.

    Example:
        >>> needs_instruction({"response_format": {"type": "json_object"}}, anthropic_format=True)
        True
    """
    return anthropic_format and _json_object(params) and params.get(SCHEMA_KEY) is None


def messages_for(messages: list[Any]) -> list[Any]:
    """``messages`` with :data:`JSON_INSTRUCTION` as a system message after the leading
    system messages, so that a caller's cached system prompt stays the prefix it was.
    ``messages`` is not changed.

    Example:
        >>> [m["role"] for m in messages_for([{"role": "user", "content": "hi, in JSON"}])]
        ['system', 'user']
    """
    at = 0
    while at < len(messages):
        message = messages[at]
        if not (isinstance(message, Mapping) and message.get("role") == "system"):
            break
        at += 1
    return [*messages[:at], {"role": "system", "content": JSON_INSTRUCTION}, *messages[at:]]
