"""A budget store in one SQLite file, safe for many processes on one host.

Every operation is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front,
so two processes can never both read a line's spend and then both reserve against it. The
database runs in WAL mode with ``synchronous=NORMAL`` (a commit is durable against a process
crash, which is what reservations need; a power cut may lose the last few commits). Each thread
keeps its own connection, and checks before each transaction that the path still names the file
it opened: a file removed or replaced while in use is reopened (its tables created if need be),
so every process enforces budgets on the same file. A thread's connection is closed as the
thread ends (a short-lived thread, a pool that shrinks, one of the store's own threads that
idled), except the store's first, which it keeps open so that the file's WAL is not
checkpointed and deleted each time its last connection closes: the store holds the connections
of live threads and that one, and :meth:`close` closes them all.

Async methods first run the transaction on the event loop's own thread, on a connection that
never waits for a lock: uncontended, that is one short transaction (tens of microseconds, no
fsync) and saves a hop to a worker thread, which costs more than the transaction itself. When
another connection holds the write lock, the attempt is rolled back untouched and the same
transaction runs in one of the store's own worker threads, where SQLite's busy handler waits as
in the sync API. Either way it is one ``BEGIN IMMEDIATE`` transaction, so atomicity is
unchanged. The periodic sweep and the loop connection's checkpoints run there too.

The store's threads (:class:`~policyroute._blocking.BlockingPool`, at most 8 (``_WORKERS``),
started at the first transaction that needs one, daemons) are never the event loop's default
executor: that pool is small and the application shares it (litellm prepares every
``acompletion`` there), so a file held locked for a while would stall every async call, budget
or none, behind the waiting transactions. Transactions beyond the bound queue for a thread, and
the time one queued counts against ``timeout``, which so bounds its whole wait. A thread idle
for 30 s ends (and its connection closes), and so do the idle ones as an event loop that used
them ends (``asyncio.run`` returns with none left, as with its default executor); :meth:`close`
ends them all. The threads serve every event loop that uses the store, and a child made by
``fork()`` starts with none, and with the store's own lock free whichever thread held it. A
child forked while a thread of the parent was in a transaction on the file (waiting for
another process's lock, say) cannot use the file: SQLite's record of this process's locks on it
is a copy taken mid-transaction, and any connection of the child to the file would trust it.
Its operations, and those of any store the child makes on that file, raise
:class:`BudgetStoreError` saying so, at once.

Schema: ``budget_lines`` (one row per budget line: limit, spent, reserved, thresholds),
``spend_buckets`` (spend of rolling windows, by bucket) and ``open_reservations`` (one row per
reservation: id, lease expiry, and its amount per line as JSON). One row per reservation keeps a
reserve to one INSERT and a settle to one DELETE: each table a transaction touches is another
page written to the WAL at commit, the bulk of a transaction's cost. A file created with the
earlier layout (``reservations`` plus ``reservation_lines``) is migrated when a store opens it.
Run one version per file: a process already running the earlier code then fails with "no such
table: reservations" rather than write where this code does not look.

Example:
    >>> store = SQLiteStore("/tmp/budgets.sqlite3")  # doctest: +SKIP
    >>> result = store.reserve(lines, reservation_id="r1", lease_seconds=300, now=now)
    ... # doctest: +SKIP
    >>> result.ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

from policyroute import _sqlite_forked
from policyroute._blocking import BlockingPool
from policyroute._files import file_id
from policyroute._fork import reset_after_fork
from policyroute.budgets.stores import _sqlite_sql as sql
from policyroute.budgets.stores._sqlite_tx import (
    Busy,
    ThreadConnection,
    Transaction,
    store_error,
)
from policyroute.budgets.stores.base import (
    LineState,
    ReserveLine,
    ReserveResult,
    crossed_thresholds,
    expired_by_key,
    first_live_bucket,
    from_nano,
    reclaimed_crossings,
    to_nano,
)
from policyroute.errors import BudgetStoreError

__all__ = ["SQLiteStore"]

_log = logging.getLogger("policyroute.budgets")

_PAGE_SIZE = 1024
_SWEEP_EVERY = 60.0
# How often (in ``now`` seconds) a reserve looks for expired leases to reclaim. The look scans
# ``open_reservations``, which has no index on the lease expiry: an index is one more page written
# per commit, and measured ~12% of a reserve+settle pair. Reclaiming a little late loosens no
# limit: it moves the worst case from reserved to spent, and a reserve checks their sum.
_RECLAIM_EVERY = 1.0
_LOCK_RETRY_SECONDS = 30.0
# The event loop's connection does not checkpoint on commit (a checkpoint fsyncs, which must not
# block the loop); every this many of its commits, one checkpoint runs in a worker thread. About
# the page count that the worker connections' wal_autocheckpoint lets accumulate.
_LOOP_CHECKPOINT_EVERY = 1000

# The store's own worker threads, for the transactions that leave the event loop (the database
# was locked, the periodic sweep, a checkpoint): waits for one file's lock. A waiting thread
# sleeps in SQLite's busy handler and polls the lock; more of them would only take CPU from the
# lock's holder, and once it lets go, each transaction takes tens of microseconds.
_WORKERS = 8
# A transaction that queued longer than this for a worker thread waits only what is left of
# the store's timeout for the lock; shorter (a worker was free) keeps the connection's own
# and saves two PRAGMAs.
_QUEUED = 0.001
# Timeouts SQLite's busy handler cannot take in milliseconds (an int) wait as they are.
_MAX_WAIT = 2**31 / 1000

_T = TypeVar("_T")
# Set in a worker thread when the transaction queued for it: when its timeout runs out.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("_DEADLINE", default=None)
# Set while an async method runs its transaction on the loop thread's non-waiting connection.
_ON_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("_ON_LOOP", default=False)


# Thresholds and fired sets are the same few values call after call: parse and format once.
@functools.lru_cache(maxsize=256)
def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part)


@functools.lru_cache(maxsize=256)
def _text(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return ",".join(repr(v) for v in values)


@functools.lru_cache(maxsize=256)
def _needs(text: str) -> tuple[int, ...]:
    """A fired set: the spend (whole nano-dollars) of each fired threshold, read as integers
    (a float is exact only to 2^53). A fraction an earlier version recorded is dropped."""
    return tuple(int(part) for part in text.split(",") if part.isdigit())


# SQLite integers are 64-bit. A limit above this (about $4.6 billion, a budget meant as
# unlimited) is kept as this: no spend that a column can hold reaches either. Half the range,
# so that spend, reservations and an amount added to them stay within it.
_MAX_LIMIT_NANO = 2**62


# A line's limit and thresholds are the same call after call (the policy's): converted once.
@functools.lru_cache(maxsize=1024)
def _line_constants(limit: Decimal, thresholds: tuple[float, ...]) -> tuple[int, str]:
    return min(to_nano(limit, up=False), _MAX_LIMIT_NANO), _text(thresholds)


@functools.lru_cache(maxsize=1024)
def _limit_usd(limit_nano: int) -> Decimal:
    return from_nano(limit_nano)


@functools.lru_cache(maxsize=4096)
def _json_key(key: str) -> str:
    return json.dumps(key)


def _held_text(held: Sequence[tuple[str, int]]) -> str:
    """``json.dumps(held)``, compact, with each key's JSON spelling made once per key."""
    return "[" + ",".join(f"[{_json_key(key)},{amount}]" for key, amount in held) + "]"


def _create_schema(cur: sql._Cursor) -> None:
    """Create the tables if missing, and migrate the earlier layout (inside a transaction)."""
    for statement in sql.SCHEMA.split(";"):
        if statement.strip():
            cur.execute(statement)
    if cur.execute(sql.OLD_TABLES).fetchone()[0]:
        sql.migrate(cur)


class _Reads(Protocol):
    """What reading a store's lines takes: a store's transaction, or a plain connection."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> sqlite3.Cursor: ...


def _rolling_spend(
    cur: _Reads, key: str, now: float, bucket_seconds: float, span_seconds: float
) -> int:
    """Spend of a rolling-window line at ``now``: the sum of its live buckets (nano-USD)."""
    first = first_live_bucket(now, bucket_seconds, span_seconds)
    spent: int = cur.execute(sql.SUM_BUCKETS, (key, first)).fetchone()[0]
    return spent


def _row_state(cur: _Reads, row: Any, now: float) -> LineState:
    key, limit, spent, reserved, bucket_seconds, span_seconds = row
    if bucket_seconds is not None and span_seconds is not None:
        spent = _rolling_spend(cur, key, now, bucket_seconds, span_seconds)
    return LineState(key, from_nano(spent), from_nano(reserved), from_nano(limit))


def scan_lines(cur: _Reads, prefix: str, now: float) -> list[LineState]:
    """The live lines whose keys start with ``prefix``, read in the transaction ``cur`` is in
    (see :meth:`~policyroute.budgets.stores.base.BudgetStore.scan`); also what
    :mod:`~policyroute.budgets.stores.sqlite_readonly` reads."""
    # Keys are text; every key with the prefix sorts in [prefix, prefix + U+10FFFF).
    rows = cur.execute(sql.SCAN_LINES, (prefix, prefix + "\U0010ffff", now)).fetchall()
    expired = expired_by_key(
        (json.loads(lines) for (lines,) in cur.execute(sql.EXPIRED_LINES, (now,))), prefix
    )
    return [
        replace(_row_state(cur, row, now), expired=from_nano(expired.get(row[0], 0)))
        for row in rows
    ]


class SQLiteStore:
    """Budget state in a SQLite file shared by the processes of one host.

    Args:
        path: the database file (a leading ``~`` or ``~user`` is that home directory); its
            directory is created if missing.
        timeout: how long to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = _LOCK_RETRY_SECONDS):
        if sqlite3.sqlite_version_info < (3, 35, 0):
            raise BudgetStoreError(
                f"the SQLite budget store needs SQLite >= 3.35 (found {sqlite3.sqlite_version})"
            )
        # Made absolute once: each thread opens its own connection, and a relative path would
        # name another file (a second, empty budget) after the process changed directory.
        # "~" is the home directory, as the receipt sinks read their paths: a policy's
        # store.path goes through no shell. os.path's expanduser, like theirs: Path's raises
        # where a "~user" has no home, os.path's leaves the path as written.
        self.path = Path(os.path.expanduser(path)).absolute()
        # The text of the path, stat'ed before each transaction (a Path is converted each time).
        self._fspath = os.fspath(self.path)
        self.timeout = timeout
        # Each thread's ThreadConnection (``.held``) lives in these only: it dies, and closes
        # its connection, with the thread.
        self._local = threading.local()
        self._loop_local = threading.local()
        self._loop_commits = 0
        # The checkpoints under way (a loop holds its tasks only weakly).
        self._checkpoints: set[asyncio.Future[None]] = set()
        # The live threads' connections, for close(); weak, so that a thread that ended
        # leaves nothing here.
        self._all: weakref.WeakSet[ThreadConnection] = weakref.WeakSet()
        # One connection to the file stays open for the life of the store, even once its
        # thread ended: SQLite checkpoints and deletes the WAL as the last connection to a
        # file closes, so with calls each in a thread of its own every call would pay a
        # checkpoint (an fsync) and a new WAL, measured 1.7 -> 19 ms per thread.
        self._anchor: ThreadConnection | None = None
        self._all_lock = threading.Lock()
        reset_after_fork(self)  # see _after_fork_in_child
        self._last_sweep = float("-inf")
        self._last_reclaim = float("-inf")
        self._closed = False
        # Its threads start at the first transaction that leaves the event loop; close() ends
        # them.
        self._pool = BlockingPool("policyroute-budget-sqlite", _WORKERS)
        # The file's identity (device, inode), taken by the first connection.
        self._ident: tuple[int, int] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # mkdir reports a file in the directory's place as "File exists", which reads as
            # if nothing were wrong
            reason = (
                f"{exc.filename} is a file, not a directory"
                if isinstance(exc, FileExistsError)
                else f"{exc.strerror} ({exc.filename})"
            )
            raise BudgetStoreError(
                f"cannot create the directory of the budget store {self.path}: {reason}"
            ) from exc
        try:
            with self._lock_retry() as cur:
                _create_schema(cur)
        except BaseException as exc:
            # The caller gets no store to close (a connection left to the collector is a
            # ResourceWarning since Python 3.13).
            self.close()
            if isinstance(exc, sqlite3.Error):
                raise BudgetStoreError(f"cannot open the budget store {self.path}: {exc}") from exc
            raise

    # ------------------------------------------------------------------ connections

    def _conn(self, *, on_loop: bool = False) -> sqlite3.Connection:
        return self._connection(on_loop=on_loop).conn

    def _connection(self, *, on_loop: bool = False) -> ThreadConnection:
        """This thread's connection, with a cursor kept with it (one per transaction cost
        about as much as a statement)."""
        if self._closed:
            # Opening a fresh connection here would leak it past the owner's close().
            raise BudgetStoreError(f"budget store {self.path} is closed")
        local = self._loop_local if on_loop else self._local
        held: ThreadConnection | None = getattr(local, "held", None)
        if held is not None:
            if held.pid == os.getpid():
                # One stat per transaction (~1 us): a connection to a file that was removed or
                # replaced would go on enforcing budgets that no other process sees.
                if held.ident == file_id(self._fspath):
                    return held
                self._forget(local, held)
            else:
                # Inherited through fork(): this process opens its own. Dropping the inherited
                # one closes this process's copy (the parent's connection stays open), as the
                # child's close() did before; the other threads' go as fork() ends them here.
                del local.held
        refused = _sqlite_forked.refusal(file_id(self._fspath), f"budget store {self.path}")
        if refused is not None:
            raise BudgetStoreError(refused)
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE. The loop
        # thread's connection never waits for a lock (timeout 0): its caller falls back to a
        # worker thread instead of blocking the event loop.
        conn = sqlite3.connect(
            self.path,
            timeout=0.0 if on_loop else self.timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            # Only takes effect on a new, empty file. A commit writes each page it changed to
            # the WAL, checksummed; rows here are small, and 1 KiB pages measured a
            # reserve+settle pair ~15% faster than the default 4 KiB, with 50,000 budget lines
            # as with a few.
            conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints are where WAL mode fsyncs: fewer, larger ones measured ~25% faster.
            # The size limit truncates the WAL file back after each checkpoint.
            conn.execute(f"PRAGMA wal_autocheckpoint={0 if on_loop else 10000}")
            conn.execute("PRAGMA journal_size_limit=67108864")
            ident = file_id(self.path)
            if self._ident is not None and ident != self._ident:
                self._adopt(conn)
        except BaseException:
            # Not yet in ``_all``, so close() would miss it (a file that is not a database
            # fails here); left to the collector it is a ResourceWarning since Python 3.13.
            conn.close()
            raise
        self._ident = ident
        held = ThreadConnection(conn, os.getpid(), ident)
        with self._all_lock:
            if self._closed:
                # close() ran while this connection was being opened: it must not outlive it.
                held.close()
                raise BudgetStoreError(f"budget store {self.path} is closed")
            self._all.add(held)
            anchor = self._anchor
            if anchor is None or anchor.pid != held.pid or anchor.ident != ident:
                # The first, or one on a file replaced since or inherited through fork().
                self._anchor = held
        local.held = held
        return held

    def _adopt(self, conn: sqlite3.Connection) -> None:
        """Make sure a file that replaced the one this store opened has the tables."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            _create_schema(conn.cursor())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        _log.warning(
            "budget store %s was removed or replaced while open; budgets continue on the"
            " new file (what the old one held is gone with it)",
            self.path,
        )

    def _forget(self, local: threading.local, held: ThreadConnection) -> None:
        del local.held
        with self._all_lock:
            self._all.discard(held)
        held.close()

    def _lock_retry(self, *, read_only: bool = False) -> Transaction:
        return Transaction(
            self, read_only=read_only, on_loop=_ON_LOOP.get(), deadline=_DEADLINE.get()
        )

    async def _run(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Run the sync method ``fn`` here if the database is free, else in a worker thread."""
        # The flag is reset before anything is awaited: a settle may go on in another task
        # (``despite_cancellation``), whose context cannot reset a token made in this one.
        token = _ON_LOOP.set(True)
        try:
            result = fn(*args, **kwargs)
        except Busy:
            busy = True
        else:
            busy = False
        finally:
            _ON_LOOP.reset(token)
        if busy:
            return await self._in_worker(fn, *args, **kwargs)
        self._loop_commits += 1
        if self._loop_commits >= _LOOP_CHECKPOINT_EVERY:
            self._loop_commits = 0
            # Housekeeping, not part of the operation that committed: not awaited, so it
            # neither waits behind the threads queued for the lock nor turns a committed
            # reservation into an error the caller would take for a refusal.
            task = asyncio.ensure_future(self._in_worker(self._checkpoint_quietly))
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoint_done)
        return result

    async def _in_worker(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Run the sync method ``fn`` in one of the store's own worker threads.

        Never the event loop's default executor, which the application shares (litellm
        prepares each call there): while another process holds the file's write lock, each
        waiting transaction holds a thread for up to ``timeout``. The store's threads are
        :data:`_WORKERS` at most; further work queues for one, and the time it queued counts
        against its ``timeout``, which so bounds the whole wait as it does in the sync API.
        """
        if self._closed:
            raise BudgetStoreError(f"budget store {self.path} is closed")
        began = time.monotonic() if 0 < self.timeout < _MAX_WAIT else None
        return await self._pool.run(self._waiting, began, fn, *args, **kwargs)

    def _waiting(
        self, began: float | None, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> _T:
        """``fn(*args, **kwargs)``, its transactions waiting only what is left of ``timeout``
        since ``began``."""
        if began is not None and time.monotonic() - began > _QUEUED:
            _DEADLINE.set(began + self.timeout)  # in the worker's copy of the caller's context
        return fn(*args, **kwargs)

    def _checkpoint(self) -> None:
        held = self._connection()
        if not held.enter():
            raise BudgetStoreError(f"budget store {self.path} is closed")
        try:
            held.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise store_error(self, exc) from exc
        finally:
            held.leave()

    def _checkpoint_done(self, task: asyncio.Future[None]) -> None:
        self._checkpoints.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Only a store closed before the checkpoint's turn came (_in_worker refuses then).
            _log.debug("budget store WAL checkpoint not run: %s", task.exception())

    def _checkpoint_quietly(self) -> None:
        """:meth:`_checkpoint`, a failure logged: the WAL is checkpointed again later, by the
        next one or by a worker connection's own automatic checkpoint."""
        try:
            self._checkpoint()
        except BudgetStoreError as exc:
            if not self._closed:
                _log.warning("checkpointing the budget store's WAL failed: %s", exc)

    # ------------------------------------------------------------------ sync API

    def reserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.reserve`."""
        constants = [_line_constants(line.limit, tuple(line.thresholds)) for line in lines]
        # An amount above its line's limit is refused whatever it is: one nano-dollar over
        # decides the same and fits in a column.
        held = [
            (line.key, min(to_nano(line.amount), limit + 1))
            for line, (limit, _) in zip(lines, constants, strict=True)
        ]
        settled: list[LineState] = []
        with self._lock_retry() as cur:
            saved = self._housekeep(cur, now, settled) > 0
            if saved:
                # What was reclaimed stays charged (and its thresholds fired) even if this
                # reservation is refused: a refusal rolls back to here, not the transaction.
                cur.execute(sql.SAVEPOINT_LINES)
            for index, (line, (key, amount), (limit, thresholds)) in enumerate(
                zip(lines, held, constants, strict=True)
            ):
                row = cur.execute(
                    sql.RESERVE_KNOWN_LINE,
                    (limit, now, amount, thresholds, line.expires_at, key),
                ).fetchone()
                if row is None:
                    row = cur.execute(
                        sql.RESERVE_LINE,
                        (
                            key,
                            limit,
                            amount,
                            line.expires_at,
                            line.bucket_seconds,
                            line.span_seconds,
                            thresholds,
                            now,
                        ),
                    ).fetchone()
                spent, reserved = row
                reserved -= amount  # the totals before this reservation
                if line.bucket_seconds is not None and line.span_seconds is not None:
                    spent = _rolling_spend(cur, key, now, line.bucket_seconds, line.span_seconds)
                if spent + reserved + amount > limit:
                    refused = LineState(key, from_nano(spent), from_nano(reserved), line.limit)
                    # Either undoes the amounts added to earlier lines too.
                    if saved:
                        cur.execute(sql.ROLLBACK_LINES)
                    else:
                        cur.rollback = True
                    return ReserveResult(
                        ok=False,
                        refused=refused,
                        refused_index=index,
                        reclaimed=reclaimed_crossings(settled),
                    )
            cur.execute(
                sql.INSERT_RESERVATION, (reservation_id, now + lease_seconds, _held_text(held))
            )
        return ReserveResult(ok=True, reclaimed=reclaimed_crossings(settled))

    def settle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.settle`."""
        with self._lock_retry() as cur:
            return self._settle(cur, reservation_id, to_nano(actual), now)

    def release(self, reservation_id: str, *, now: float | None = None) -> None:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.release`."""
        with self._lock_retry() as cur:
            self._settle(cur, reservation_id, 0, time.time() if now is None else now)

    def renew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.renew`."""
        with self._lock_retry() as cur:
            args = (now + lease_seconds, reservation_id, now)
            return bool(cur.execute(sql.RENEW_RESERVATION, args).rowcount)

    def reclaim_expired(self, now: float) -> int:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.reclaim_expired`."""
        with self._lock_retry() as cur:
            return self._reclaim(cur, now)

    def state(self, key: str, *, now: float) -> LineState:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.state`."""
        with self._lock_retry(read_only=True) as cur:
            row = cur.execute(sql.SELECT_LINE, (key, now)).fetchone()
            if row is None:
                return LineState(key, Decimal(0), Decimal(0), Decimal(0))
            return _row_state(cur, row, now)

    def scan(self, prefix: str, *, now: float) -> list[LineState]:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.scan`."""
        with self._lock_retry(read_only=True) as cur:
            return scan_lines(cur, prefix, now)

    def close(self) -> None:
        """Close every connection this store opened (in any thread); later operations raise
        :class:`~policyroute.errors.BudgetStoreError`. A second call does nothing."""
        with self._all_lock:
            self._closed = True
            held, self._all = list(self._all), weakref.WeakSet()
            self._anchor = None
        self._pool.close()
        for each in held:
            each.close()
        self._local = threading.local()
        self._loop_local = threading.local()

    # ------------------------------------------------------------------ async API

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """Async twin of :meth:`reserve` (on the loop thread unless the database is locked)."""
        if now - self._last_sweep >= _SWEEP_EVERY:
            # The periodic sweep scans whole tables: keep it off the event loop.
            return await self._in_worker(
                self.reserve,
                lines,
                reservation_id=reservation_id,
                lease_seconds=lease_seconds,
                now=now,
            )
        return await self._run(
            self.reserve,
            lines,
            reservation_id=reservation_id,
            lease_seconds=lease_seconds,
            now=now,
        )

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """Async twin of :meth:`settle`."""
        return await self._run(self.settle, reservation_id, actual, now=now)

    async def arelease(self, reservation_id: str, *, now: float | None = None) -> None:
        """Async twin of :meth:`release`."""
        await self._run(self.release, reservation_id, now=now)

    async def arenew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """Async twin of :meth:`renew`."""
        return await self._run(self.renew, reservation_id, lease_seconds, now=now)

    async def areclaim_expired(self, now: float) -> int:
        """Async twin of :meth:`reclaim_expired`."""
        return await self._run(self.reclaim_expired, now)

    async def astate(self, key: str, *, now: float) -> LineState:
        """Async twin of :meth:`state`."""
        return await self._run(self.state, key, now=now)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    # ------------------------------------------------------------------ internals

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork(): it is never released here.
        self._all_lock = threading.Lock()
        # The connections that outlived the parent's threads here (the anchor): one a thread
        # was using is kept, and its file marked, rather than closed later (see
        # ThreadConnection).
        for held in list(self._all):
            if held.busy:
                held.close()

    def _settle(
        self, cur: Transaction, reservation_id: str, actual: int, now: float
    ) -> list[LineState]:
        taken = cur.execute(sql.TAKE_RESERVATION, (reservation_id,)).fetchone()
        if taken is None:
            return []
        states = []
        for key, amount in json.loads(taken[0]):
            row = cur.execute(sql.SETTLE_LINE, (amount, actual, actual, now, key)).fetchone()
            if row is None:
                continue
            limit, spent, reserved, bucket_seconds, span_seconds, thresholds, fired = row
            if bucket_seconds is not None and span_seconds is not None:
                if actual:
                    cur.execute(sql.ADD_BUCKET, (key, int(now // bucket_seconds), actual))
                spent = _rolling_spend(cur, key, now, bucket_seconds, span_seconds)
            crossed: tuple[float, ...] = ()
            if thresholds:
                old_fired = _needs(fired)
                crossed, new_fired = crossed_thresholds(
                    _floats(thresholds), old_fired, spent, limit, actual
                )
                if new_fired != old_fired:
                    cur.execute(sql.SET_FIRED, (_text(new_fired), key))
            states.append(
                LineState(key, from_nano(spent), from_nano(reserved), _limit_usd(limit), crossed)
            )
        return states

    def _reclaim(self, cur: Transaction, now: float, settled: list[LineState] | None = None) -> int:
        """Charge expired reservations their worst case; their line states go to ``settled``."""
        count = 0
        while True:
            expired = cur.execute(sql.EXPIRED_RESERVATIONS, (now,)).fetchall()
            for rid, lines in expired:
                worst = max((amount for _, amount in json.loads(lines)), default=0)
                # Charged at its worst case: the dead process may have made the call.
                states = self._settle(cur, rid, worst, now)
                if settled is not None:
                    settled.extend(states)
            count += len(expired)
            if len(expired) < 1000:
                return count

    def _housekeep(self, cur: Transaction, now: float, settled: list[LineState]) -> int:
        """Reclaim (at most once per ``_RECLAIM_EVERY``) and sweep; how many were reclaimed."""
        reclaimed = 0
        if not 0.0 <= now - self._last_reclaim < _RECLAIM_EVERY:
            reclaimed = self._reclaim(cur, now, settled)
            # Only a look that found nothing counts as done: should the transaction fail
            # after reclaiming, the next reserve must look again.
            if reclaimed == 0:
                self._last_reclaim = now
        if now - self._last_sweep >= _SWEEP_EVERY:
            self._last_sweep = now
            for statement in sql.SWEEP:
                cur.execute(statement, (now,) if "?" in statement else ())
        return reclaimed
