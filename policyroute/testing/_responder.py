"""Turning a selected step into bytes on the wire: answers, errors and injected faults."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from policyroute.testing import _anthropic_wire as anthropic_wire
from policyroute.testing import _openai_wire as openai_wire
from policyroute.testing._faults import (
    BadRequestFault,
    ConnectionReset,
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    MalformedBody,
    MalformedChunk,
    MissingDone,
    NoResponse,
    RawResponse,
    RawStream,
    SlowFirstToken,
    StatusFault,
    Step,
    StreamCut,
    StreamStall,
)
from policyroute.testing._http import LAST_CHUNK, encode_chunk, full_response, stream_head
from policyroute.testing._steps import Reply
from policyroute.testing._synth import Api, ChatRequest, IdSource, build_answer

_SSE_TYPE = "text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Delivery:
    delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    stall_timeout: float = 0.0
    malformed_after: int | None = None
    omit_terminal: bool = False


class Responder:
    """Writes responses for one server; every method returns whether to keep the connection.

    Runs on the server's event loop only.
    """

    def __init__(self) -> None:
        self._ids = IdSource()

    async def send_error(
        self,
        api: Api,
        writer: asyncio.StreamWriter,
        keep: bool,
        status: int,
        message: str,
        error_type: str,
        param: str | None = None,
    ) -> bool:
        """Answer a request the provider rejects itself (bad body, wrong method...)."""
        request_id = f"req_fake{self._ids.next():06d}"
        if api == "anthropic":
            body = anthropic_wire.error_body(error_type, message, request_id)
        else:
            body = openai_wire.error_body(message, error_type, None, param)
        return await self.write_error(api, writer, keep, status, body, request_id, None)

    async def write_error(
        self,
        api: Api,
        writer: asyncio.StreamWriter,
        keep: bool,
        status: int,
        body: bytes,
        request_id: str,
        retry_after: float | None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Write an error response with a request id, an optional ``Retry-After`` and the
        fault's own ``headers``."""
        extra = [("request-id" if api == "anthropic" else "x-request-id", request_id)]
        if retry_after is not None:
            extra.append(("retry-after", _format_seconds(retry_after)))
        extra.extend(headers)
        writer.write(full_response(status, body, keep_alive=keep, extra_headers=extra))
        await writer.drain()
        return keep

    async def execute(
        self,
        api: Api,
        chat: ChatRequest,
        step: Step | None,
        writer: asyncio.StreamWriter,
        keep: bool,
        reader: asyncio.StreamReader | None = None,
    ) -> bool:
        """Answer ``chat`` with ``step`` (``None``: generated default content).

        ``reader`` lets faults that hang (no response, stall) end as soon as the client
        closes its end, instead of holding the connection until their timeout.
        """
        if step is None or isinstance(step, Reply):
            return await self.answer(api, chat, step, _Delivery(), writer, keep)
        if isinstance(step, (StatusFault, ContextLengthFault, ContentFilterFault, BadRequestFault)):
            request_id = f"req_fake{self._ids.next():06d}"
            status, body, retry_after = _error_for(api, step, chat.model, request_id)
            headers = step.headers if isinstance(step, StatusFault) else ()
            return await self.write_error(
                api, writer, keep, status, body, request_id, retry_after, headers
            )
        if isinstance(step, ConnectionReset):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if isinstance(step, NoResponse):
            await _hang(reader, step.timeout)
            writer.transport.abort()
            return False
        if isinstance(step, MalformedBody):
            garbage = (
                anthropic_wire.MALFORMED_BODY if api == "anthropic" else openai_wire.MALFORMED_BODY
            )
            writer.write(full_response(200, garbage, keep_alive=keep))
            await writer.drain()
            return keep
        if isinstance(step, RawResponse):
            writer.write(
                full_response(
                    step.status_code,
                    step.payload,
                    content_type=step.content_type,
                    keep_alive=keep,
                )
            )
            await writer.drain()
            return keep
        if isinstance(step, RawStream):
            return await _raw_stream(step, writer)
        reply, delivery = _delivery_for(step)
        return await self.answer(api, chat, reply, delivery, writer, keep, reader)

    async def answer(
        self,
        api: Api,
        chat: ChatRequest,
        reply: Reply | None,
        delivery: _Delivery,
        writer: asyncio.StreamWriter,
        keep: bool,
        reader: asyncio.StreamReader | None = None,
    ) -> bool:
        """Send a successful answer, as JSON or SSE, shaped by the ``delivery`` faults."""
        answer = build_answer(chat, reply, self._ids.next(), int(time.time()))
        delay = delivery.delay + (reply.delay if reply is not None else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        broken = delivery.cut_after is not None or delivery.stall_after is not None
        if not chat.stream:
            render = anthropic_wire.render_json if api == "anthropic" else openai_wire.render_json
            body = render(answer)
            if not broken:
                writer.write(full_response(200, body, keep_alive=keep))
                await writer.drain()
                return keep
            response = full_response(200, body, keep_alive=False)
            writer.write(response[: len(response) - len(body) // 2])
            await writer.drain()
            if delivery.stall_after is not None:
                await _hang(reader, delivery.stall_timeout)
            writer.transport.abort()
            return False
        if api == "anthropic":
            events, terminal = anthropic_wire.render_events(answer)
            malformed = anthropic_wire.MALFORMED_EVENT
        else:
            events, terminal = openai_wire.render_events(answer, chat.include_usage)
            malformed = openai_wire.MALFORMED_EVENT
        # A fault placed past the last event still happens, just before the terminal one:
        # a test scripting Fault.stream_cut(after=50) on a short answer wants a cut stream.
        cut_after, stall_after, malformed_after = (
            None if at is None else min(at, len(events))
            for at in (delivery.cut_after, delivery.stall_after, delivery.malformed_after)
        )
        keep_after = keep and not broken and not delivery.omit_terminal
        writer.write(stream_head(content_type=_SSE_TYPE, keep_alive=keep_after, extra=[]))
        plain = not broken and malformed_after is None and answer.chunk_delay <= 0
        if plain:
            tail = () if delivery.omit_terminal else (terminal,)
            writer.write(b"".join(encode_chunk(e) for e in (*events, *tail)) + LAST_CHUNK)
            await writer.drain()
            return keep_after
        for index in range(len(events) + 1):
            if index == cut_after:
                await writer.drain()
                writer.close()
                return False
            if index == stall_after:
                await writer.drain()
                await _hang(reader, delivery.stall_timeout)
                writer.transport.abort()
                return False
            if index == malformed_after:
                writer.write(encode_chunk(malformed))
            if index == len(events):
                break
            if answer.chunk_delay > 0 and index > 0:
                await writer.drain()
                await asyncio.sleep(answer.chunk_delay)
            writer.write(encode_chunk(events[index]))
        if not delivery.omit_terminal:
            writer.write(encode_chunk(terminal))
        writer.write(LAST_CHUNK)
        await writer.drain()
        return keep_after


async def _hang(reader: asyncio.StreamReader | None, seconds: float) -> None:
    """Wait ``seconds``, or less if the client closes its end (the connection is dropped
    afterwards, so whatever the client sends meanwhile is read and discarded)."""
    if reader is None:
        await asyncio.sleep(seconds)
        return

    async def until_closed(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    try:
        await asyncio.wait_for(until_closed(reader), seconds)
    except (asyncio.TimeoutError, ConnectionError):
        pass


async def _raw_stream(step: RawStream, writer: asyncio.StreamWriter) -> bool:
    writer.write(stream_head(content_type=_SSE_TYPE, keep_alive=False, extra=[]))
    writer.write(b"".join(encode_chunk(step.encoded(e)) for e in step.events))
    if step.repeat_every is None:
        if step.done:
            writer.write(encode_chunk(b"data: [DONE]\n\n"))
        writer.write(LAST_CHUNK)
        await writer.drain()
        return False
    again = encode_chunk(step.encoded(step.events[-1]))
    deadline = time.monotonic() + step.timeout
    while time.monotonic() < deadline:
        await writer.drain()
        await asyncio.sleep(step.repeat_every)
        writer.write(again)
    await writer.drain()
    writer.transport.abort()
    return False


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _error_for(
    api: Api, fault: Fault, model: str, request_id: str
) -> tuple[int, bytes, float | None]:
    if isinstance(fault, StatusFault):
        if fault.body is not None:
            body = fault.body.encode()
        elif api == "anthropic":
            body = anthropic_wire.status_error(fault.status_code, fault.message, request_id)
        else:
            body = openai_wire.status_error(fault.status_code, model, fault.message)
        return fault.status_code, body, fault.retry_after
    if isinstance(fault, ContextLengthFault):
        if api == "anthropic":
            return 400, anthropic_wire.context_length_error(fault.message, request_id), None
        return 400, openai_wire.context_length_error(fault.message), None
    if isinstance(fault, ContentFilterFault):
        if api == "anthropic":
            return 400, anthropic_wire.content_filter_error(fault.message, request_id), None
        return 400, openai_wire.content_filter_error(fault.code, fault.message), None
    if isinstance(fault, BadRequestFault):
        if api == "anthropic":
            return 400, anthropic_wire.bad_request_error(fault.message, request_id), None
        return 400, openai_wire.bad_request_error(fault.message, fault.param), None
    raise TypeError(f"not an error fault: {fault!r}")


def _delivery_for(fault: Fault) -> tuple[Reply | None, _Delivery]:
    if isinstance(fault, SlowFirstToken):
        return fault.reply, _Delivery(delay=fault.delay)
    if isinstance(fault, StreamCut):
        return fault.reply, _Delivery(cut_after=fault.after)
    if isinstance(fault, StreamStall):
        return fault.reply, _Delivery(stall_after=fault.after, stall_timeout=fault.timeout)
    if isinstance(fault, MalformedChunk):
        return fault.reply, _Delivery(malformed_after=fault.after)
    if isinstance(fault, MissingDone):
        return fault.reply, _Delivery(omit_terminal=True)
    raise TypeError(f"unsupported fault: {fault!r}")
