"""The LangChain model profile of a policy: what every deployment it could choose can do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from langchain_core.language_models.model_profile import ModelProfile

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["PolicyProfile", "is_resolved", "policy_profile"]


class PolicyProfile(dict[str, Any]):
    """A profile resolved from a policy, not given by the user: a model built or copied with
    another policy resolves its own instead of keeping this one.

    langchain-core builds a ``configurable_fields`` model anew from the default model's
    fields, its resolved ``profile`` among them, and ``model_copy`` copies it as is.
    """


def is_resolved(profile: object) -> bool:
    """Whether ``profile`` was resolved from a policy (rather than given by the user)."""
    return isinstance(profile, PolicyProfile)


def _reachable_aliases(policy: CompiledPolicy) -> list[str]:
    """Every model alias some route (or budget downgrade) could send a call to."""
    spec = policy.spec
    targets = [name for route in spec.routes for name in route.to.names]
    targets += [b.on_exceed.target for b in spec.budgets if b.on_exceed.target]
    routes = {route.name: route for route in spec.routes}
    seen: set[str] = set()
    out: list[str] = []
    while targets:
        name = targets.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in spec.models:
            out.append(name)
        elif name in spec.groups:
            targets.extend(spec.groups[name].models)
        elif name in routes:
            targets.extend(routes[name].to.names)
    return sorted(out)


def policy_profile(policy: CompiledPolicy) -> ModelProfile:
    """What every deployment the policy could choose is able to do.

    A capability is claimed only when all of them have it, and limits are the smallest, so
    code that checks the profile before a call can trust it whichever deployment answers.
    The profile is a :class:`PolicyProfile`.

    Example:
        >>> policy_profile(load_policy("policies/support.yaml"))["tool_calling"]  # doctest: +SKIP
        True
    """
    infos = [policy.model_info(alias) for alias in _reachable_aliases(policy)]
    tools = all(i.supports_tools for i in infos)
    vision = all(i.supports_vision for i in infos)
    profile = ModelProfile(
        text_inputs=True,
        text_outputs=True,
        tool_calling=tools,
        tool_choice=tools,
        tool_call_streaming=tools,
        structured_output=all(i.supports_json_schema for i in infos),
        image_inputs=vision,
        image_url_inputs=vision,
        reasoning_output=all(i.supports_reasoning for i in infos),
    )
    inputs = [i.max_input_tokens for i in infos]
    if infos and all(n is not None for n in inputs):
        profile["max_input_tokens"] = min(n for n in inputs if n is not None)
    outputs = [i.max_output_tokens for i in infos]
    if infos and all(n is not None for n in outputs):
        profile["max_output_tokens"] = min(n for n in outputs if n is not None)
    return cast(ModelProfile, PolicyProfile(profile))
