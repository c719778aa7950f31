"""A SQLite budget store whose directory cannot be made says why: a file where its directory
should be is named as such (mkdir's own "File exists" read as if nothing were wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError


def test_a_file_in_the_directory_s_place_is_named_as_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory", encoding="utf-8")

    with pytest.raises(BudgetStoreError) as refused:
        SQLiteStore(blocker / "budgets.sqlite3")

    assert str(refused.value) == (
        f"cannot create the directory of the budget store {blocker / 'budgets.sqlite3'}:"
        f" {blocker} is a file, not a directory"
    )


def test_a_file_further_up_keeps_the_system_s_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory", encoding="utf-8")

    with pytest.raises(BudgetStoreError) as refused:
        SQLiteStore(blocker / "deeper" / "budgets.sqlite3")

    assert f"Not a directory ({blocker / 'deeper'})" in str(refused.value)
