"""LangChain results of policyroute calls: messages with usage, and where they came from.

Every answer carries ``usage_metadata`` (LangChain's shape) and ``response_metadata`` with
``model_name`` (the model that actually answered), ``finish_reason`` and a ``policyroute``
entry: route, deployment, every attempt, cost as a decimal string, request id; and, as
langchain-openai's, the provider's ``id``, ``system_fingerprint`` and ``service_tier`` when it
returned them. A stream carries both on its last chunk only (but for streamed ``logprobs``, on
each chunk; and no ``usage_metadata`` with ``stream_usage=False``). A whole answer's
``llm_output`` (what ``generate`` and old-style callbacks read) holds ``model_name``, the
provider's ``token_usage`` and ``system_fingerprint``; LangChain copies it into the message, so
``invoke``'s ``response_metadata`` has them too. An answer from LangChain's LLM cache has a
``policyroute`` entry of its own, marked ``cache_hit`` (see
:mod:`policyroute.langchain_.cache_hits`).
A streamed answer has no ``llm_output``; its ``generation_info`` holds, as langchain-openai's,
``finish_reason``, ``model_name``, ``system_fingerprint`` and ``service_tier`` (and streamed
``logprobs``).

A stream's first and last chunks are :class:`StreamedChunk`: merged with the rest, they parse
the finished tool-call arguments strictly, so that the merged message reports arguments that
are not JSON as ``invalid_tool_calls``, as the answer to ``invoke`` does.

An answer's standard (v1) content blocks (``content_blocks``, and its content under
``output_version="v1"``) hold its signed thinking as langchain-anthropic's do: ``reasoning``
blocks whose ``extras`` carry the ``signature`` (and policyroute's origin mark), and
``non_standard`` blocks wrapping ``redacted_thinking`` ones; a v1 stream closes each
streamed reasoning block with its signature in the last chunk.

Example:
    >>> msg = llm.invoke("hi")  # doctest: +SKIP
    >>> msg.response_metadata["policyroute"]["attempts"][0]["status"]  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.messages.block_translators import register_translator
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from policyroute._fields import read
from policyroute._litellm import (
    finish_reason_of,
    message_of,
    tool_calls_from_openai,
    usage_metadata,
)
from policyroute._thinking import origin_of, signed_blocks, standard_blocks
from policyroute.langchain_.parsed import PARSED_KEY, parsed_answer
from policyroute.langchain_.unobserved import answer, default_id

if TYPE_CHECKING:
    from pydantic import BaseModel

    from policyroute.execution.result import CallResult

__all__ = [
    "PROVIDER",
    "TEXT_INDEX",
    "StreamedChunk",
    "chat_result",
    "combined_llm_output",
    "final_chunk",
    "invoke_answer",
    "llm_output",
    "plain",
    "reasoning_index",
    "response_metadata",
    "standard_content",
]

PROVIDER = "policyroute"
"""The ``model_provider`` of policyroute's answers, under which :func:`standard_content` is
registered as LangChain's translator of their content."""


def response_metadata(
    result: CallResult,
    finish_reason: str | None,
    logprobs: Any = None,
    *,
    leading: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``response_metadata`` of the message answering a call: as langchain-openai's, the
    provider's response ``id``, ``system_fingerprint`` and ``service_tier`` (when it returned
    them) and, when the call asked for them, the choice's ``logprobs`` (a plain dict,
    ``{"content": [...]}``) are there beside ``model_name`` and ``finish_reason``.

    ``leading`` (a whole answer's :func:`llm_output`) comes first, where LangChain's merge of
    ``llm_output`` into the message puts it.
    """
    response = result.response
    metadata: dict[str, Any] = dict(leading) if leading else {"model_name": result.model}
    metadata["finish_reason"] = finish_reason
    metadata["model_provider"] = PROVIDER
    response_id = read(response, "id")
    if response_id is not None:
        metadata["id"] = response_id
    if "system_fingerprint" not in metadata:
        fingerprint = read(response, "system_fingerprint")
        if fingerprint is not None:
            metadata["system_fingerprint"] = fingerprint
    tier = read(response, "service_tier")
    if tier is not None:
        metadata["service_tier"] = tier
    if logprobs is not None:
        metadata["logprobs"] = plain(logprobs)
    metadata["policyroute"] = {
        "route": result.route,
        "deployment": result.deployment,
        "attempts": [attempt.as_dict() for attempt in result.attempts],
        "cost": str(result.cost),
        "request_id": result.request_id,
        "time_to_first_token_s": result.time_to_first_token_s,
    }
    if result.cache_hit:  # litellm's response cache answered: the cost above is 0
        metadata["policyroute"]["cache_hit"] = True
    return metadata


def llm_output(result: CallResult) -> dict[str, Any]:
    """The ``llm_output`` of a whole answer, as langchain-openai's: ``model_name``, the usage
    the provider reported (``token_usage``, OpenAI's shape: ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens`` and their details) and its
    ``system_fingerprint`` when it returned one. Old-style callbacks and ``generate`` read
    them there."""
    response = result.response
    usage = read(response, "usage")
    out: dict[str, Any] = {
        "model_name": result.model,
        "token_usage": plain(usage) if usage is not None else {},
    }
    fingerprint = read(response, "system_fingerprint")
    if fingerprint is not None:
        out["system_fingerprint"] = fingerprint
    return out


def combined_llm_output(outputs: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The ``llm_output`` of a ``generate`` batch, as langchain-openai combines it: the
    ``token_usage`` of every answer summed, key by key, and the first ``model_name`` and
    ``system_fingerprint``. A streamed answer has no ``llm_output`` (its usage is on its
    last chunk), so a batch of streams has an empty ``token_usage``.

    Example:
        >>> combined_llm_output([{"model_name": "m", "token_usage": {"total_tokens": 3}},
        ...                      None, {"token_usage": {"total_tokens": 4}}])
        {'token_usage': {'total_tokens': 7}, 'model_name': 'm'}
    """
    combined: dict[str, Any] = {"token_usage": {}}
    for output in outputs:
        if not output:
            continue
        usage = output.get("token_usage")
        if isinstance(usage, Mapping):
            _add_usage(combined["token_usage"], usage)
        for key in ("model_name", "system_fingerprint"):
            if key not in combined and output.get(key) is not None:
                combined[key] = output[key]
    return combined


def _add_usage(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, Mapping):
            inner = total.get(key)
            if not isinstance(inner, dict):
                inner = total[key] = {}
            _add_usage(inner, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            previous = total.get(key)
            total[key] = value + previous if isinstance(previous, (int, float)) else value
        elif key not in total:
            total[key] = value


def plain(value: Any) -> Any:
    """litellm's logprobs and usage (pydantic models) as the plain JSON values
    langchain-openai gives."""
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def chat_result(result: CallResult, target: type[BaseModel] | None = None) -> ChatResult:
    """A whole answer as LangChain's ``ChatResult``: a generation per choice (a call with
    ``n`` > 1 has several; ``invoke`` answers the first).

    Every generation carries the call's usage and metadata, as langchain-openai's do: they
    describe the one call that produced all of them. With ``target`` (the pydantic class the
    call passed as ``response_format``), each message's ``additional_kwargs["parsed"]`` is its
    text read into it (:mod:`~policyroute.langchain_.parsed`).
    """
    response = result.response
    # One choice is the rule; an answer without any still makes one (empty) message.
    choices = read(response, "choices") or (None,)
    response_id = read(response, "id")
    origin = _origin(result, choices[0])
    output = llm_output(result)
    generations = [
        ChatGeneration(
            message=_message(result, choice, response_id, origin, output, target),
            generation_info={"finish_reason": read(choice, "finish_reason")},
        )
        for choice in choices
    ]
    return ChatResult(generations=generations, llm_output=output)


def invoke_answer(
    result: CallResult, run_id: Any, target: type[BaseModel] | None = None
) -> AIMessage:
    """The message ``invoke`` returns for ``result`` when nothing observes the call:
    ``answer(chat_result(result), run_id)``, without the ``ChatResult`` around it.

    For an answer with one choice (the rule), ``answer`` leaves :func:`chat_result`'s message
    as built but for a missing id: the ``llm_output`` and ``generation_info`` it merges into
    ``response_metadata`` are :func:`response_metadata`'s leading keys, with the same
    values. Several choices take the general path, whose merge moves ``finish_reason`` first.

    Example:
        >>> invoke_answer(result, run_id).response_metadata["policyroute"]["route"]
        ... # doctest: +SKIP
        'default'
    """
    response = result.response
    choices = read(response, "choices")
    if choices and len(choices) > 1:
        return answer(chat_result(result, target), run_id)
    choice = choices[0] if choices else None
    message = _message(
        result, choice, read(response, "id"), _origin(result, choice), llm_output(result), target
    )
    if message.id is None:
        message.id = default_id(run_id)
    return message


def _message(
    result: CallResult,
    choice: Any,
    response_id: Any,
    origin: str | None,
    output: dict[str, Any],
    target: type[BaseModel] | None = None,
) -> AIMessage:
    """The message of one of ``result``'s choices, with the call's usage and metadata, led by
    the call's ``output`` (:func:`llm_output`), and its text read into ``target``."""
    said = read(choice, "message")
    message = message_of(
        said,
        response_id,
        usage_metadata=usage_metadata(result.usage),
        response_metadata=response_metadata(
            result, read(choice, "finish_reason"), read(choice, "logprobs"), leading=output
        ),
        thinking_origin=origin,
    )
    if target is not None:
        message.additional_kwargs[PARSED_KEY] = parsed_answer(target, read(said, "content"))
    return message


def _origin(result: CallResult, first: Any) -> str | None:
    """Where the thinking blocks of the answer whose first choice is ``first`` hold: only an
    answer with thinking blocks needs to know where it came from."""
    return thinking_origin(result) if read(read(first, "message"), "thinking_blocks") else None


def thinking_origin(result: CallResult) -> str | None:
    """Where the thinking blocks of ``result``'s answer hold (see :mod:`policyroute._thinking`);
    ``None`` for a result that does not say which deployment answered."""
    return None if result.candidate is None else origin_of(result.candidate.spec)


def _thinking_of(response: Any) -> Any:
    """The raw thinking blocks of the first choice of ``response`` (``None`` when it has none)."""
    choices = read(response, "choices")
    message = read(choices[0], "message") if choices else None
    return read(message, "thinking_blocks")


class StreamedChunk(AIMessageChunk):
    """A chunk of a ``ChatPolicyRoute`` stream whose merges end with strictly parsed tool calls.

    langchain-core rebuilds a merged chunk's ``tool_calls`` from its ``tool_call_chunks`` with a
    partial-JSON parser at every merge (``AIMessageChunk.init_tool_calls``). Mid-stream that
    is what shows arguments as they arrive, but it also reads finished arguments that are not
    JSON (``{name: nope``) as ``{}``: an agent would run the tool with no arguments. Once the
    stream's last chunk is merged in, the arguments are whole, and a merge involving a
    ``StreamedChunk`` parses them as the answer to ``invoke`` is parsed (see
    :func:`~policyroute._litellm.tool_calls_from_openai`): a call whose arguments are not a
    JSON object is an ``invalid_tool_call`` holding the raw string and the error.

    A stream's first chunk is one (a merge of a list, as ``generate_from_stream`` does, is
    the first chunk's ``__add__``), and so is its last (``merged + last`` calls the last
    chunk's ``__radd__`` first, Python's rule for a subclass on the right). What a merge
    returns is a plain ``AIMessageChunk``: ``message_chunk_to_message`` makes a message of
    the class after the chunk's own in its MRO, which must be ``AIMessage``. It serialises as
    an ``AIMessageChunk``.

    Example:
        >>> first = StreamedChunk(content="", tool_call_chunks=[
        ...     {"name": "f", "args": "{x: 1", "id": "c1", "index": 0}])
        >>> last = StreamedChunk(content="", chunk_position="last")
        >>> merged = first + last
        >>> merged.tool_calls, merged.invalid_tool_calls[0]["args"]
        ([], '{x: 1')
    """

    @classmethod
    def lc_id(cls) -> list[str]:
        """``AIMessageChunk``'s id: what is saved loads as a plain chunk."""
        return AIMessageChunk.lc_id()

    def __add__(self, other: Any) -> Any:
        if isinstance(other, AIMessageChunk):
            others: list[AIMessageChunk] = [other]
        elif isinstance(other, (list, tuple)) and all(isinstance(o, AIMessageChunk) for o in other):
            others = list(other)
        else:
            return super().__add__(other)
        plain = AIMessageChunk.model_construct(self.model_fields_set, **self.__dict__)
        return _settled(add_ai_message_chunks(plain, *others))

    def __radd__(self, other: Any) -> Any:
        if not isinstance(other, AIMessageChunk):
            return NotImplemented
        return _settled(add_ai_message_chunks(other, self))


def _settled(merged: AIMessageChunk) -> AIMessageChunk:
    # Only a merge holding the last chunk has whole arguments; before it, partial parsing is
    # what shows the arguments as they stream.
    if merged.chunk_position == "last" and merged.tool_call_chunks:
        merged.tool_calls, merged.invalid_tool_calls = tool_calls_from_openai(
            [
                {"id": c["id"], "function": {"name": c["name"], "arguments": c["args"]}}
                for c in merged.tool_call_chunks
            ]
        )
        if isinstance(merged.content, list):
            _settle_call_blocks(merged, merged.content)
    return merged


def _settle_call_blocks(merged: AIMessageChunk, content: list[Any]) -> None:
    """The tool-call blocks of ``merged``'s v1 ``content`` as its strictly parsed calls: a call
    whose arguments are not JSON is an ``invalid_tool_call`` block, as in ``invoke``'s answer.

    langchain-core turns the blocks into ``tool_call`` ones from its lenient parse, which
    reads such arguments as ``{}``: content and ``invalid_tool_calls`` would disagree.
    """
    calls: dict[Any, dict[str, Any]] = {
        c["id"]: {"type": "tool_call", "name": c["name"], "args": c["args"], "id": c["id"]}
        for c in merged.tool_calls
    }
    for bad in merged.invalid_tool_calls:
        calls[bad["id"]] = {
            "type": "invalid_tool_call",
            "name": bad["name"],
            "args": bad["args"],
            "id": bad["id"],
            "error": bad["error"],
        }
    for n, block in enumerate(content):
        if (
            isinstance(block, dict)
            and block.get("type") in ("tool_call", "tool_call_chunk", "invalid_tool_call")
            and block.get("id") in calls
        ):
            settled = dict(calls[block["id"]])
            if "extras" in block:
                settled["extras"] = block["extras"]
            content[n] = settled


def final_chunk(
    result: CallResult,
    finish: str | None,
    *,
    first: bool = False,
    streamed: Sequence[str] | None = None,
    target: type[BaseModel] | None = None,
) -> ChatGenerationChunk:
    """The last chunk of a stream: no text, the call's usage and metadata, and the
    ``generation_info`` of :data:`_STREAMED_INFO`.

    It is the only chunk with usage: LangChain sums usage across chunks, so reporting it once
    is what makes the merged message's totals right. It is a :class:`StreamedChunk`, unless
    it is also the ``first`` (then there is nothing to merge it with).

    ``streamed`` is given for a stream in LangChain's v1 format: the texts of the reasoning
    blocks streamed so far, the n-th under :func:`reasoning_index` n. The chunk's content then
    holds the answer's signed blocks as v1 blocks that complete them (see
    :func:`_closing_blocks`).

    With ``target`` (the pydantic class the call passed as ``response_format``), the chunk's
    ``additional_kwargs["parsed"]`` is the whole answer's text read into it.
    """
    if finish is None:
        finish = finish_reason_of(result.response)
    # A stream's thinking arrives as unsigned fragments closed by a signature; the blocks to
    # send back are the whole ones of the answer assembled from the answering attempt.
    raw = _thinking_of(result.response)
    blocks = signed_blocks(raw, thinking_origin(result)) if raw else None
    content: Any = _closing_blocks(blocks, streamed) if blocks and streamed is not None else ""
    metadata = response_metadata(result, finish)
    extra: dict[str, Any] = {"thinking_blocks": blocks} if blocks else {}
    if target is not None:
        choices = read(result.response, "choices")
        said = read(choices[0], "message") if choices else None
        extra[PARSED_KEY] = parsed_answer(target, read(said, "content"))
    message = (AIMessageChunk if first else StreamedChunk)(
        content=content,
        additional_kwargs=extra,
        usage_metadata=usage_metadata(result.usage),
        response_metadata=metadata,
        chunk_position="last",
    )
    info = {key: metadata[key] for key in _STREAMED_INFO if key in metadata}
    return ChatGenerationChunk(message=message, generation_info=info)


_STREAMED_INFO = ("finish_reason", "model_name", "system_fingerprint", "service_tier")
"""What the last chunk of a stream puts in its ``generation_info``, as langchain-openai's
finishing chunk does: a streamed answer's ``generation_info`` (``generate`` and
``on_llm_end`` read it) then says which model answered, as its ``response_metadata`` does.
Only the last chunk has them: LangChain merges the chunks' dicts, joining strings."""


TEXT_INDEX = "lc_text"
"""The ``index`` of the text block of a v1 stream: a string, which cannot clash with the
integer indices of the tool calls (see :func:`reasoning_index`)."""


def reasoning_index(n: int) -> str:
    """The ``index`` of the n-th reasoning block of a v1 stream. LangChain merges the blocks of
    a stream's chunks by index; an ``lc_`` string cannot clash with the integer indices of
    the text and tool calls, and is not concatenated when merged."""
    return f"lc_reasoning_{n}"


def _closing_blocks(blocks: list[dict[str, Any]], streamed: Sequence[str]) -> list[Any]:
    """The signed ``blocks`` as the v1 blocks of a stream's last chunk.

    A thinking block whose text is the n-th streamed reasoning block's adds only its
    signature and mark to it (as langchain-anthropic's signature deltas do), so that the
    merged message holds each block once, signed. A block the stream did not show as such
    (a redacted one, or one whose text differs) comes whole, under an index of its own.
    """
    out: list[Any] = []
    thinking = 0
    for n, block in enumerate(standard_blocks(blocks)):
        if block["type"] == "reasoning":
            if thinking < len(streamed) and streamed[thinking] == block["reasoning"]:
                block["reasoning"] = ""
                block["index"] = reasoning_index(thinking)
            else:
                block["index"] = f"lc_signed_reasoning_{n}"
            thinking += 1
        else:
            block["index"] = f"lc_redacted_thinking_{n}"
        out.append(block)
    return out


def standard_content(message: AIMessage) -> list[types.ContentBlock]:
    """The standard (v1) content blocks of a policyroute answer: LangChain's reading of its
    content, with its kept thinking blocks (``additional_kwargs["thinking_blocks"]``) first,
    as signed v1 blocks (see :func:`~policyroute._thinking.standard_blocks`), in place of the
    unsigned reasoning text. Content that already holds reasoning blocks (a v1 stream's last
    chunk) is read as it is.

    Registered as LangChain's translator for :data:`PROVIDER`: ``content_blocks`` and
    ``output_version="v1"`` use it.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> kept = [{"type": "thinking", "thinking": "hm", "signature": "s1"}]
        >>> m = AIMessage("42", additional_kwargs={"thinking_blocks": kept},
        ...               response_metadata={"model_provider": "policyroute"})
        >>> [(b["type"], b.get("extras")) for b in m.content_blocks]
        [('reasoning', {'signature': 's1'}), ('text', None)]
    """
    metadata = {k: v for k, v in message.response_metadata.items() if k != "model_provider"}
    # The same message without a provider is read by LangChain's own best-effort parsing.
    blocks = message.model_copy(update={"response_metadata": metadata}).content_blocks
    kept = message.additional_kwargs.get("thinking_blocks")
    content = message.content
    if not kept or isinstance(kept, str) or not isinstance(kept, Sequence):
        return blocks
    if not isinstance(content, str) and any(
        isinstance(b, dict) and b.get("type") == "reasoning" for b in content
    ):
        return blocks
    signed: list[Any] = standard_blocks(kept)
    return signed + [b for b in blocks if b["type"] != "reasoning"]


register_translator(PROVIDER, standard_content, standard_content)
