"""``store.lock_timeout``: how long the SQLite store waits for another connection's lock.

A policy sets it as a duration; the schema refuses values that are not one, and the store the
policy opens waits that long (a locked file past it fails naming the file and the wait).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.budgets.stores import SQLiteStore, open_store
from policyroute.policy.loader import load_policy_text
from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: t\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
ROUTES = "routes: [{name: d, to: m}]\n"


def _diagnostics(store: str) -> list[tuple[str, str]]:
    result = validate_text(HEAD + ROUTES + f"store: {store}\n", environ={})
    return [(d.code, d.path) for d in result.diagnostics]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("-1", "PR013"),
        ("forever", "PR013"),
        ("3651d", "PR013"),
        ("'10 s'", "PR013"),
        ("[1]", "PR012"),
    ],
)
def test_a_lock_timeout_that_is_no_duration_is_refused(value: str, code: str) -> None:
    # PR013: a value out of range or of the wrong form; PR012: of the wrong type
    assert _diagnostics(f"{{backend: sqlite, lock_timeout: {value}}}") == [
        (code, "store.lock_timeout")
    ]


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("250ms", 0.25), ("2m", 120.0)])
def test_the_store_a_policy_opens_waits_its_lock_timeout(
    tmp_path: Path, value: str, seconds: float
) -> None:
    db = tmp_path / "b.sqlite3"
    policy = load_policy_text(
        HEAD + ROUTES + f"store: {{backend: sqlite, path: '{db}', lock_timeout: {value}}}\n"
    )
    assert policy.spec.store.lock_timeout == seconds
    store = open_store(policy.spec.store)
    try:
        assert isinstance(store, SQLiteStore)
        assert store.timeout == seconds
    finally:
        store.close()


def test_the_lock_timeout_defaults_to_thirty_seconds() -> None:
    assert load_policy_text(HEAD + ROUTES).spec.store.lock_timeout == 30.0
