"""Helpers for the executor tests: a small hand-built policy, a recording accounting, a sleep
recorder, a shared event loop, a way to run one call in each of the executor's modes, and a
loopback port that never completes a connection."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import os
import socket
import sys
import traceback
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
)
from policyroute.policy.model import (
    BackoffSpec,
    DefaultsSpec,
    ModelInfo,
    ModelSpec,
    Requirements,
    RetrySpec,
)
from policyroute.request import Request
from policyroute.routing.decision import Candidate, Decision, DeploymentStats

T = TypeVar("T")
FAST_RETRY = RetrySpec(attempts=2, backoff=BackoffSpec(initial=0.01, max=0.05), retry_after_max=5)


def candidate(alias: str, api_base: str, *, model: str | None = None, **params: Any) -> Candidate:
    """A candidate for ``openai/<alias>`` (or ``model``) served by the fake provider."""
    spec = ModelSpec(alias=alias, model=model or f"openai/{alias}", api_base=api_base)
    litellm_params = {"model": spec.model, "api_base": api_base, "api_key": "sk-test", **params}
    return Candidate(alias=alias, spec=spec, info=ModelInfo(), litellm_params=litellm_params)


@dataclass
class StubPolicy:
    """A compiled policy stand-in: one route to ``candidates``; ``groups`` for downgrades."""

    candidates: Sequence[Candidate]
    defaults: DefaultsSpec = field(default_factory=lambda: DefaultsSpec(retry=FAST_RETRY))
    params: Mapping[str, Any] = field(default_factory=dict)
    groups: Mapping[str, Sequence[Candidate]] = field(default_factory=dict)
    routed_with: list[tuple[Any, bool]] = field(default_factory=list)

    def route(
        self,
        request: Request,
        *,
        stats: DeploymentStats | None = None,
        token_counter: Any = None,
        trace: bool = True,
    ) -> Decision:
        self.routed_with.append((stats, trace))
        return Decision(
            route="default",
            candidates=tuple(self.candidates),
            params=self.params,
            budgets=(),
            requirements=Requirements(),
            trace=(),
        )

    def candidates_for(
        self,
        target: str,
        request: Request,
        *,
        stats: DeploymentStats | None = None,
        requirements: Requirements | None = None,
    ) -> Sequence[Candidate]:
        return self.groups[target]

    def route_params(self, name: str) -> Mapping[str, Any] | None:
        return None


class RecordingAccounting:
    """Records every admit / settle / finish; can refuse or downgrade on demand."""

    def __init__(self, *, downgrade: Mapping[str, str] | None = None, refuse: Any = None) -> None:
        self.admitted: list[AttemptInfo] = []
        self.settled: list[tuple[AttemptInfo, AttemptOutcome]] = []
        self.finished: list[CallOutcome] = []
        self.downgrade = dict(downgrade or {})
        self.refuse = refuse

    def admit(self, attempt: AttemptInfo) -> Admission:
        if self.refuse is not None:
            raise self.refuse
        self.admitted.append(attempt)
        target = self.downgrade.pop(attempt.candidate.alias, None)
        return Admission(params=attempt.params, handle=len(self.admitted), downgrade_to=target)

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        return self.admit(attempt)

    def settle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        self.settled.append((attempt, outcome))
        return Decimal("0.001") if outcome.provider_billed else Decimal(0)

    async def asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        return self.settle(attempt, admission, outcome)

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        self.finished.append(outcome)

    async def afinish(self, call: CallInfo, outcome: CallOutcome) -> None:
        self.finish(call, outcome)

    @property
    def statuses(self) -> list[str]:
        return [o.status for _, o in self.settled]


def ask(text: str = "hello there", **kwargs: Any) -> Request:
    return Request(messages=[{"role": "user", "content": text}], **kwargs)


class Sleeps(list[float]):
    """The waits the executor asked for, in order, without waiting: pass the object as
    ``sleep`` and its ``asleep`` as ``asleep``."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


_loop: asyncio.AbstractEventLoop | None = None


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on one event loop shared by the test session.

    litellm caches HTTP sessions and a logging worker per event loop; a fresh loop per test
    would leave the previous ones unclosed. The loop is also made the thread's current loop:
    litellm's HTTP handlers close themselves on garbage collection through
    ``asyncio.get_event_loop()``, which would otherwise create a loop nobody closes.
    """
    loop = open_shared_loop()
    try:
        return loop.run_until_complete(coro)
    except BaseException as exc:
        if "Timeout" in str(exc) and type(exc).__name__ == "Failed":
            # pytest-timeout's: say what each task of the loop was waiting for.
            print_task_stacks(loop)
        raise


def print_task_stacks(loop: asyncio.AbstractEventLoop) -> None:
    """Print every unfinished task of ``loop`` with where it is suspended, down the chain of
    coroutines and generators each awaits (to stderr, which a failing test's report shows;
    ``Task.print_stack`` shows a suspended task's outermost frame only)."""
    for task in asyncio.all_tasks(loop):
        print(f"--- {task!r}", file=sys.stderr)
        frames = traceback.StackSummary.extract((f, f.f_lineno) for f in awaited_frames(task))
        print("".join(frames.format()), file=sys.stderr, end="")


def awaited_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """The frames of ``task``'s coroutine and of what it awaits, outermost first."""
    frames: list[FrameType] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 200:
        for frame_name, next_name in _AWAITING:
            if hasattr(awaited, frame_name):
                frame = getattr(awaited, frame_name)
                if frame is not None:
                    frames.append(frame)
                awaited = getattr(awaited, next_name)
                break
        else:
            # An async generator's step (``__anext__``, ``aclose``) names no frame: the
            # generator it steps is among what it refers to. Anything else (a future) ends it.
            stepped = [r for r in gc.get_referents(awaited) if inspect.isasyncgen(r)]
            awaited = stepped[0] if stepped else None
    return frames


# Where a coroutine, an async generator's step and a generator keep their frame and what they
# await.
_AWAITING = (("cr_frame", "cr_await"), ("ag_frame", "ag_await"), ("gi_frame", "gi_yieldfrom"))


def open_shared_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, created and made current on first use.

    Being current also matters to sync tests: litellm's sync path asks
    ``asyncio.get_event_loop()``, which otherwise creates a loop that is never closed.
    """
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def close_shared_loop() -> None:
    """Close the shared loop (end of the session)."""
    global _loop
    if _loop is not None:
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _loop.close()
        asyncio.set_event_loop(None)
        _loop = None


def run_in_mode(ex: Any, request: Request, mode: str) -> Any:
    """Run ``request`` through ``ex`` in ``mode``: "sync" and "async" return the call's result,
    "stream" the list of stream events."""
    if mode == "sync":
        return ex.complete(request)
    if mode == "async":
        return arun(ex.acomplete(request))
    return list(ex.stream(request))


def stream_in_mode(ex: Any, request: Request, mode: str) -> list[Any]:
    """Stream ``request`` through ``ex``, with ``stream`` when ``mode`` is "sync" and
    ``astream`` otherwise: the list of stream events."""
    if mode == "sync":
        return list(ex.stream(request))

    async def collect() -> list[Any]:
        return [event async for event in ex.astream(request)]

    return arun(collect())


@contextlib.contextmanager
def stalled_port() -> Iterator[int]:
    """A loopback port whose listener's accept queue is full: a new connection's handshake is
    never answered, so connecting times out (on loopback, without any network)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            fillers.append(filler)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
        yield int(listener.getsockname()[1])
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def receipts_in(folder: Path) -> list[dict[str, Any]]:
    """The receipts of ``folder/receipts.jsonl`` in order (none if it does not exist)."""
    path = folder / "receipts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
