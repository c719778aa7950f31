"""The deadline of a sync attempt on its own: which responses it cuts, what it keeps alive,
and that the one watcher thread does not pile up the deadlines of calls that ended in time."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import httpx
import pytest

from policyroute.execution import sync_deadline
from policyroute.execution.unary_deadline import UnaryDeadline, watch_responses

pytestmark = pytest.mark.timeout(10)


class _Body(httpx.SyncByteStream):
    """A body that is never read here; it records being closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b""

    def close(self) -> None:
        self.closed.set()


def _response() -> tuple[httpx.Response, _Body]:
    body = _Body()
    return httpx.Response(200, stream=body), body


def _passed() -> UnaryDeadline:
    return UnaryDeadline(1.0, time.monotonic())


def _far() -> UnaryDeadline:
    return UnaryDeadline(600.0, time.monotonic() + 600)


def test_a_response_still_open_at_the_deadline_is_cut() -> None:
    response, body = _response()
    with _passed() as deadline:
        deadline.watch(response)
        assert body.closed.wait(5)
    assert (deadline.cut, response.is_closed) == (True, True)


def test_a_response_read_to_its_end_is_not_cut() -> None:
    response, body = _response()
    response.read()  # closes it, as httpx does once the body is in
    body.closed.clear()
    with _passed() as deadline:
        deadline.watch(response)
        while not deadline._passed:  # the watcher has looked at it
            time.sleep(0.01)
    assert (deadline.cut, body.closed.is_set()) == (False, False)


def test_a_response_that_arrives_after_the_deadline_passed_is_cut_at_once() -> None:
    first, _ = _response()
    second, second_body = _response()
    with _passed() as deadline:
        deadline.watch(first)
        while not deadline._passed:
            time.sleep(0.01)
        deadline.watch(second)
        assert second_body.closed.is_set()
    assert deadline.cut


def test_an_ended_deadline_cuts_nothing() -> None:
    response, body = _response()
    deadline = UnaryDeadline(0.0, time.monotonic() + 0.05)
    with deadline:
        deadline.watch(response)
    deadline.expire()  # as the watcher would, too late
    assert (deadline.cut, body.closed.is_set()) == (False, False)


def test_the_deadline_keeps_no_response_alive() -> None:
    response, _ = _response()
    gone = weakref.ref(response)
    with _far() as deadline:
        deadline.watch(response)
        del response
        gc.collect()
        assert gone() is None


def test_responses_are_watched_only_inside_a_deadline() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    holder = type("Handler", (), {"client": client})()
    with client:
        watch_responses(holder)
        watch_responses(holder)  # once
        hooks = client.event_hooks["response"]
        assert len(hooks) == 1
        hooks[0](_response()[0])  # outside a deadline: nothing happens
        response, body = _response()
        with _passed() as deadline:
            hooks[0](response)
            assert body.closed.wait(5)
        assert deadline.cut


def test_deadlines_that_ended_in_time_do_not_pile_up_in_the_watcher() -> None:
    watcher = sync_deadline._watcher
    before = len(watcher._heap)
    responses = [_response()[0] for _ in range(3 * watcher._COMPACT_AT)]
    for response in responses:
        with _far() as deadline:
            deadline.watch(response)
    assert len(watcher._heap) - before < 2 * watcher._COMPACT_AT


@pytest.mark.parametrize("timeout", [None, "600", True, object()])
def test_no_deadline_without_a_number_of_seconds(timeout: object) -> None:
    assert UnaryDeadline.after(timeout, grace=1.0) is None


def test_a_deadline_at_the_edge_of_the_clock_leaves_the_watcher_running() -> None:
    # A timeout of ~9.3e9 s: one wait for it would overflow the lock's timeout and end the
    # watcher thread with an OverflowError. It waits in steps instead, and expires the others.
    far_response, far_body = _response()
    with UnaryDeadline(9.3e9, time.monotonic() + 9.3e9) as far:
        far.watch(far_response)
        time.sleep(0.05)  # the watcher is waiting for it
        response, body = _response()
        with _passed() as deadline:
            deadline.watch(response)
            assert body.closed.wait(5)
    assert deadline.cut
    assert not far_body.closed.is_set()
