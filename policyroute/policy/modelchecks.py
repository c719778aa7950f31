"""Semantic checks that need litellm's model data: prices and capability requirements.

litellm's bundled price map is read as JSON (see :mod:`policyroute.costs.pricing`); litellm
itself is never imported while validating.

Example:
    >>> knows_capability({"model": "openai/gpt-4o-mini"}, "tools")
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyroute.costs.pricing import lookup_litellm_entry, resolve_model_info
from policyroute.policy.model import ModelInfo, ModelSpec

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_models", "check_requirements", "knows_capability"]

_CAPS = ("tools", "vision", "json_schema", "reasoning")


def _info(model: dict[str, Any]) -> ModelInfo:
    caps = model.get("capabilities")
    window = model.get("context_window")
    return resolve_model_info(
        ModelSpec(
            alias="",
            model=model["model"],
            capabilities={k: v for k, v in caps.items() if isinstance(v, bool)}
            if isinstance(caps, dict)
            else {},
            context_window=window if isinstance(window, int) and window > 0 else None,
        )
    )


def knows_capability(model: dict[str, Any], cap: str) -> bool:
    """Whether the policy or litellm says if ``model`` has ``cap`` (else it is unknown)."""
    caps = model.get("capabilities")
    if isinstance(caps, dict) and isinstance(caps.get(cap), bool):
        return True
    if cap == "min_context_window" and isinstance(model.get("context_window"), int):
        return True
    return lookup_litellm_entry(model["model"]) is not None


def _lacks(model: dict[str, Any], require: dict[str, Any]) -> list[str]:
    """Requirements ``model`` is known not to meet (unknown capabilities are given the benefit)."""
    info = _info(model)
    missing = []
    for cap in _CAPS:
        known = require.get(cap) is True and knows_capability(model, cap)
        if known and not getattr(info, f"supports_{cap}"):
            missing.append(cap)
    need = require.get("min_context_window")
    window = info.max_input_tokens
    if isinstance(need, int) and window is not None and window < need:
        missing.append(f"min_context_window {need}")
    return missing


def _valid_models(c: Checker) -> dict[str, dict[str, Any]]:
    return {
        alias: m
        for alias, m in c.models.items()
        if isinstance(m, dict) and isinstance(m.get("model"), str) and m["model"]
    }


def check_models(c: Checker) -> None:
    """PR118: every model must be priced by litellm or by the policy."""
    for alias, model in _valid_models(c).items():
        if "price" in model:
            continue
        if not _info(model).priced:
            c.emit(
                "PR118",
                ("models", alias, "model"),
                f"litellm has no price for {model['model']!r}, so budgets cannot be enforced",
                hint="add price: {input_per_mtok: ..., output_per_mtok: ...} to the model",
            )


def check_requirements(c: Checker) -> None:
    """PR124/PR125: a ``require`` that no candidate meets."""
    from policyroute.policy.checks import expand, targets

    models = _valid_models(c)
    owners: list[tuple[str, tuple[str | int, ...], list[str], Any]] = []
    for name, group in c.groups.items():
        if isinstance(group, dict):
            owners.append(("PR124", ("groups", name, "require"), [name], group.get("require")))
    for i, route in enumerate(c.routes):
        if isinstance(route, dict):
            names = [t for _, t in targets(route.get("to"))]
            owners.append(("PR125", ("routes", i, "require"), names, route.get("require")))
    for code, path, names, require in owners:
        if not isinstance(require, dict):
            continue
        leaves = [m for n in names for m in expand(c, n)]
        if not leaves or any(m not in models for m in leaves):
            continue
        lacking = {m: _lacks(models[m], require) for m in dict.fromkeys(leaves)}
        if all(lacking.values()):
            detail = "; ".join(f"{m} lacks {', '.join(v)}" for m, v in lacking.items())
            c.emit(code, path, f"no candidate meets this require: {detail}")
