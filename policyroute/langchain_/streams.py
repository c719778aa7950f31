"""``ChatPolicyRoute``'s sync and async streams.

Both turn the executor's events into LangChain chunks the same way (a chunk per provider chunk
with content, then one final chunk with the call's usage and metadata) and send the budget
threshold events their call crossed to the call's run; only the awaiting differs, so
:func:`stream_chunks` and :func:`astream_chunks` are twin loops over one :class:`StreamState`.

Example:
    >>> for chunk in stream_chunks(model, executor, request, run_manager, config):
    ...     print(chunk.text)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.callbacks.manager import BaseRunManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig

from policyroute._fields import read
from policyroute._litellm import chunk_to_message
from policyroute.execution.result import StreamDone
from policyroute.langchain_ import events
from policyroute.langchain_.facts import OwnedStream, run_manager_from_config
from policyroute.langchain_.parsed import parse_target
from policyroute.langchain_.results import (
    TEXT_INDEX,
    StreamedChunk,
    final_chunk,
    plain,
    reasoning_index,
)
from policyroute.request import Request

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["StreamState", "astream_chunks", "stream_chunks"]

_UNSEEN = object()
"""The choice index of a stream that has not seen a choice yet."""


class StreamState:
    """One stream's progress: the finish reason seen so far and its budget events.

    ``usage`` says whether the last chunk carries the call's ``usage_metadata`` (see
    :func:`~policyroute.langchain_.openai_options.usage_on_chunks`).

    ``watching`` collects the threshold events of the request while the stream runs (when the
    model's accounting reports thresholds). For a model with ``output_version="v1"``,
    ``streamed`` holds the text of each reasoning block streamed so far (a signature closes
    one), so that its chunks give each block an index of its own and the last chunk can sign
    them; ``None`` otherwise. ``named`` maps the index of each tool call whose name was
    streamed already to its id (see :func:`~policyroute._litellm.chunk_to_message`).
    """

    __slots__ = (
        "_block",
        "_config",
        "_model",
        "_target",
        "choice",
        "crossed",
        "finish",
        "message_id",
        "named",
        "parse_as",
        "request_id",
        "started",
        "streamed",
        "usage",
        "watching",
    )

    def __init__(
        self,
        model: BaseChatModel,
        request: Request,
        run_manager: BaseRunManager | None,
        config: RunnableConfig | None,
        *,
        watching: bool,
        usage: bool = True,
    ) -> None:
        self._model = model
        self.usage = usage
        self._config = config
        self._target = run_manager
        self.request_id = request.request_id
        self.parse_as = parse_target(request.response_format)
        self.watching = watching
        self.crossed: list[Any] = events.watch(request.request_id) if watching else []
        self.finish: str | None = None
        self.message_id: str | None = None
        self.named: dict[Any, str | None] = {}
        self.started = False
        self.choice: Any = _UNSEEN
        v1 = getattr(model, "output_version", None) == "v1"
        self.streamed: list[str] | None = [] if v1 else None
        self._block = 0

    def chunk(self, event: Any) -> ChatGenerationChunk | None:
        """The LangChain chunk for an executor event; ``None`` for a chunk with nothing in it.

        The first and the last chunks are :class:`~policyroute.langchain_.results.StreamedChunk`
        (whose merges parse the finished tool-call arguments strictly).
        """
        if isinstance(event, StreamDone):
            last = final_chunk(
                event.result,
                self.finish,
                first=not self.started,
                streamed=self.streamed,
                target=self.parse_as,
            )
            # One message's chunks share its id: left without one, the last chunk (usage,
            # finish reason) would get the run's id from LangChain, and whatever groups a
            # stream's chunks by id (LangGraph's "messages" stream, a UI) would see two
            # messages.
            last.message.id = self.message_id
            if not self.usage and isinstance(last.message, AIMessageChunk):
                # ``stream_usage=False``: the call was charged from the provider's usage all
                # the same; the caller asked not to be given it, as ChatOpenAI's callers do.
                last.message.usage_metadata = None
            return last
        if not self._same_choice(event.chunk):
            return None
        message, reason = chunk_to_message(event.chunk, self.named)
        message = _with_refusal(message, event.chunk)
        self.finish = reason or self.finish
        if self.streamed is not None:
            self._v1_reasoning(self.streamed, event.chunk, message)
            _v1_text(message)
        if message is None:
            return None
        if self.message_id is None:
            self.message_id = message.id
        logprobs = read(read(event.chunk, "choices")[0], "logprobs")
        info: dict[str, Any] | None = None
        if logprobs is not None:
            # Each chunk's own tokens, as langchain-openai's chunks carry them (in both
            # places): merged, the message and the generation hold the answer's logprobs in
            # order.
            info = {"logprobs": plain(logprobs)}
            message.response_metadata["logprobs"] = info["logprobs"]
        if not self.started:
            self.started = True
            message = StreamedChunk.model_construct(message.model_fields_set, **message.__dict__)
        return ChatGenerationChunk(message=message, generation_info=info)

    def _v1_reasoning(
        self, streamed: list[str], chunk: Any, message: AIMessageChunk | None
    ) -> None:
        """Put the reasoning of a v1 stream's ``message`` in its content as a ``reasoning``
        block indexed by the thinking block it belongs to, and count the blocks ``chunk``
        closes.

        Left to LangChain, every reasoning fragment gets the index of the first block of the
        stream, which clashes with the first tool call's (both 0): merged, they are one
        garbled block. litellm concatenates the blocks' texts, so their bounds are read from
        the provider delta: a ``thinking`` block with a signature ends one.
        """
        text = message.additional_kwargs.get("reasoning_content") if message else None
        if message is not None and isinstance(text, str) and text:
            if len(streamed) == self._block:
                streamed.append("")
            streamed[self._block] += text
            parts: list[Any] = [
                {"type": "reasoning", "reasoning": text, "index": reasoning_index(self._block)}
            ]
            if message.content:
                parts.append({"type": "text", "text": message.content, "index": TEXT_INDEX})
            message.content = parts
        choices = read(chunk, "choices")
        delta = read(choices[0], "delta") if choices else None
        for block in read(delta, "thinking_blocks") or ():
            if read(block, "type") == "thinking" and read(block, "signature"):
                if len(streamed) == self._block:
                    streamed.append("")
                self._block += 1

    def _same_choice(self, chunk: Any) -> bool:
        """Whether a provider chunk belongs to the stream's choice: the first one seen.

        A call with ``n`` > 1 streams the deltas of every choice, each chunk naming its
        choice's ``index``; a LangChain stream carries one message, so it is the first
        choice's, which is also what ``invoke`` answers. Merging them all would interleave the
        choices' texts and splice their tool calls together. The index is compared, not
        required to be 0, so that a provider numbering its one choice otherwise loses nothing.
        """
        choices = read(chunk, "choices")
        if not choices:
            return True
        index = read(choices[0], "index")
        if self.choice is _UNSEEN:
            self.choice = index
        return bool(index == self.choice)

    def target(self) -> BaseRunManager | None:
        """Where the crossed thresholds go.

        langchain-core does not pass the run's handlers to ``_stream`` from ``stream()``: they
        are rebuilt from the config, once, when there is an event to send.
        """
        if self.crossed and self._target is None:
            self._target = run_manager_from_config(self._config, self._model)
        return self._target

    def stop_watching(self) -> bool:
        """Stop collecting; true if events were collected and may still need sending."""
        if self.watching:
            events.unwatch(self.request_id)
        return self.watching


def _with_refusal(message: AIMessageChunk | None, chunk: Any) -> AIMessageChunk | None:
    """``message`` with the refusal fragment of the stream's ``chunk`` (OpenAI's
    ``delta.refusal``) in ``additional_kwargs["refusal"]``, where ``invoke`` puts a refusal
    (see :func:`~policyroute._litellm.message_of`); LangChain joins the fragments as it
    merges the chunks. A chunk with a fragment and nothing else becomes a message of its own.
    """
    choices = read(chunk, "choices")
    fragment = read(read(choices[0], "delta"), "refusal") if choices else None
    if not isinstance(fragment, str) or not fragment:
        return message
    if message is None:
        return AIMessageChunk(
            content="", additional_kwargs={"refusal": fragment}, id=read(chunk, "id")
        )
    message.additional_kwargs["refusal"] = fragment
    return message


def _v1_text(message: AIMessageChunk | None) -> None:
    """Put the text of a v1 stream's ``message`` in its content as a ``text`` block under
    :data:`~policyroute.langchain_.results.TEXT_INDEX`.

    Left to LangChain, the text gets index 0, the first tool call's index too: Claude's usual
    turn, a sentence then a call, would merge into one garbled block, the call lost from the
    content. An answer's texts are one block, as ``invoke`` gives them.
    """
    if message is not None and isinstance(message.content, str) and message.content:
        message.content = [{"type": "text", "text": message.content, "index": TEXT_INDEX}]


def stream_chunks(
    model: BaseChatModel,
    executor: Executor,
    request: Request,
    run_manager: CallbackManagerForLLMRun | None,
    config: RunnableConfig | None,
    *,
    watching: bool,
    usage: bool = True,
) -> Iterator[ChatGenerationChunk]:
    """Stream ``request`` through ``executor`` as LangChain chunks, each also reported to
    ``run_manager`` as a new token; ``watching`` sends the crossed budget thresholds to the run,
    ``usage`` puts the call's usage on the last chunk.
    """
    state = StreamState(model, request, run_manager, config, watching=watching, usage=usage)
    events_of = executor.stream(request)
    try:
        for event in events_of:
            if isinstance(event, StreamDone):
                events.dispatch(state.target(), state.crossed)
            out = state.chunk(event)
            if out is None:
                continue
            if run_manager is not None:
                run_manager.on_llm_new_token(out.text, chunk=out)
            yield out
    finally:
        # Closing the executor's stream first settles an abandoned call, whose threshold
        # events must still reach this run.
        events_of.close()
        if state.stop_watching():
            events.dispatch(state.target(), state.crossed)


def astream_chunks(
    model: BaseChatModel,
    executor: Executor,
    request: Request,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    config: RunnableConfig | None,
    *,
    watching: bool,
    usage: bool = True,
) -> AsyncGenerator[ChatGenerationChunk, None]:
    """Async twin of :func:`stream_chunks`.

    Both ``_astream`` and ``astream`` close the stream returned, the loop's end does not (see
    :class:`~policyroute.langchain_.facts.OwnedStream`).
    """
    chunks = _astream_chunks(model, executor, request, run_manager, config, watching, usage)
    return OwnedStream(chunks)


async def _astream_chunks(
    model: BaseChatModel,
    executor: Executor,
    request: Request,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    config: RunnableConfig | None,
    watching: bool,
    usage: bool,
) -> AsyncGenerator[ChatGenerationChunk, None]:
    state = StreamState(model, request, run_manager, config, watching=watching, usage=usage)
    events_of = OwnedStream(executor.astream(request))  # closed here only
    try:
        async for event in events_of:
            if isinstance(event, StreamDone):
                await events.adispatch(state.target(), state.crossed)
            out = state.chunk(event)
            if out is None:
                continue
            if run_manager is not None:
                await run_manager.on_llm_new_token(out.text, chunk=out)
            yield out
    finally:
        # An abandoned async generator is not closed by leaving the loop: close it here,
        # so that the call is settled (and its threshold events filed) before they are sent.
        await events_of.aclose()
        if state.stop_watching():
            await events.adispatch(state.target(), state.crossed)
