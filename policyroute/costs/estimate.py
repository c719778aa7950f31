"""The worst-case cost of one attempt, before it is sent.

Budgets are enforced against this bound, so every choice here errs high:

- input tokens are counted with litellm's tokenizer for the model, tools, ``tool_choice`` and
  the structured-output schema (``response_format``) included, over the messages as this
  deployment is sent them (thinking blocks only where they go, :mod:`policyroute._thinking`);
- what litellm's counter skips is added (:func:`~policyroute.costs.media.countable`): the
  thinking sent back on assistant turns, encrypted thinking at one token per byte, and the
  names and ids of tool calls;
- an Anthropic-format deployment given tools (or a schema) is charged
  :data:`ANTHROPIC_TOOL_PROMPT_TOKENS` for the system prompt Anthropic adds for them;
- output is bounded by ``max_tokens``, else the policy default, else the model's output limit;
- input is priced at the highest tier, and at the cache-write price when the prompt asks for
  caching (more than plain input on Anthropic; the hour-long price for ``ttl: 1h``), and at
  the audio price when the prompt holds audio;
- output is priced at the highest of the output, reasoning, image output (a model that can
  draw) and (when audio output is asked for) audio output rates;
- every rate is raised by the uplift litellm lists for a regional endpoint (OpenAI's
  ``eu.api.openai.com``, Vertex AI's locations but ``global``) when the deployment uses one;
- a call that asks for a service tier (``service_tier: priority``) is priced at the highest
  of the standard rates and that tier's, at any prompt length, as litellm prices an answer at
  the tier that served it (:func:`~policyroute.costs.pricing.listed_rate`);
- a call that offers server-side tools (web search, :mod:`policyroute.costs.server_tools`)
  adds the model's ``max_server_tool_cost_usd``: their fees and the tokens of what they find
  cannot be counted before the call, so without it the call cannot be priced;
- the whole is multiplied by ``n``.

litellm's counter does not measure audio or video: each such part is bounded from its length
instead (:mod:`policyroute.costs.media`). Nor, without fetching URLs, images: each is bounded
by its model family's formula over the size in its header, or the family's ceiling
(:mod:`policyroute.costs.images`).

Example:
    >>> est = worst_case(request, candidate, {"max_tokens": 100}, default_max_tokens=None)
    ... # doctest: +SKIP
    >>> est.cost  # doctest: +SKIP
    Decimal('0.0000615')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from typing import Any, Literal

from policyroute._lazy import import_litellm
from policyroute._money import WIDE
from policyroute._thinking import anthropic_format, has_thinking, messages_for, origin_of
from policyroute.costs.image_families import FixedFamily, ImageFamily, image_family
from policyroute.costs.images import any_images, image_tokens, without_images
from policyroute.costs.media import (
    PromptFacts,
    countable,
    media_tokens,
    prompt_facts,
    without_media,
)
from policyroute.costs.pricing import (
    lookup_litellm_entry,
    map_rate,
    map_uplifts,
    regional_uplift,
    served_from,
)
from policyroute.costs.server_tools import server_tools
from policyroute.costs.token_cache import PrefixCounts
from policyroute.costs.tool_schemas import unreadable_tool_schema
from policyroute.errors import RequestError
from policyroute.execution.response_format import JSON_INSTRUCTION, needs_instruction
from policyroute.request import Request
from policyroute.routing.decision import Candidate
from policyroute.routing.output_bound import OUTPUT_LIMIT_KEYS, given_limit

__all__ = [
    "ANTHROPIC_TOOL_PROMPT_TOKENS",
    "OUTPUT_LIMIT_KEYS",
    "Estimate",
    "Missing",
    "cache_write_ttl",
    "count_input_tokens",
    "output_bound",
    "schema_text",
    "worst_case",
]

ANTHROPIC_TOOL_PROMPT_TOKENS = 530
"""Input tokens of the system prompt Anthropic adds to a request that offers tools: the largest
count its tool-use pricing lists (Claude 3 Opus, ``tool_choice: auto``). Current models list
346 (``auto``, ``none``) and 313 (``any``, ``tool``), so this over-counts them by at most 217."""

Missing = Literal["price", "output_bound", "server_tools"]
"""What keeps an attempt from being priced (:attr:`Estimate.missing`)."""

FALLBACK_TOKENIZER_MODEL = "gpt-4o"
"""Tokenizer used for models litellm does not know; close enough for a bound with headroom."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A worst-case bound on one attempt's cost.

    Attributes:
        input_tokens: prompt tokens (messages, tools and response schema), counted once.
        output_tokens: the output bound per choice.
        cost: USD for all ``n`` choices at the worst rates; zero when ``priced`` is false.
        priced: false when the model has no known price, its output cannot be bounded, or
            it is offered server-side tools the policy gives no bound for.
        n: choices requested.
        input_rate / output_rate: the per-token USD rates used.
        problem: why the attempt could not be priced, when ``priced`` is false.
        missing: what that is for: ``"price"`` (the model's), ``"output_bound"`` (no
            ``max_tokens`` and no known output limit), ``"server_tools"`` (server-side tools
            offered and no ``max_server_tool_cost_usd`` on the model), or several; empty
            when ``priced``.
        server_tools: the server-side tools the attempt offers
            (:func:`~policyroute.costs.server_tools.server_tools`).
        server_tool_cost: USD per choice they add to the worst case (the model's
            ``max_server_tool_cost_usd``); zero when none are offered or it is unknown.
    """

    input_tokens: int
    output_tokens: int
    cost: Decimal
    priced: bool
    n: int = 1
    input_rate: Decimal = Decimal(0)
    output_rate: Decimal = Decimal(0)
    problem: str | None = None
    missing: tuple[Missing, ...] = ()
    server_tools: tuple[str, ...] = ()
    server_tool_cost: Decimal = Decimal(0)

    def cost_with_output(self, output_tokens: int) -> Decimal:
        """The bound if output were capped at ``output_tokens`` (for clamping max_tokens)."""
        with localcontext(WIDE):  # never rounded down by the application's context
            per_choice = self.input_tokens * self.input_rate + output_tokens * self.output_rate
            return (per_choice + self.server_tool_cost) * self.n


# Anthropic prices an hour-long cache write at 2x input against 1.25x for five minutes: where
# the hour rate is not known, the five-minute rate times 1.6 stands in.
_HOUR_OVER_FIVE_MINUTES = Decimal("1.6")
# Without any cache-write price (a policy price that gives none), Anthropic's multipliers of
# the input price stand in: 1.25x for five minutes, 2x for an hour.
_WRITE_OVER_INPUT = {"5m": Decimal("1.25"), "1h": Decimal(2)}


def cache_write_ttl(
    messages: Sequence[Mapping[str, Any]], tools: Any = None
) -> Literal["5m", "1h"] | None:
    """The longest prompt-cache lifetime the messages and tools ask for, ``None`` if none
    (:func:`~policyroute.costs.media.prompt_facts`).

    Example:
        >>> mark = {"type": "ephemeral", "ttl": "1h"}
        >>> cache_write_ttl([{"role": "system", "content": [{"type": "text", "text": "x",
        ...                                                  "cache_control": mark}]}])
        '1h'
    """
    return prompt_facts(messages, tools).cache_ttl


# The suffix of litellm's price keys for each service tier a call can ask for (litellm's
# ``_SERVICE_TIER_TO_COST_KEY_SUFFIX``: "fast" is billed at the priority rates).
_TIER_SUFFIXES = {
    "flex": "flex",
    "balanced": "balanced",
    "priority": "priority",
    "fast": "priority",
    "ultrafast": "ultrafast",
}


def _service_tier(params: Mapping[str, Any]) -> str | None:
    tier = params.get("service_tier")
    return _TIER_SUFFIXES.get(tier.lower()) if isinstance(tier, str) else None


def _cache_write_rate(
    info: Any, ttl: Literal["5m", "1h"], model: str | None, tier: str | None
) -> Decimal | None:
    """The price of a cache write of ``ttl``; from litellm's entry for ``model`` when there is
    one (``None``: the policy prices the model), the highest it lists at any prompt length
    (long-context writes cost more than long-context input) and for the call's service
    ``tier``."""
    listed = _map_rate(model, "cache_creation_input_token_cost", tier)
    five_minutes: Decimal | None = listed if listed is not None else info.cache_write_cost_per_token
    if five_minutes is None:
        base: Decimal | None = info.input_cost_per_token_max or info.input_cost_per_token
        return None if base is None else base * _WRITE_OVER_INPUT[ttl]
    if ttl == "5m":
        return five_minutes
    listed = _map_rate(model, "cache_creation_input_token_cost_above_1hr", tier)
    hour: Decimal | None = listed if listed is not None else info.cache_write_1h_cost_per_token
    return hour if hour is not None else five_minutes * _HOUR_OVER_FIVE_MINUTES


def _map_rate(model: str | None, base: str, tier: str | None) -> Decimal | None:
    return None if model is None else map_rate(model, base, tier)


def _counted(
    counter: Callable[..., int],
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
) -> int:
    kwargs: dict[str, Any] = {"messages": list(messages), "use_default_image_token_count": True}
    if tools:
        kwargs["tools"] = list(tools)
    if lookup_litellm_entry(model) is not None:
        try:
            return int(counter(model=model, **kwargs))
        except Exception:
            # A tokenizer litellm lists but cannot load (e.g. a gated Hugging Face one).
            pass
    return int(counter(model=FALLBACK_TOKENIZER_MODEL, **kwargs))


_COUNTS = PrefixCounts()


def _measure(
    counter: Callable[..., int],
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    reuse: bool,
) -> int:
    """litellm's count of ``messages`` and ``tools``; with ``reuse``, from the counts kept of
    earlier prompts (:mod:`policyroute.costs.token_cache`), which give the same figure."""
    if not reuse:
        if tools:
            _refuse_unreadable(model, tools)
        return _counted(counter, model, messages, tools)
    total = _COUNTS.count(model, messages, lambda part: _counted(counter, model, part, None))
    if tools:
        with_system = any(m.get("role") == "system" for m in messages)

        def count_tools(
            base: Sequence[Mapping[str, Any]], counted: Sequence[Mapping[str, Any]] | None
        ) -> int:
            # Only tools not counted before are read: those kept were read as they were.
            if counted:
                _refuse_unreadable(model, counted)
            return _counted(counter, model, base, counted)

        total += _COUNTS.tool_tokens(model, tools, with_system, count_tools)
    return total


def _refuse_unreadable(model: str, tools: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a tool schema of a shape litellm's counter cannot read, by its field: the
    counter fails on it (litellm up to 1.106: "'str' object has no attribute 'get'",
    "'items'", naming neither the field nor the problem) or counts it anyway (1.108 and
    later), leaving the provider to refuse it."""
    unreadable = unreadable_tool_schema(tools)
    if unreadable is not None:
        raise RequestError(
            f"cannot count the input tokens of this request for {model}:"
            f" request field '{unreadable[0]}' {unreadable[1]}"
        )


def schema_text(response_format: Any) -> str | None:
    """The JSON text of a structured-output schema, ``None`` when there is none.

    Providers bill the schema as input (OpenAI adds it to the prompt; litellm sends it to
    Anthropic as a tool), and litellm's counter does not see it. ``response_format`` is the
    OpenAI form or a pydantic class, which litellm turns into its JSON schema.

    Example:
        >>> schema_text({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
        '{"name": "x", "schema": {}}'
        >>> schema_text({"type": "json_object"}) is None
        True
    """
    if isinstance(response_format, Mapping):
        schema = response_format.get("json_schema") or response_format.get("response_schema")
    else:
        to_schema = getattr(response_format, "model_json_schema", None)
        schema = to_schema() if callable(to_schema) else None
    if not schema:
        return None
    return json.dumps(schema, default=str)


def count_input_tokens(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    token_counter: Callable[..., int] | None = None,
    *,
    media_cap: int | None = None,
    facts: PromptFacts | None = None,
    images: ImageFamily | None = None,
) -> int:
    """Prompt tokens of messages plus tools, with litellm's counter for ``model``.

    Images are bounded without the network by ``images``, the deployment's image billing
    family (else the family of ``model``, :func:`~policyroute.costs.image_families.image_family`):
    its formula over the size read from a base64 image's header, its ceiling for a URL or an
    unreadable image (:mod:`policyroute.costs.images`).
    Thinking blocks, tool-call names and ids, which litellm's counter skips, are counted, and
    encrypted thinking bounded (:func:`~policyroute.costs.media.countable`). Audio and video,
    which litellm's counter cannot measure, are bounded from their length
    (:mod:`policyroute.costs.media`), each part's bound capped at ``media_cap`` (the model's
    input window) when given. Content no counter understands raises
    :class:`~policyroute.errors.RequestError`: a budget cannot be guarded against input it
    cannot measure.

    With litellm's counter, a conversation's earlier turns are not tokenized again: counts of
    recent prompts are kept per model and extended with the new messages, to the same figure
    (:mod:`policyroute.costs.token_cache`). A ``token_counter`` given here counts every
    prompt whole. ``facts``: :func:`~policyroute.costs.media.prompt_facts` of ``messages``
    when the caller has read them already.
    """
    reuse = token_counter is None
    counter = token_counter or import_litellm().token_counter
    if facts is None:
        facts = prompt_facts(messages)
    media = 0
    if facts.media:
        media = media_tokens(messages, media_cap)
        messages = without_media(messages)
    if any_images(messages):
        media += image_tokens(messages, images or image_family(model), media_cap)
        messages = without_images(messages)
    messages, opaque = countable(messages)
    try:
        return _measure(counter, model, messages, tools, reuse=reuse) + media + opaque
    except RequestError:
        raise
    except Exception as exc:
        raise RequestError(
            f"cannot count the input tokens of this request for {model}: {exc}"
        ) from exc


def _image_family(candidate: Candidate) -> ImageFamily:
    """How ``candidate`` bills images: the policy's ``max_image_tokens`` for each image when
    the model gives one, else the family its model name or provider belongs to."""
    fixed = candidate.spec.max_image_tokens
    if fixed is not None:
        return FixedFamily("policy", fixed)
    return image_family(candidate.model, _custom_provider(candidate))


def _schema_tokens(
    model: str, response_format: Any, token_counter: Callable[..., int] | None
) -> int:
    try:
        text = schema_text(response_format)
        return 0 if text is None else _counted_text(model, text, token_counter)
    except Exception as exc:
        raise RequestError(
            f"cannot count the tokens of this request's response_format for {model}: {exc}"
        ) from exc


def _counted_text(model: str, text: str, token_counter: Callable[..., int] | None) -> int:
    """Tokens of ``text`` sent as a system message of its own (priming included: an upper
    bound of what it adds to the prompt)."""
    counter = token_counter or import_litellm().token_counter
    return _counted(counter, model, [{"role": "system", "content": text}], None)


def _tool_choice_tokens(
    model: str, tool_choice: Any, token_counter: Callable[..., int] | None
) -> int:
    """What a ``tool_choice`` other than ``auto`` adds: its JSON text, counted as one message
    (litellm's counter adds 7 tokens and the tool's name; this adds up to 6 more)."""
    if tool_choice is None or tool_choice == "auto":
        return 0
    try:
        return _counted_text(model, json.dumps(tool_choice, default=str), token_counter)
    except Exception as exc:
        raise RequestError(
            f"cannot count the tokens of this request's tool_choice for {model}: {exc}"
        ) from exc


def output_bound(
    params: Mapping[str, Any], candidate: Candidate, default_max_tokens: int | None
) -> int | None:
    """The most output tokens one choice can produce, or ``None`` if nothing bounds it.

    The policy default applies when the call gives neither limit (``None`` is not given), as
    the executor applies it. When a call gives both ``max_tokens`` and
    ``max_completion_tokens``, either may be the one the provider honours (litellm maps both
    onto one field for some providers, the last one winning), so the larger bounds the output.

    Example:
        >>> output_bound({"max_tokens": 100, "max_completion_tokens": 300}, candidate, None)
        ... # doctest: +SKIP
        300
    """
    given = given_limit(params)
    if given is not None:
        return given
    if default_max_tokens is not None:
        return default_max_tokens
    return candidate.info.max_output_tokens


def _custom_provider(candidate: Candidate) -> str | None:
    given = candidate.spec.params.get("custom_llm_provider")
    return given if isinstance(given, str) and given else None


def worst_case(
    request: Request,
    candidate: Candidate,
    params: Mapping[str, Any],
    *,
    default_max_tokens: int | None,
    token_counter: Callable[..., int] | None = None,
) -> Estimate:
    """The most this attempt can cost.

    ``params`` are the attempt's merged litellm params (``max_tokens``, ``n``, ...).
    ``token_counter`` replaces ``litellm.token_counter`` (same keyword arguments).

    Example:
        >>> worst_case(request, candidate, {"max_tokens": 10}, default_max_tokens=None)
        ... # doctest: +SKIP
        Estimate(input_tokens=9, output_tokens=10, cost=Decimal('0.00000735'), priced=True, ...)
    """
    info = candidate.info
    raw_n = params.get("n", 1)
    n = raw_n if isinstance(raw_n, int) and not isinstance(raw_n, bool) and raw_n > 0 else 1
    tools = request.tools if request.tools is not None else params.get("tools")
    messages = request.messages
    if has_thinking(messages):
        # Each turn's thinking blocks go only to the deployments that can check them.
        spec = candidate.spec
        messages = messages_for(
            list(messages), origin_of(spec), anthropic_format=anthropic_format(spec)
        )
    # One pass over the messages answers every question the estimate asks of them.
    facts = prompt_facts(messages, tools)
    input_tokens = count_input_tokens(
        candidate.model,
        messages,
        tools,
        token_counter,
        media_cap=info.max_input_tokens,
        facts=facts,
        images=_image_family(candidate),
    )
    # ``params`` hold the response format as sent to this deployment (JSON mode becomes a
    # schema on Claude: policyroute.execution.response_format); the request's may differ.
    schema_tokens = max(
        _schema_tokens(candidate.model, request.response_format, token_counter),
        _schema_tokens(candidate.model, params.get("response_format"), token_counter),
    )
    input_tokens += schema_tokens
    if needs_instruction(params, anthropic_format=anthropic_format(candidate.spec)):
        input_tokens += _counted_text(candidate.model, JSON_INSTRUCTION, token_counter)
    if tools:
        tool_choice = (
            request.tool_choice if request.tool_choice is not None else params.get("tool_choice")
        )
        input_tokens += _tool_choice_tokens(candidate.model, tool_choice, token_counter)
    if (tools or schema_tokens) and anthropic_format(candidate.spec):
        input_tokens += ANTHROPIC_TOOL_PROMPT_TOKENS
    output_tokens = output_bound(params, candidate, default_max_tokens)
    offered = server_tools(tools, params)
    server_cap = candidate.spec.max_server_tool_cost_usd
    missing: tuple[Missing, ...] = ()
    problems: list[str] = []
    if not info.priced:
        missing += ("price",)
        problems.append(f"model '{candidate.alias}' ({candidate.model}) has no known price")
    if output_tokens is None:
        missing += ("output_bound",)
        unbounded = "is unbounded: no max_tokens and no known output limit"
        problems.append(
            f"its output {unbounded}"
            if problems
            else f"the output of '{candidate.alias}' {unbounded}"
        )
    if offered and server_cap is None:
        missing += ("server_tools",)
        uncounted = (
            f"server-side tools ({', '.join(offered)}), whose fees and results cannot be"
            " counted before the call"
        )
        problems.append(
            f"it is offered {uncounted}"
            if problems
            else f"the call offers model '{candidate.alias}' {uncounted}"
        )
    if missing or output_tokens is None:
        return Estimate(
            input_tokens,
            output_tokens or 0,
            Decimal(0),
            priced=False,
            n=n,
            problem=", and ".join(problems) if problems else None,
            missing=missing,
            server_tools=offered,
            server_tool_cost=server_cap if offered and server_cap is not None else Decimal(0),
        )
    with localcontext(WIDE):  # never rounded down by the application's context
        estimate = _priced(candidate, params, facts, input_tokens, output_tokens, n)
        if not offered or server_cap is None:
            return estimate
        return replace(
            estimate,
            cost=estimate.cost + server_cap * n,
            server_tools=offered,
            server_tool_cost=server_cap,
        )


def _priced(
    candidate: Candidate,
    params: Mapping[str, Any],
    facts: PromptFacts,
    input_tokens: int,
    output_tokens: int,
    n: int,
) -> Estimate:
    """The estimate of a priced call with a bounded output, at the highest rates it may pay."""
    info = candidate.info
    # litellm's map lists prices that the model's info leaves out: long-context cache writes
    # and each service tier's rates.
    model = candidate.spec.model if info.price_source == "litellm" else None
    tier = _service_tier(params)
    input_rates = [info.input_cost_per_token_max, info.input_cost_per_token]
    if facts.cache_ttl is not None:
        input_rates.append(_cache_write_rate(info, facts.cache_ttl, model, tier))
    audio_rate = info.audio_input_cost_per_token
    if audio_rate is not None and facts.audio:
        input_rates.append(audio_rate)
    output_rates = [
        info.output_cost_per_token_max,
        info.output_cost_per_token,
        info.reasoning_cost_per_token,
    ]
    modalities = params.get("modalities")
    if isinstance(modalities, (list, tuple)) and "audio" in modalities:
        output_rates.append(info.audio_output_cost_per_token)
    # Images a model draws are billed per token at their own rate (Gemini's image models: 12x
    # their text rate), whether or not the call named the image modality.
    output_rates.append(_map_rate(model, "output_cost_per_image_token", tier))
    if tier is not None:
        input_rates.append(_map_rate(model, "input_cost_per_token", tier))
        if facts.audio:
            input_rates.append(_map_rate(model, "input_cost_per_audio_token", tier))
        output_rates.append(_map_rate(model, "output_cost_per_token", tier))
    input_rate = max(r for r in input_rates if r is not None)
    output_rate = max(r for r in output_rates if r is not None)
    if model is not None and map_uplifts(model):
        # A regional endpoint bills every token a listed uplift over the global price.
        entry = lookup_litellm_entry(model) or {}
        uplift = regional_uplift(entry, served_from(candidate.model, candidate.litellm_params))
        input_rate, output_rate = input_rate * uplift, output_rate * uplift
    cost = (input_tokens * input_rate + output_tokens * output_rate) * n
    return Estimate(
        input_tokens,
        output_tokens,
        cost,
        priced=True,
        n=n,
        input_rate=input_rate,
        output_rate=output_rate,
    )
