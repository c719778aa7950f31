"""Asking for one tool call, per deployment: ``parallel_tool_calls: false`` where it is taken.

``with_structured_output(method="function_calling")`` wants one call of the schema's tool, as
langchain-openai's ``ChatOpenAI`` asks with ``parallel_tool_calls: false``. litellm refuses
the parameter before sending for providers and models that do not take it (OpenAI's o1 and
o3-mini, Ollama, Cohere, watsonx, ...) with an ``UnsupportedParamsError``, which would move
the call on or fail it although it works without the parameter. A route may mix such
deployments with others, so the wish travels with the call under :data:`ONE_TOOL_CALL_KEY`
and each attempt turns it into the parameter for its own deployment (:func:`apply`):

- where the call, the route or the deployment already sets ``parallel_tool_calls``, that
  value is sent as it is;
- where litellm lists the parameter for the deployment's model, or the attempt's params set
  ``drop_params: true`` (litellm then leaves out what the provider does not take), it is
  sent as ``false``; Claude gets it as ``disable_parallel_tool_use``;
- elsewhere nothing is sent, and the key itself never leaves.

Example:
    >>> params = {ONE_TOOL_CALL_KEY: True, "drop_params": True}
    >>> apply(params, "ollama_chat/llama3", None)
    >>> params
    {'drop_params': True, 'parallel_tool_calls': False}
"""

from __future__ import annotations

from typing import Any, Final

from policyroute._lazy import import_litellm

__all__ = ["ONE_TOOL_CALL_KEY", "PARAM", "apply", "takes_parallel_tool_calls"]

ONE_TOOL_CALL_KEY: Final = "policyroute_one_tool_call"
"""The call parameter that asks for ``parallel_tool_calls: false`` where the deployment
takes it; policyroute's own, never sent."""

PARAM: Final = "parallel_tool_calls"

# The answer per (litellm model, api_base): asking litellm costs tens of microseconds.
_TAKES: dict[tuple[str, str | None], bool] = {}
_TAKES_MAX: Final = 1024


def takes_parallel_tool_calls(model: str, api_base: str | None) -> bool:
    """Whether litellm sends ``parallel_tool_calls`` to ``model`` (a litellm model string)
    rather than refusing it; ``False`` for a model litellm cannot place.

    Example:
        >>> takes_parallel_tool_calls("openai/gpt-4o", None)
        True
        >>> takes_parallel_tool_calls("openai/o3-mini", None)
        False
    """
    key = (model, api_base)
    known = _TAKES.get(key)
    if known is None:
        litellm = import_litellm()
        try:
            name, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
            supported: Any = litellm.get_supported_openai_params(
                model=name, custom_llm_provider=provider
            )
        except Exception:  # litellm does not know the model: it may refuse the parameter
            supported = None
        known = isinstance(supported, list) and PARAM in supported
        if len(_TAKES) >= _TAKES_MAX:
            _TAKES.clear()
        _TAKES[key] = known
    return known


def apply(params: dict[str, Any], model: str, api_base: str | None) -> None:
    """Turn :data:`ONE_TOOL_CALL_KEY` in ``params`` (an attempt's merged params, for the
    deployment of litellm ``model`` at ``api_base``) into ``parallel_tool_calls: false``
    where the deployment takes it, and remove the key (see the module docstring)."""
    if not params.pop(ONE_TOOL_CALL_KEY, None) or PARAM in params:
        return
    if params.get("drop_params") is True or takes_parallel_tool_calls(model, api_base):
        params[PARAM] = False
