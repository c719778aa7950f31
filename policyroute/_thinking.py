"""Thinking blocks sent back to the provider that signed them, and only there.

With extended thinking on, Claude opens an answer with ``thinking`` blocks (their text and a
``signature``) or ``redacted_thinking`` blocks (opaque ``data``); litellm hands them over as
the message's ``thinking_blocks``. In a tool-use loop, Anthropic requires the assistant turn
that made the tool call to be sent back with those blocks first, unchanged, or it refuses the
next request. A signature holds only where it was issued: on Anthropic's own platforms (the
Claude API, Bedrock, Vertex AI, which accept each other's), or at the one Anthropic-format
endpoint that signed it. Any other provider has no use for the blocks, and some refuse
unknown message fields.

So each kept block is marked with its **origin** (:func:`origin_of`), and before each attempt
:func:`messages_for` sends every assistant turn's blocks only to a deployment of the same
origin, with the mark taken off; other deployments get the turn without them. Blocks with no
mark (a caller's own, or from another LangChain chat model) go to every Anthropic-format
deployment, as the caller sent them.

LangChain's standard (v1) content holds the same blocks in its own shape:
:func:`standard_blocks` writes a kept block as a ``reasoning`` block whose ``extras`` carry
the ``signature`` (where langchain-anthropic keeps it) and the mark, or as a ``non_standard``
block wrapping a ``redacted_thinking`` one; :func:`thinking_in_content` reads both shapes
back from an assistant turn's content.

Example:
    >>> from policyroute.policy.model import ModelSpec
    >>> spec = ModelSpec(alias="claude", model="anthropic/claude-sonnet-4-5")
    >>> origin_of(spec)
    'anthropic'
    >>> blocks = signed_blocks([{"type": "thinking", "thinking": "hm", "signature": "s1"}],
    ...                        "anthropic")
    >>> turn = {"role": "assistant", "content": None, "thinking_blocks": blocks}
    >>> messages_for([turn], "anthropic", anthropic_format=True)[0]["thinking_blocks"]
    [{'type': 'thinking', 'thinking': 'hm', 'signature': 's1'}]
    >>> "thinking_blocks" in messages_for([turn], "openai:x:gpt-4o", anthropic_format=False)[0]
    False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from policyroute._fields import read

if TYPE_CHECKING:
    from policyroute.policy.model import ModelSpec

__all__ = [
    "ORIGIN_KEY",
    "anthropic_format",
    "has_thinking",
    "messages_for",
    "origin_of",
    "provider_and_name",
    "signed_blocks",
    "standard_blocks",
    "thinking_in_content",
    "tool_choice_for",
]

ORIGIN_KEY: Final = "policyroute_origin"
"""The key of a kept block that names where it was signed (taken off before it is sent)."""

FIRST_PARTY: Final = "anthropic"
"""The origin shared by Anthropic's own platforms, whose signatures hold on each other."""

_FIRST_PARTY_PROVIDERS: Final = frozenset({"anthropic", "bedrock", "vertex_ai"})
# Hosts serving Claude in Anthropic's format under another provider prefix.
_CLAUDE_HOSTS: Final = frozenset({"bedrock", "vertex_ai", "azure_ai"})
_ANTHROPIC_API_HOST: Final = "api.anthropic.com"


def provider_and_name(spec: ModelSpec) -> tuple[str, str]:
    """The litellm provider of ``spec`` and the model name after its prefix.

    Example:
        >>> from policyroute.policy.model import ModelSpec
        >>> provider_and_name(ModelSpec(alias="s", model="anthropic/claude-sonnet-4-5"))
        ('anthropic', 'claude-sonnet-4-5')
    """
    given = spec.params.get("custom_llm_provider")
    model = spec.model
    prefix, slash, rest = model.partition("/")
    if isinstance(given, str) and given:
        return given, rest if slash and prefix == given else model
    if slash:
        return prefix, rest
    if model.lower().startswith("claude"):
        return "anthropic", model
    return "", model


def anthropic_format(spec: ModelSpec) -> bool:
    """Whether litellm talks to ``spec``'s deployment in Anthropic's message format (so that
    thinking blocks sent to it reach the model).

    Example:
        >>> from policyroute.policy.model import ModelSpec
        >>> anthropic_format(ModelSpec(alias="b", model="bedrock/anthropic.claude-3-7-sonnet"))
        True
    """
    provider, name = provider_and_name(spec)
    return provider == "anthropic" or (provider in _CLAUDE_HOSTS and "claude" in name.lower())


def origin_of(spec: ModelSpec) -> str:
    """Where a thinking block from ``spec``'s deployment holds: :data:`FIRST_PARTY` for
    Anthropic's own platforms, else the provider, endpoint and model.

    Example:
        >>> from policyroute.policy.model import ModelSpec
        >>> origin_of(ModelSpec(alias="k", model="anthropic/kimi", api_base="https://k.example"))
        'anthropic:https://k.example:kimi'
    """
    provider, name = provider_and_name(spec)
    if anthropic_format(spec) and provider in _FIRST_PARTY_PROVIDERS:
        base = spec.api_base
        if (
            provider != "anthropic"
            or base is None
            or urlsplit(base).hostname == (_ANTHROPIC_API_HOST)
        ):
            return FIRST_PARTY
    return f"{provider}:{spec.api_base or ''}:{name}"


def signed_blocks(blocks: Any, origin: str | None) -> list[dict[str, Any]]:
    """The blocks of ``blocks`` a provider can check, as plain dicts marked with ``origin``.

    A ``thinking`` block counts with a non-empty ``signature`` (a block still being streamed
    has none), a ``redacted_thinking`` block with its ``data``; anything else is dropped.
    Only the keys Anthropic defines are kept.

    Example:
        >>> signed_blocks([{"type": "thinking", "thinking": "x", "signature": None}], "a")
        []
    """
    kept: list[dict[str, Any]] = []
    if not isinstance(blocks, Sequence) or isinstance(blocks, str):
        return kept
    for block in blocks:
        kind = read(block, "type")
        if kind == "thinking":
            signature = read(block, "signature")
            if not isinstance(signature, str) or not signature:
                continue
            text = read(block, "thinking")
            out = {"type": "thinking", "thinking": text if isinstance(text, str) else ""}
            out["signature"] = signature
        elif kind == "redacted_thinking":
            data = read(block, "data")
            if not isinstance(data, str) or not data:
                continue
            out = {"type": "redacted_thinking", "data": data}
        else:
            continue
        if origin is not None:
            out[ORIGIN_KEY] = origin
        kept.append(out)
    return kept


# The LangChain ``model_provider`` values of messages whose reasoning signatures are Claude's
# (langchain-anthropic, Claude on Bedrock, policyroute's own); the signatures of any other
# (Gemini's thought signatures, say) mean nothing to Anthropic, which would refuse them.
_CLAUDE_SIGNERS: Final = frozenset({"anthropic", "bedrock", "bedrock_converse", "policyroute"})


def standard_blocks(blocks: Sequence[Any]) -> list[dict[str, Any]]:
    """Kept thinking blocks (see :func:`signed_blocks`) as LangChain standard (v1) content
    blocks: a ``thinking`` block as a ``reasoning`` block, its signature and origin mark in
    ``extras``; a ``redacted_thinking`` block wrapped, mark and all, in a ``non_standard`` one.

    Example:
        >>> standard_blocks([{"type": "thinking", "thinking": "x", "signature": "s"}])
        [{'type': 'reasoning', 'reasoning': 'x', 'extras': {'signature': 's'}}]
    """
    out: list[dict[str, Any]] = []
    for block in blocks:
        kind = read(block, "type")
        if kind == "thinking":
            extras = {"signature": read(block, "signature")}
            mark = read(block, ORIGIN_KEY)
            if mark is not None:
                extras[ORIGIN_KEY] = mark
            text = read(block, "thinking")
            out.append({"type": "reasoning", "reasoning": text or "", "extras": extras})
        elif kind == "redacted_thinking" and isinstance(block, Mapping):
            out.append({"type": "non_standard", "value": dict(block)})
    return out


def thinking_in_content(content: Any, provider: Any = None) -> list[dict[str, Any]]:
    """The signed thinking blocks among an assistant turn's ``content``, in order, as
    Anthropic blocks: Anthropic-format ``thinking`` and ``redacted_thinking`` blocks
    (unmarked), and LangChain v1 ``reasoning`` blocks with ``extras["signature"]`` and
    ``non_standard`` blocks wrapping Anthropic ones, with the origin mark they carry.

    The v1 blocks of a message whose ``model_provider`` is not one of Claude's are left out:
    another provider's reasoning signature is no thinking signature.

    Example:
        >>> v1 = [{"type": "reasoning", "reasoning": "x", "extras": {"signature": "s"}},
        ...       {"type": "tool_call", "name": "f", "args": {}, "id": "c1"}]
        >>> thinking_in_content(v1)
        [{'type': 'thinking', 'thinking': 'x', 'signature': 's'}]
        >>> thinking_in_content(v1, "google_genai")
        []
    """
    kept: list[dict[str, Any]] = []
    if not isinstance(content, Sequence) or isinstance(content, str):
        return kept
    claude = provider is None or provider in _CLAUDE_SIGNERS
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            kept.extend(signed_blocks([block], None))
        elif kind == "reasoning" and claude and isinstance(block.get("extras"), Mapping):
            extras = block["extras"]
            raw = {"type": "thinking", "thinking": block.get("reasoning")}
            kept.extend(_marked(raw, extras.get("signature"), extras.get(ORIGIN_KEY)))
        elif kind == "non_standard" and claude and isinstance(block.get("value"), Mapping):
            value = block["value"]
            kept.extend(_marked(value, value.get("signature"), value.get(ORIGIN_KEY)))
    return kept


def _marked(block: Mapping[str, Any], signature: Any, mark: Any) -> list[dict[str, Any]]:
    """``block`` (with ``signature``) as :func:`signed_blocks` keeps it, marked with ``mark``
    when that is an origin."""
    return signed_blocks(
        [{**block, "signature": signature}], mark if isinstance(mark, str) else None
    )


def has_thinking(messages: Sequence[Any]) -> bool:
    """Whether any message of ``messages`` (chat dicts) carries thinking blocks."""
    return any(isinstance(m, Mapping) and m.get("thinking_blocks") for m in messages)


def messages_for(messages: list[Any], origin: str, *, anthropic_format: bool) -> list[Any]:
    """``messages`` as sent to a deployment of ``origin``: each turn's thinking blocks kept
    where they hold (same origin; unmarked ones on any Anthropic-format deployment), their
    marks taken off; the turns that keep none lose the key. ``messages`` is not changed: the
    turns that change are copies.
    """
    out: list[Any] = []
    for message in messages:
        blocks = message.get("thinking_blocks") if isinstance(message, Mapping) else None
        if not blocks:
            out.append(message)
            continue
        kept = []
        for block in blocks if isinstance(blocks, Sequence) else ():
            if not isinstance(block, Mapping):
                continue
            mark = block.get(ORIGIN_KEY)
            if mark == origin or (mark is None and anthropic_format):
                kept.append({k: v for k, v in block.items() if k != ORIGIN_KEY})
        turn = {k: v for k, v in message.items() if k != "thinking_blocks"}
        if kept:
            turn["thinking_blocks"] = kept
        out.append(turn)
    return out


# OpenAI-form choices that force a tool call (litellm maps them to Anthropic's ``any`` and
# ``tool``); the Anthropic forms are mapped to these before a request is built.
_FORCED_KINDS: Final = frozenset({"required", "any", "function", "tool"})


def _thinks(params: Mapping[str, Any]) -> bool:
    """Whether an Anthropic-format call with ``params`` runs with extended thinking: asked
    for directly, or through ``reasoning_effort``, which litellm turns into thinking."""
    thinking = params.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        return True
    effort = params.get("reasoning_effort")
    return isinstance(effort, str) and effort not in ("", "none")


def tool_choice_for(params: Mapping[str, Any], *, anthropic_format: bool) -> Any:
    """The ``tool_choice`` of ``params`` as sent to a deployment: ``"auto"`` in place of a
    forced choice where the deployment speaks Anthropic's format and thinks, since Anthropic
    refuses a forced tool choice with extended thinking on ("Thinking may not be enabled when
    tool_choice forces tool use"); unchanged everywhere else. Structured output then checks
    that the answer called its tool, as langchain-anthropic does.

    Example:
        >>> params = {"tool_choice": "required", "reasoning_effort": "low"}
        >>> tool_choice_for(params, anthropic_format=True)
        'auto'
        >>> tool_choice_for(params, anthropic_format=False)
        'required'
    """
    choice = params.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, Mapping) else choice
    if anthropic_format and kind in _FORCED_KINDS and _thinks(params):
        return "auto"
    return choice
