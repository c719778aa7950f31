"""A connect cancelled by policyroute's own waits leaves the event loop watching nothing stale.

aiohttp connects through ``loop.sock_connect``: the loop watches the socket's file descriptor
until the connect completes, and stops watching it from the connect future's own done callback.
A task delivers a cancellation in that order: the future is cancelled, which schedules that
callback, and the task is woken after it. aiohttp closes the socket of a connect it gives up on
as soon as the cancellation reaches it, so a cancellation thrown into the call at once closed
the socket while the loop still watched its descriptor number: the kernel forgets a closed
descriptor, the loop did not, and the next socket given that number (the lowest free one,
usually another call's connect in the same loop turn) was never watched. That connect never
completed, and its call waited for its connect timeout (ten minutes with litellm's default)
while the loop sat idle.

Two waits of policyroute's own step a call by hand and deliver cancellations to it: the handoff
(a cancellation held back while litellm's worker thread prepares the call, delivered at the
call's first await after it) and Python 3.10's in-place deadline (``inplace_timeout.bounded``,
tested here on every version). Each case below cancels a connect that never completes (a
stalled port) and then, at once, connects a new socket that gets the freed descriptor number.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from exec_support import arun, stalled_port

from policyroute.execution.handoff import handed_off
from policyroute.execution.inplace_timeout import bounded
from policyroute.execution.timeouts import within

pytestmark = pytest.mark.timeout(60)

# litellm's ``acompletion`` as handed_off recognises it (its name, in ``litellm/main.py``): it
# waits for its worker thread, then connects as aiohappyeyeballs does for aiohttp, closing the
# socket of a connect it gives up on.
_LITELLM_LIKE = """
async def acompletion(loop, prepare, sock, address):
    await loop.run_in_executor(None, prepare)
    try:
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
"""
_namespace: dict[str, Any] = {}
exec(  # a fixed source, compiled under litellm's file name
    compile(_LITELLM_LIKE, os.path.join(os.sep, "site", "litellm", "main.py"), "exec"),
    _namespace,
)
acompletion: Callable[..., Awaitable[None]] = _namespace["acompletion"]

# How long the next connect may take: on loopback it completes at once, or never.
CONNECT_BOUND_S = 10.0


async def connect_or_close(sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect as aiohappyeyeballs does: the socket is closed if the connect does not end."""
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise


@contextlib.contextmanager
def listening() -> Iterator[tuple[str, int]]:
    """A loopback listener whose connects complete (the kernel accepts them)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()
    finally:
        listener.close()


@contextlib.contextmanager
def stalled_socket() -> Iterator[tuple[socket.socket, tuple[str, int]]]:
    """A non-blocking socket, and an address its connect never completes with."""
    with stalled_port() as port:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            yield sock, ("127.0.0.1", port)
        finally:
            sock.close()


def socket_numbered(descriptor: int) -> socket.socket:
    """A new socket whose descriptor number is ``descriptor``, a number just freed.

    A new descriptor gets the lowest free number, which is ``descriptor`` unless something
    else (another thread, the garbage collector) freed a lower one meanwhile: those are filled
    with place-holder sockets first, closed again once the socket wanted is made.
    """
    fillers: list[socket.socket] = []
    try:
        while True:
            made = socket.socket()
            if made.fileno() == descriptor:
                return made
            if made.fileno() > descriptor:
                made.close()
                raise AssertionError(f"descriptor {descriptor} was taken by someone else")
            fillers.append(made)
    finally:
        for filler in fillers:
            filler.close()


async def connect_on_the_freed_descriptor(
    closed: socket.socket, descriptor: int, address: tuple[str, int]
) -> None:
    """What another call does in the same loop turn: a new socket, given the descriptor
    number ``closed`` freed, connects to ``address`` (or times out if the loop never sees it
    complete)."""
    assert closed.fileno() == -1
    following = socket_numbered(descriptor)
    try:
        following.setblocking(False)
        await within(asyncio.get_running_loop().sock_connect(following, address), CONNECT_BOUND_S)
    finally:
        following.close()


def test_a_cancellation_held_during_the_handoff_leaves_the_next_connect_watched() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        thread_may_end = threading.Event()
        connected: list[bool] = []
        with stalled_socket() as (sock, stalled), listening() as address:
            descriptor = sock.fileno()
            call = acompletion(loop, thread_may_end.wait, sock, stalled)

            async def caller() -> None:
                try:
                    await handed_off(call)
                except asyncio.CancelledError:
                    await connect_on_the_freed_descriptor(sock, descriptor, address)
                    connected.append(True)
                    raise

            task = asyncio.ensure_future(caller())
            await asyncio.sleep(0.05)  # the task waits for litellm's worker thread
            task.cancel()
            await asyncio.sleep(0.05)  # held back: the thread has not handed its coroutine back
            assert not task.done()
            # The call goes on to its connect, where the held cancellation reaches it.
            thread_may_end.set()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert connected == [True]

    arun(scenario())


def test_the_in_place_deadline_leaves_the_next_connect_watched() -> None:
    async def scenario() -> None:
        with stalled_socket() as (sock, stalled), listening() as address:
            descriptor = sock.fileno()
            with pytest.raises(TimeoutError):
                await bounded(connect_or_close(sock, stalled), 0.05)
            await connect_on_the_freed_descriptor(sock, descriptor, address)

    arun(scenario())


def test_a_cancellation_through_the_in_place_deadline_leaves_the_next_connect_watched() -> None:
    async def scenario() -> None:
        connected: list[bool] = []
        with stalled_socket() as (sock, stalled), listening() as address:
            descriptor = sock.fileno()

            async def caller() -> None:
                try:
                    await bounded(connect_or_close(sock, stalled), CONNECT_BOUND_S)
                except asyncio.CancelledError:
                    await connect_on_the_freed_descriptor(sock, descriptor, address)
                    connected.append(True)
                    raise

            task = asyncio.ensure_future(caller())
            await asyncio.sleep(0.05)  # connecting, to a port that never answers
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert connected == [True]

    arun(scenario())
