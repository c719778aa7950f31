"""Budget store throughput: reserve+settle pairs per second.

Memory is measured in one process; SQLite with 4 processes on one file; Redis with 4 processes
(each its own connection). Redis is skipped unless ``--redis-url`` is given or ``redis-server``
is on PATH (then a throwaway server is started on a free port).

    python bench/bench_budgets.py [--pairs 4000] [--processes 4] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute.budgets.stores.base import BudgetStore, ReserveLine


def open_store(backend: str, location: str | None, prefix: str) -> BudgetStore:
    if backend == "memory":
        from policyroute.budgets.stores.memory import MemoryStore

        return MemoryStore()
    if backend == "sqlite":
        from policyroute.budgets.stores.sqlite import SQLiteStore

        return SQLiteStore(location or "")
    from policyroute.budgets.stores.redis import RedisStore

    return RedisStore(location or "", prefix=prefix)


def pairs(store: BudgetStore, count: int, worker: int) -> None:
    # Each worker charges its own user line and a shared team line: two lines per reservation,
    # as a per-user budget plus a global one would.
    lines = [
        ReserveLine(f"users/u{worker}/day:x", Decimal(10**6), Decimal("0.001"), time.time() + 3600),
        ReserveLine("team/*/day:x", Decimal(10**6), Decimal("0.001"), time.time() + 3600),
    ]
    for _ in range(count):
        rid = uuid.uuid4().hex
        now = time.time()
        if not store.reserve(lines, reservation_id=rid, lease_seconds=300, now=now).ok:
            raise RuntimeError("unexpected refusal")
        store.settle(rid, Decimal("0.0007"), now=now)


def worker(
    backend: str, location: str | None, prefix: str, count: int, i: int, start: Any, out: Any
) -> None:
    store = open_store(backend, location, prefix)
    pairs(store, 50, i)  # warm up connections and statement caches
    start.wait()
    t0 = time.perf_counter()
    pairs(store, count, i)
    out.put((t0, time.perf_counter()))
    store.close()


def measure(backend: str, location: str | None, processes: int, count: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    if processes == 1:
        store = open_store(backend, location, prefix)
        pairs(store, 50, 0)
        t0 = time.perf_counter()
        pairs(store, count, 0)
        elapsed = time.perf_counter() - t0
        store.close()
        return count / elapsed
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(backend, location, prefix, count, i, start, out))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    spans = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(end for _, end in spans) - min(begin for begin, _ in spans)
    return processes * count / elapsed


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            workdir,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000, help="pairs per process")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("memory", 1, measure("memory", None, 1, args.pairs * args.processes)))
        path = str(Path(tmp) / "budgets.sqlite3")
        open_store("sqlite", path, "").close()  # create the schema before the race
        rows.append(("sqlite", args.processes, measure("sqlite", path, args.processes, args.pairs)))
        server = None
        url = args.redis_url
        if url is None:
            server = start_redis(tmp)
            url = server[1] if server else None
        try:
            if url is not None:
                rows.append(
                    ("redis", args.processes, measure("redis", url, args.processes, args.pairs))
                )
        finally:
            if server is not None:
                server[0].kill()
                server[0].wait()
    print(f"{'store':<8} {'processes':>9} {'pairs/s':>10}")
    for name, procs, rate in rows:
        print(f"{name:<8} {procs:>9} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
