"""``policyroute budget status`` reads the SQLite file ``store.path`` names without writing to
it, even when it may: a budget store of this version is read as it is, while another process
holds its write lock, and the file is left as it was; a file that is no budget store (another
application's SQLite database, or no SQLite database at all) is refused with an error naming
it, and nothing is added to it.

Status opened a writable file through the store itself, which creates its tables in whatever
file ``store.path`` names and takes the write lock to do so: it waited behind a busy writer
(then failed), and turned another application's database, or an empty file, into a budget
store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from budgets.test_sqlite_migration import old_file
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.budgets.windows import window_for
from policyroute.cli import main
from policyroute.policy.loader import load_policy

POLICY = """\
policyroute: 1
name: status-store-files
models:
  m:
    model: custom/flat-model
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
budgets:
  - {{name: daily, limit_usd: 5, window: day}}
routes:
  - {{name: default, to: m}}
store: {{backend: sqlite, path: {store}, lock_timeout: 2s}}
"""


def _policy(tmp_path: Path, store: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(store=store), encoding="utf-8")
    return path


def _status(policy: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["budget", "status", str(policy), "--format", "json"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".yaml"}


@pytest.fixture
def charged_store(tmp_path: Path) -> Path:
    """A budget store of this version, $1.25 reserved on ``daily`` today, closed."""
    store = tmp_path / "budgets.sqlite3"
    policy = load_policy(_policy(tmp_path, store))
    (budget,) = policy.spec.budgets
    now = time.time()
    window = window_for(budget.window, now)
    key = f"daily/*/{window.key}"
    opened = SQLiteStore(store)
    try:
        line = ReserveLine(key, Decimal(5), Decimal("1.25"), now + 86400)
        assert opened.reserve([line], reservation_id="r1", lease_seconds=3600, now=now).ok
    finally:
        opened.close()
    return store


def test_a_current_store_is_read_while_another_process_holds_its_write_lock(
    tmp_path: Path, charged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, charged_store)
    writer = sqlite3.connect(charged_store, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a writer's transaction under way

        code, out, err = _status(policy, capsys)

        writer.execute("COMMIT")
    finally:
        writer.close()
    assert (code, err) == (0, "")
    (row,) = json.loads(out)
    assert (row["reserved"], row["state"]) == ("1.25", "charged")


def test_a_current_store_is_left_as_it_was(
    tmp_path: Path, charged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, charged_store)
    before = _files(tmp_path)

    code, out, _ = _status(policy, capsys)

    assert code == 0
    assert json.loads(out)[0]["reserved"] == "1.25"
    # no write-ahead log or shared-memory file left beside it either
    assert _files(tmp_path) == before


def test_an_empty_file_reads_as_a_store_never_used_and_stays_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "budgets.sqlite3"
    store.touch()

    code, out, _ = _status(_policy(tmp_path, store), capsys)

    assert code == 0
    (row,) = json.loads(out)
    assert (row["spent"], row["reserved"], row["state"]) == ("0", "0", "idle")
    assert _files(tmp_path) == {"budgets.sqlite3": b""}


def test_another_applications_sqlite_database_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "app.db"
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = _files(tmp_path)

    code, out, err = _status(_policy(tmp_path, store), capsys)

    assert code == 1
    assert json.loads(out)["error"]["type"] == "BudgetStoreError"
    assert f"{store} is not a policyroute budget store" in err
    assert "other tables ('users')" in err
    assert "store.path" in err
    assert _files(tmp_path) == before
    assert _tables(store) == {"users"}


def test_a_file_that_is_not_sqlite_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "budgets.sqlite3"
    store.write_text("these are not the budgets you are looking for\n" * 100, "utf-8")
    before = _files(tmp_path)

    code, _, err = _status(_policy(tmp_path, store), capsys)

    assert code == 1
    assert f"{store} is not a policyroute budget store: it is not a SQLite database" in err
    assert _files(tmp_path) == before


def test_the_json_error_names_the_file_and_its_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "app.db"
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE events (at REAL)")
    conn.close()

    code, out, _ = _status(_policy(tmp_path, store), capsys)

    assert code == 1
    error = json.loads(out)["error"]
    assert error["type"] == "BudgetStoreError"
    assert error["message"].startswith(f"{store} is not a policyroute budget store")


def test_a_store_of_the_earlier_layout_is_still_migrated_when_it_may_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "old.sqlite3"
    old_file(store)

    code, out, _ = _status(_policy(tmp_path, store), capsys)

    assert code == 0
    assert json.loads(out)[0]["state"] == "idle"
    tables = _tables(store)
    assert {"open_reservations", "budget_lines"} <= tables
    assert "reservation_lines" not in tables


@pytest.mark.parametrize(
    ("kind", "described"),
    [("folder", "a directory"), ("pipe", "a pipe"), ("device", "a device")],
)
def test_a_store_path_that_is_no_file_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, described: str
) -> None:
    # A folder read as "disk I/O error", a named pipe hung the status for ever waiting for a
    # writer, and a device (/dev/null) read as a store with no spend, with status 0.
    if kind == "folder":
        store = tmp_path / "budgets.sqlite3"
        store.mkdir()
    elif kind == "pipe":
        store = tmp_path / "budgets.sqlite3"
        os.mkfifo(store)
    else:
        store = Path(os.devnull)

    code, out, err = _status(_policy(tmp_path, store), capsys)

    assert code == 1
    message = (
        f"budget store {store} is {described}, not a SQLite file: check the policy's store.path"
    )
    assert json.loads(out)["error"] == {"type": "BudgetStoreError", "message": message}
    assert message in err
