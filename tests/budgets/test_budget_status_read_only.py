"""``policyroute budget status`` by a user who may read the SQLite budget store but not write
it (a monitoring account, an operator other than the service's user): the spend is shown, read
read-only, and the file is left as it was. Opening the store for writing failed with "attempt
to write a readonly database"."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from budgets.helpers import attempt, fixed_counter
from policyroute.budgets import BudgetGuard
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.policy.loader import load_policy

SETPRIV = shutil.which("setpriv")


def _runs_as_nobody() -> bool:
    """Whether this interpreter runs as ``nobody`` (root, setpriv, and an interpreter whose
    files and shared library another user may read: not one built under root's home)."""
    if os.geteuid() != 0 or SETPRIV is None:
        return False
    entry = pwd.getpwnam("nobody")
    ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    probe = [SETPRIV, *ids, sys.executable, "-c", "import policyroute"]
    done = subprocess.run(probe, capture_output=True, timeout=60, check=False, cwd="/")
    return done.returncode == 0


as_another_user = pytest.mark.skipif(
    not _runs_as_nobody(),
    reason="runs the CLI as another user (needs root, and an interpreter that user can run)",
)

POLICY = """\
policyroute: 1
name: read-only-status
models:
  m:
    model: custom/flat-model
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
budgets:
  - {{name: daily, per: metadata.user, limit_usd: 5, window: day}}
  - {{name: hourly, limit_usd: 1, window: 1h}}
routes:
  - {{name: default, to: m}}
store: {{backend: sqlite, path: {store}}}
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user may read (pytest's own are its owner's alone)."""
    path = Path(tempfile.mkdtemp(prefix="policyroute-status-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _status_as(user: str | None, policy: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "policyroute", "budget", "status", str(policy)]
    if user is not None:
        assert SETPRIV is not None
        entry = pwd.getpwnam(user)
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
        command = [SETPRIV, *ids, *command]
    return subprocess.run(
        [*command, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def _spend(policy: Path, users: list[str]) -> SQLiteStore:
    compiled = load_policy(policy)
    budgets = list(compiled.spec.budgets)
    store = SQLiteStore(compiled.spec.store.path)
    guard = BudgetGuard(compiled, store, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    for user in users:
        charge = attempt(budgets, params={"max_tokens": 50}, metadata={"user": user})
        guard.settle(guard.admit(charge), Decimal("0.25"))
    return store


@as_another_user
@pytest.mark.parametrize("writer", ["closed", "still open"])
def test_status_reads_a_store_it_may_not_write(shared_dir: Path, writer: str) -> None:
    db = shared_dir / "budgets.sqlite3"
    policy = shared_dir / "policy.yaml"
    policy.write_text(POLICY.format(store=db), encoding="utf-8")
    policy.chmod(0o644)
    store = _spend(policy, ["u1", "u2", "u1"])
    try:
        if writer == "closed":
            store.close()
        files = {p.name: p.read_bytes() for p in shared_dir.iterdir()}
        for name in files:
            (shared_dir / name).chmod(0o644)  # readable by all, writable by root alone

        as_owner = _status_as(None, policy)
        as_reader = _status_as("nobody", policy)
    finally:
        store.close()

    assert as_owner.returncode == 0, as_owner.stderr
    assert as_reader.returncode == 0, as_reader.stderr
    rows = json.loads(as_reader.stdout)
    assert rows == json.loads(as_owner.stdout)
    spent = {(row["budget"], row["scope"]): row["spent"] for row in rows}
    assert spent == {("daily", "u1"): "0.5", ("daily", "u2"): "0.25", ("hourly", "*"): "0.75"}
    if writer == "closed":
        # the reader changed nothing and made no file beside the store
        assert {p.name: p.read_bytes() for p in shared_dir.iterdir()} == files


def test_the_reader_refuses_a_store_of_the_earlier_layout(tmp_path: Path) -> None:
    import sqlite3

    from policyroute.budgets.stores.sqlite_readonly import ReadOnlySQLiteLines
    from policyroute.errors import BudgetStoreError

    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE reservation_lines (reservation_id TEXT, key TEXT)")
    conn.close()

    with pytest.raises(BudgetStoreError, match="layout of an earlier policyroute version"):
        ReadOnlySQLiteLines(db, timeout=1.0)


def test_the_reader_finds_no_lines_in_a_file_without_budget_tables(tmp_path: Path) -> None:
    import sqlite3

    from policyroute.budgets.stores.sqlite_readonly import ReadOnlySQLiteLines

    db = tmp_path / "other.sqlite3"
    sqlite3.connect(db).close()
    before = db.read_bytes()

    lines = ReadOnlySQLiteLines(db, timeout=1.0)
    try:
        assert lines.scan("daily/", now=0.0) == []
    finally:
        lines.close()
    assert db.read_bytes() == before
