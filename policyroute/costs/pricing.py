"""Model prices, limits and capabilities, resolved from the policy and litellm's model data.

litellm ships its price map as a JSON file inside the package. It is read here directly, so the
CLI's ``validate`` path never imports litellm (which takes seconds). The file is found with
:func:`importlib.util.find_spec` and parsed once per process.

Example:
    >>> info = resolve_model_info(ModelSpec(alias="mini", model="openai/gpt-4o-mini"))
    >>> info.price_source, info.input_cost_per_token
    ('litellm', Decimal('1.5E-7'))
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute.policy.model import ModelInfo, ModelSpec

__all__ = ["listed_rate", "litellm_model_data", "lookup_litellm_entry", "resolve_model_info"]

_MILLION = Decimal(1_000_000)
_PRICE_FILE = "model_prices_and_context_window_backup.json"


@functools.lru_cache(maxsize=1)
def litellm_model_data() -> Mapping[str, Mapping[str, Any]]:
    """litellm's bundled model map (``{}`` if litellm is not installed)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        path = Path(location) / _PRICE_FILE
        if path.is_file():
            data: dict[str, Mapping[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
            data.pop("sample_spec", None)
            return data
    return {}


def lookup_litellm_entry(model: str) -> Mapping[str, Any] | None:
    """litellm's entry for a model string as litellm spells it (``anthropic/claude-...``).

    Tries the full string, then the name without its provider prefix when the entry belongs
    to that provider (litellm keys OpenAI and Anthropic models without prefix).
    """
    data = litellm_model_data()
    entry = data.get(model)
    if entry is not None:
        return entry
    provider, sep, bare = model.partition("/")
    if not sep:
        return None
    entry = data.get(bare)
    if entry is None:
        return None
    owner = str(entry.get("litellm_provider", ""))
    if (
        owner == provider
        or owner.startswith(provider)
        or (provider == "openai" and owner == "text-completion-openai")
    ):
        return entry
    return None


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def listed_rate(entry: Mapping[str, Any], base: str, tier: str | None = None) -> Decimal | None:
    """The highest per-token rate litellm's map lists under ``base`` for any prompt length:
    ``base`` itself and its long-context tiers (``base_above_200k_tokens``), and with ``tier``
    those of that service tier too (``base_priority``, ``base_above_200k_tokens_priority``).
    Other tiers' rates and batch rates (``base_batches``) are left out: a call is not billed
    at them unless it asks.

    Example:
        >>> listed_rate({"input_cost_per_token": 2.5e-06, "input_cost_per_token_priority":
        ...              4.25e-06}, "input_cost_per_token", "priority")
        Decimal('0.00000425')
    """
    suffix = "" if tier is None else f"(?:_{re.escape(tier)})?"
    pattern = re.compile(rf"{re.escape(base)}(?:_above_\d+(?:\.\d+)?k?_tokens)?{suffix}")
    rates = [
        rate
        for key, value in entry.items()
        if pattern.fullmatch(key)
        if (rate := _dec(value)) is not None
    ]
    return max(rates) if rates else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resolve_model_info(spec: ModelSpec) -> ModelInfo:
    """Prices, limits and capabilities of a deployment: the policy's overrides first.

    A policy ``price`` replaces litellm's prices entirely (``price_source="policy"``).
    Capabilities given in the policy override litellm's flags one by one.
    """
    entry: Mapping[str, Any] = lookup_litellm_entry(spec.model) or {}
    caps = spec.capabilities

    def cap(name: str, *litellm_keys: str) -> bool:
        if name in caps:
            return bool(caps[name])
        return any(bool(entry.get(k)) for k in litellm_keys)

    common: dict[str, Any] = {
        "max_input_tokens": spec.context_window or _int(entry.get("max_input_tokens")),
        "max_output_tokens": spec.max_output_tokens
        or _int(entry.get("max_output_tokens"))
        or _int(entry.get("max_tokens")),
        "supports_tools": cap("tools", "supports_function_calling"),
        "supports_vision": cap("vision", "supports_vision"),
        "supports_json_schema": cap("json_schema", "supports_response_schema"),
        "supports_reasoning": cap("reasoning", "supports_reasoning"),
    }
    if spec.price is not None:
        p = spec.price

        def per_token(v: Decimal | None) -> Decimal | None:
            return None if v is None else v / _MILLION

        inp, out = per_token(p.input_per_mtok), per_token(p.output_per_mtok)
        return ModelInfo(
            input_cost_per_token=inp,
            output_cost_per_token=out,
            cache_read_cost_per_token=per_token(p.cache_read_per_mtok),
            cache_write_cost_per_token=per_token(p.cache_write_per_mtok),
            reasoning_cost_per_token=per_token(p.reasoning_per_mtok),
            input_cost_per_token_max=inp,
            output_cost_per_token_max=out,
            price_source="policy",
            **common,
        )
    inp = _dec(entry.get("input_cost_per_token"))
    out = _dec(entry.get("output_cost_per_token"))
    return ModelInfo(
        input_cost_per_token=inp,
        output_cost_per_token=out,
        cache_read_cost_per_token=_dec(entry.get("cache_read_input_token_cost")),
        cache_write_cost_per_token=_dec(entry.get("cache_creation_input_token_cost")),
        cache_write_1h_cost_per_token=_dec(entry.get("cache_creation_input_token_cost_above_1hr")),
        reasoning_cost_per_token=_dec(entry.get("output_cost_per_reasoning_token")),
        input_cost_per_token_max=listed_rate(entry, "input_cost_per_token"),
        output_cost_per_token_max=listed_rate(entry, "output_cost_per_token"),
        audio_input_cost_per_token=_dec(entry.get("input_cost_per_audio_token")),
        audio_output_cost_per_token=_dec(entry.get("output_cost_per_audio_token")),
        price_source="litellm" if inp is not None and out is not None else "none",
        **common,
    )
