"""Lifecycle under load: bursts of clients, clients that go away, async use, recording."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from policyroute.testing import FakeProvider, Fault, Reply


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def raw_request(model: str, text: str) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_a_burst_of_clients_is_accepted_without_syn_retransmits(fp: FakeProvider) -> None:
    # With asyncio's default backlog of 100, part of a burst waits out TCP's 1 s SYN timer.
    count = 400
    connect_times: list[float] = []

    async def one(index: int) -> bytes:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", fp.port)
        connect_times.append(time.monotonic() - started)
        writer.write(raw_request(f"m{index % 4}", f"hello number {index}"))
        await writer.drain()
        data = await reader.read()
        writer.close()
        return data

    async def burst() -> list[bytes]:
        return await asyncio.gather(*(one(i) for i in range(count)))

    answers = asyncio.run(burst())
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
    # A SYN retransmit costs at least TCP's initial 1 s timer; a merely busy machine stays below.
    assert max(connect_times) < 1.0
    recorded = fp.requests
    assert len(recorded) == count
    texts = sorted(r.body["messages"][0]["content"] for r in recorded)
    assert texts == sorted(f"hello number {i}" for i in range(count))
    assert sum(fp.attempt_counts.values()) == count
    assert all(r.raw_body == json.dumps(r.body).encode() for r in recorded)


@pytest.mark.parametrize(
    ("fault", "stream"),
    [
        (Fault.no_response(timeout=60), False),
        (Fault.stall(after=1, timeout=60), True),
        (Fault.stall(after=1, timeout=60), False),
    ],
    ids=["no-response", "stall-stream", "stall-json"],
)
def test_a_client_giving_up_on_a_hang_frees_its_connection(
    fp: FakeProvider, fault: Fault, stream: bool
) -> None:
    fp.script("m", fault)
    body = {"model": "m", "stream": stream}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(fp.openai_base + "/chat/completions", json=body, timeout=0.3)
    fp.wait_for_connections(0, timeout=2)
    assert fp.open_connections == 0


def test_a_client_leaving_mid_stream_leaves_no_error_and_stop_is_prompt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = FakeProvider().start()
    provider.script("m", Reply(text=" ".join(["w"] * 40), chunk_delay=0.02))
    body = {"model": "m", "stream": True}
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        with httpx.stream("POST", provider.openai_base + "/chat/completions", json=body) as r:
            next(r.iter_raw())
        provider.wait_for_connections(0, timeout=2)
        started = time.monotonic()
        provider.stop()
        assert time.monotonic() - started < 1
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]


def test_async_with_starts_and_stops_without_blocking_the_loop() -> None:
    async def main() -> tuple[str, bool]:
        async with FakeProvider() as fp, httpx.AsyncClient() as client:
            fp.script("m", Reply(text="async hi"))
            r = await client.post(fp.openai_base + "/chat/completions", json={"model": "m"})
            provider = fp
        return r.json()["choices"][0]["message"]["content"], provider.running

    assert asyncio.run(main()) == ("async hi", False)


def test_an_explicit_port_is_served_again_after_a_restart() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fp = FakeProvider(port=port)
    for _ in range(2):
        with fp, httpx.Client() as client:
            assert fp.port == port
            r = client.post(fp.openai_base + "/chat/completions", json={"model": "m"})
            assert r.status_code == 200
    fp.stop()
    assert not fp.running
