"""``request_sent`` against the real transports litellm uses, on loopback: httpx (sync calls)
and aiohttp (litellm's async transport). A read-side timeout, or a cancellation or deadline
landing while the answer is awaited, means sent; anything while connecting means not."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import httpx
import pytest
from exec_support import arun, stalled_port

from policyroute.execution.request_sent import request_sent
from policyroute.execution.timeouts import within
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

BODY = {"model": "sig", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def unreachable() -> Iterator[str]:
    """A URL on a port where connecting never completes."""
    with stalled_port() as port:
        yield f"http://127.0.0.1:{port}/v1/chat/completions"


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except BaseException as exc:  # what ended the call, cancellations included, is the subject
        return exc
    raise AssertionError("the call did not fail")


def test_httpx_read_timeout_is_sent(fp: FakeProvider) -> None:
    fp.script("sig", Fault.no_response(timeout=5))
    url = fp.openai_base + "/chat/completions"

    exc = _raised(lambda: httpx.post(url, json=BODY, timeout=0.2))

    assert isinstance(exc, httpx.ReadTimeout)
    assert request_sent(exc) is True


def test_httpx_connect_timeout_is_not_sent(unreachable: str) -> None:
    exc = _raised(lambda: httpx.post(unreachable, json=BODY, timeout=0.2))

    assert isinstance(exc, httpx.ConnectTimeout)
    assert request_sent(exc) is False


def test_httpx_refused_connection_is_not_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    exc = _raised(lambda: httpx.post(f"http://127.0.0.1:{port}/", json=BODY, timeout=1))

    assert isinstance(exc, httpx.ConnectError)
    assert request_sent(exc) is False


def test_an_error_status_is_not_sent_evidence(fp: FakeProvider) -> None:
    # The provider answered (a 408 even): its answer, not a timeout of the client's.
    fp.script("sig", Fault.status(408))
    url = fp.openai_base + "/chat/completions"

    exc = _raised(lambda: httpx.post(url, json=BODY, timeout=1).raise_for_status())

    assert request_sent(exc) is False


def test_a_connect_side_error_in_the_chain_wins() -> None:
    late = httpx.ReadTimeout("late")
    late.__cause__ = httpx.ConnectError("refused")

    assert request_sent(late) is False


def _interrupted(call: Callable[[], object], when: Callable[[], object]) -> BaseException:
    """What ``call`` raises when SIGINT reaches this (the main) thread once ``when()``."""
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        while not when():
            time.sleep(0.02)
        time.sleep(0.1)
        signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        return _raised(call)
    finally:
        interrupter.join()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_keyboard_interrupt_while_reading_is_sent(fp: FakeProvider) -> None:
    fp.script("sig", Fault.no_response(timeout=5))
    url = fp.openai_base + "/chat/completions"

    exc = _interrupted(lambda: httpx.post(url, json=BODY, timeout=10), lambda: fp.requests)

    assert isinstance(exc, KeyboardInterrupt)
    assert request_sent(exc) is True


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_keyboard_interrupt_while_connecting_is_not_sent(unreachable: str) -> None:
    exc = _interrupted(lambda: httpx.post(unreachable, json=BODY, timeout=10), lambda: True)

    assert isinstance(exc, KeyboardInterrupt)
    sent = request_sent(exc)
    # socket.create_connection leaves the socket an interrupt cut short open (it closes it on
    # an OSError only): collected here, its ResourceWarning is the standard library's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del exc
        gc.collect()
    assert sent is False


async def _aiohttp_post(url: str, timeout: aiohttp.ClientTimeout) -> None:
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=BODY) as response,
    ):
        await response.read()


async def _ended(awaitable: Awaitable[object]) -> BaseException:
    try:
        await awaitable
    except BaseException as exc:  # what ended the call, cancellations included, is the subject
        return exc
    raise AssertionError("the call did not fail")


def test_aiohttp_read_timeout_is_sent(fp: FakeProvider) -> None:
    fp.script("sig", Fault.no_response(timeout=5))
    url = fp.openai_base + "/chat/completions"

    exc = arun(_ended(_aiohttp_post(url, aiohttp.ClientTimeout(sock_read=0.2))))

    assert isinstance(exc, aiohttp.SocketTimeoutError)
    assert request_sent(exc) is True


def test_aiohttp_connect_timeout_is_not_sent(unreachable: str) -> None:
    exc = arun(_ended(_aiohttp_post(unreachable, aiohttp.ClientTimeout(sock_connect=0.2))))

    assert isinstance(exc, aiohttp.ConnectionTimeoutError)
    assert request_sent(exc) is False


def test_a_deadline_while_awaiting_the_answer_is_sent(fp: FakeProvider) -> None:
    fp.script("sig", Fault.no_response(timeout=5))
    url = fp.openai_base + "/chat/completions"

    exc = arun(_ended(within(_aiohttp_post(url, aiohttp.ClientTimeout()), 0.3)))

    assert isinstance(exc, TimeoutError)
    assert request_sent(exc) is True


def test_a_deadline_while_connecting_is_not_sent(unreachable: str) -> None:
    exc = arun(_ended(within(_aiohttp_post(unreachable, aiohttp.ClientTimeout()), 0.3)))

    assert isinstance(exc, TimeoutError)
    assert request_sent(exc) is False


def test_a_cancellation_before_any_transport_is_not_sent() -> None:
    async def backoff() -> None:
        await asyncio.sleep(5)

    async def main() -> BaseException:
        task = asyncio.ensure_future(backoff())
        await asyncio.sleep(0.05)
        task.cancel()
        return await _ended(task)

    exc = arun(main())

    assert isinstance(exc, asyncio.CancelledError)
    assert request_sent(exc) is False
