"""Whether ``with_structured_output(method="function_calling")`` may send
``parallel_tool_calls: false``, as langchain-openai's ``ChatOpenAI`` does.

The parameter keeps the model to the one call of the schema's tool. litellm refuses it, before
sending, for providers and models that do not take it (OpenAI's o1 and o3-mini, Ollama, Cohere,
watsonx, ...) with an ``UnsupportedParamsError``, which would fail over or fail a call that
works without it. The request is made before routing picks a deployment, so the parameter is
sent only when every deployment of the policy that could answer a call with tools takes it
(or sets it in its own ``params``, and so sends it anyway, or sets ``drop_params``, so that
litellm leaves it out where it is not taken).

Example:
    >>> takes_parallel_tool_calls(load_policy("policies/tiered.yaml"))  # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyroute._lazy import import_litellm
from policyroute.langchain_.profile import reachable_aliases

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.model import ModelSpec

__all__ = ["takes_parallel_tool_calls"]

PARAM = "parallel_tool_calls"

_KNOWN: dict[str, bool] = {}
"""The answer per policy content hash: a policy's deployments are part of its content."""

_KNOWN_MAX = 256


def takes_parallel_tool_calls(policy: CompiledPolicy) -> bool:
    """Whether every deployment ``policy`` could send a call with tools to takes
    ``parallel_tool_calls`` (see the module docstring).

    A deployment without tool calling is never chosen for such a call, so it does not count.
    """
    known = _KNOWN.get(policy.content_hash)
    if known is None:
        known = all(
            _takes(policy.spec.models[alias])
            for alias in reachable_aliases(policy)
            if policy.model_info(alias).supports_tools
        )
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        _KNOWN[policy.content_hash] = known
    return known


def _takes(spec: ModelSpec) -> bool:
    if PARAM in spec.params:
        return True  # the deployment sends it in any case
    if spec.params.get("drop_params") is True:
        return True  # litellm leaves it out where the provider does not take it
    litellm = import_litellm()
    try:
        model, provider, _, _ = litellm.get_llm_provider(spec.model, api_base=spec.api_base)
        supported: Any = litellm.get_supported_openai_params(
            model=model, custom_llm_provider=provider
        )
    except Exception:  # litellm does not know the model: it may refuse the parameter
        return False
    return isinstance(supported, list) and PARAM in supported
