"""Retention the soak benchmark (bench/bench_soak.py) finds in modules owned elsewhere.

Each test states what should hold and is marked ``xfail(strict=True)`` until its owner fixes
the cause given in ``reason``: the fix turns it into an unexpected pass, which fails the run,
and the marker is then removed.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from policyroute.budgets.stores.sqlite import SQLiteStore

_PROC_FD = Path("/proc/self/fd")


@pytest.mark.skipif(not _PROC_FD.is_dir(), reason="counts descriptors in /proc/self/fd")
def test_threads_that_ended_leave_no_store_connection_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.sqlite3")
    try:
        store.state("total/%2A/day", now=time.time())
        before = len(os.listdir(_PROC_FD))
        for _ in range(10):
            thread = threading.Thread(
                target=store.state, args=("total/%2A/day",), kwargs={"now": time.time()}
            )
            thread.start()
            thread.join()
        gc.collect()
        assert len(os.listdir(_PROC_FD)) - before <= 2
    finally:
        store.close()
