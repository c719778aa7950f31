"""A SQLite file write-locked by another connection, an event loop whose default executor is
small, and a call that needs no budget: the set-up of the tests that check that policyroute's
waits for a locked database (budget store, receipt sink) leave the application's other async
work alone (imported by the receipt tests too, as ``budgets.locked_files``)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import policyroute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider

os.environ.setdefault("LOCKED_FILES_KEY", "sk-test")

# Let go of the lock after this long whatever happens, so that a test whose waits do starve the
# loop's executor fails on its assertions instead of hanging (far below pytest's timeout).
BACKSTOP_S = 20.0

NO_BUDGET_POLICY = """
policyroute: 1
name: no-budget
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{LOCKED_FILES_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
defaults: {{max_tokens: 16}}
"""


class WriteLock:
    """Another connection holding ``path``'s write lock (``BEGIN IMMEDIATE``) until
    :meth:`release`, or until :data:`BACKSTOP_S` passes; ``backstopped`` tells which."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("BEGIN IMMEDIATE")
        self._released = threading.Lock()
        self._done = False
        self.backstopped = False
        self._timer = threading.Timer(BACKSTOP_S, self._backstop)
        self._timer.daemon = True
        self._timer.start()

    def _backstop(self) -> None:
        if self._let_go():
            self.backstopped = True

    def _let_go(self) -> bool:
        with self._released:
            if self._done:
                return False
            self._done = True
            self._conn.execute("ROLLBACK")
            self._conn.close()
            return True

    @property
    def held(self) -> bool:
        with self._released:
            return not self._done

    def release(self) -> None:
        self._timer.cancel()
        self._let_go()


@contextmanager
def write_locked(path: Path) -> Iterator[WriteLock]:
    lock = WriteLock(path)
    try:
        yield lock
    finally:
        lock.release()


@contextmanager
def small_default_executor(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The loop's default executor limited to two threads, as on a small host."""
    pool = ThreadPoolExecutor(2, thread_name_prefix="default-executor")
    loop.set_default_executor(pool)
    try:
        yield
    finally:
        pool.shutdown(wait=True)


async def other_async_work(fp: FakeProvider) -> None:
    """What an application does meanwhile: a worker-thread job and a call with no budget."""
    await asyncio.to_thread(lambda: None)
    policy = load_policy_text(NO_BUDGET_POLICY.format(base=fp.openai_base))
    response = await policyroute.acompletion(
        policy=policy, messages=[{"role": "user", "content": "hello"}]
    )
    assert response.choices[0].message.content == "hi"
