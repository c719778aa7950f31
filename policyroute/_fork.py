"""Objects that start afresh in a child process made by ``fork()``.

A pre-forking server (gunicorn ``--preload``, Celery's prefork pool, ``multiprocessing`` with
the ``fork`` start method) may fork while one of its threads is inside a receipt sink's
``write``, a budget store's transaction or a worker pool's bookkeeping. The child gets a copy
of the object with its lock held by a thread that does not exist there, so its first use would
wait forever; and with the parent's open file or database connection, which SQLite forbids
using in a child (https://sqlite.org/howtocorrupt.html, section 2.6).

Each such object registers here when it is made (the receipt sinks, the SQLite budget store,
the worker pools of :mod:`policyroute._blocking`, the receipts kept unwritten, the cache of
prompt token counts); right after a fork, in the child (still one thread), each gets a fresh
lock and forgets what it had open, so that its next use opens its own.

Example:
    >>> class Sink:
    ...     def __init__(self) -> None:
    ...         self._lock = threading.Lock()
    ...         reset_after_fork(self)
    ...
    ...     def _after_fork_in_child(self) -> None:
    ...         self._lock = threading.Lock()
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import Protocol

__all__ = ["ForkAware", "ForkSafeLock", "keep_inherited", "reset_after_fork"]


class ForkAware(Protocol):
    """An object that can start afresh in a forked child."""

    def _after_fork_in_child(self) -> None:
        """Replace the lock, drop what was open; called in the child, single-threaded."""


_OBJECTS: weakref.WeakSet[ForkAware] = weakref.WeakSet()

# Objects the parent had open when the child was forked. Kept, never closed, in the child:
# closing a SQLite connection whose mutex a parent's thread held at fork() would wait on it
# forever, and the parent still uses the file they refer to.
_INHERITED: list[object] = []


def reset_after_fork(obj: ForkAware) -> None:
    """Have ``obj._after_fork_in_child()`` called in every child forked from now on."""
    _OBJECTS.add(obj)


def keep_inherited(handle: object) -> None:
    """Keep ``handle`` (the parent's, copied by fork) alive and untouched in this child."""
    _INHERITED.append(handle)


class ForkSafeLock:
    """A lock (``with lock: ...``) that a child made by ``fork()`` gets free, whichever thread
    held it, for an object that cannot register itself (one that is not hashable).

    Example:
        >>> lock = ForkSafeLock()
        >>> with lock:
        ...     pass
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


def _after_fork_in_child() -> None:
    for obj in list(_OBJECTS):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_after_fork_in_child)
