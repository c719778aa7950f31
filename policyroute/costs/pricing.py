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
import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute._lazy import import_litellm
from policyroute.policy.model import ModelInfo, ModelSpec

__all__ = [
    "listed_rate",
    "litellm_model_data",
    "lookup_litellm_entry",
    "map_rate",
    "map_uplifts",
    "regional_uplift",
    "resolve_model_info",
    "served_from",
]

_log = logging.getLogger("policyroute.costs")
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


@functools.lru_cache(maxsize=4096)
def map_rate(model: str, base: str, tier: str | None = None) -> Decimal | None:
    """:func:`listed_rate` of litellm's entry for ``model`` (``None`` when it has none).

    The map is read once per process, so each answer is kept: the worst case of every call
    asks for the same few rates, and finding them matches a pattern against each of the
    entry's keys.

    Example:
        >>> map_rate("openai/gpt-4o-mini", "input_cost_per_token")
        Decimal('1.5E-7')
    """
    entry = lookup_litellm_entry(model)
    return None if entry is None else listed_rate(entry, base, tier)


@functools.lru_cache(maxsize=1024)
def map_uplifts(model: str) -> bool:
    """Whether litellm's entry for ``model`` lists a regional uplift (see
    :func:`regional_uplift`); kept, as :func:`map_rate`'s answers are.

    Example:
        >>> map_uplifts("no-such-model")
        False
    """
    entry = lookup_litellm_entry(model)
    return entry is not None and any("uplift" in key for key in entry)


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


def served_from(model: str, litellm_params: Mapping[str, Any]) -> dict[str, str]:
    """Where a deployment of ``model`` with ``litellm_params`` serves its answers, as
    litellm's own logging reads it to price the answers it returns: OpenAI's regional hosts
    (``eu.api.openai.com``) and Vertex AI's regional endpoints (every location but
    ``global``) bill an uplift over the global price, which ``completion_cost`` and
    ``cost_per_token`` add only when told (``data_residency``, ``vertex_location``).

    litellm's own reading is taken each time (it looks at ``litellm.api_base`` and the
    environment too); only the provider it resolves the model to is kept per deployment, as
    resolving it anew is most of the time an estimate takes."""
    params = litellm_params
    return _place(
        model,
        _text(params.get("custom_llm_provider")),
        _text(params.get("api_base")),
        _text(params.get("vertex_location")) or _text(params.get("vertex_ai_location")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=1024)
def _provider_of(model: str, provider: str | None, api_base: str | None) -> tuple[str, str]:
    """litellm's provider of ``model`` and the model's name under it; depends on these
    arguments and litellm's own tables alone."""
    bare, provider, _, _ = import_litellm().get_llm_provider(
        model=model, custom_llm_provider=provider, api_base=api_base
    )
    return bare, provider


def _place(
    model: str, provider: str | None, api_base: str | None, location: str | None
) -> dict[str, str]:
    import_litellm()  # only when pricing: never on the validate path
    try:
        from litellm.litellm_core_utils.litellm_logging import resolve_vertex_location_for_cost
        from litellm.llms.openai.data_residency import infer_openai_data_residency

        bare, provider = _provider_of(model, provider, api_base)
        place: dict[str, str] = {}
        residency = infer_openai_data_residency(provider, api_base)
        if residency:
            place["data_residency"] = residency
        given = {"vertex_location": location} if location else {}
        region = resolve_vertex_location_for_cost(provider, given, None, bare)
        if region:
            place["vertex_location"] = region
        return place
    except Exception:  # an older litellm without regional pricing, or a model it cannot place
        _log.debug("could not tell where %s is served", model, exc_info=True)
        return {}


def regional_uplift(entry: Mapping[str, Any], place: Mapping[str, str]) -> Decimal:
    """The factor litellm's map lists over the global price for where a deployment is served
    (:func:`served_from`): OpenAI's ``regional_processing_uplift_multiplier_<region>``, Vertex
    AI's ``regional_endpoint_uplift_multiplier`` for any location but ``global``; 1 if none.

    Example:
        >>> regional_uplift({"regional_endpoint_uplift_multiplier": 1.1},
        ...                 {"vertex_location": "us-central1"})
        Decimal('1.1')
    """
    factors = [Decimal(1)]
    residency = place.get("data_residency")
    if residency:
        factors.append(
            _dec(entry.get(f"regional_processing_uplift_multiplier_{residency.lower()}"))
            or Decimal(1)
        )
    location = place.get("vertex_location")
    if location and location.lower() != "global":
        factors.append(_dec(entry.get("regional_endpoint_uplift_multiplier")) or Decimal(1))
    return max(factors)
