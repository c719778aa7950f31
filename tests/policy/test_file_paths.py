"""A receipts.path or store.path that names a directory is refused by `policyroute validate`
(PR138), at the value, with a file to write instead; and store.path reads a leading ``~`` as
the home directory, like receipts.path does."""

from __future__ import annotations

import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.accounting_.building import store_for
from policyroute.budgets.stores.base import ReserveLine
from policyroute.cli import main
from policyroute.errors import PolicyValidationError
from policyroute.policy.filepaths import directory_reason
from policyroute.policy.loader import load_policy_text

HEAD = (
    "policyroute: 1\nname: paths\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    return code, report["files"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("section", "suggested"),
    [
        ("receipts: {sink: jsonl, path: out/}", "out/{date}.jsonl"),
        ("receipts: {path: 'out/{date}/'}", "out/{date}/{date}.jsonl"),
        ("receipts: {sink: sqlite, path: out/}", "out/receipts.sqlite3"),
        ("receipts: {sink: sqlite, path: '~'}", "~/receipts.sqlite3"),
        ("store: {path: state/}", "state/budgets.sqlite3"),
        ("store: {backend: sqlite, path: '~/'}", "~/budgets.sqlite3"),
        ("store: {path: state/..}", "state/../budgets.sqlite3"),
        ("store: {path: .}", "./budgets.sqlite3"),
    ],
)
def test_a_path_naming_a_directory_is_an_error_with_a_file_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, suggested: str
) -> None:
    text = HEAD + section + "\n"

    code, found = _validate(tmp_path, capsys, text)

    (error,) = found
    key = section.split(":", 1)[0]
    assert code == 1
    assert (error["code"], error["severity"]) == ("PR138", "error")
    assert (error["path"], error["line"]) == (f"{key}.path", 5)
    assert error["column"] == text.splitlines()[4].index("path: ") + len("path: ") + 1
    assert "names a directory" in error["message"]
    assert error["hint"] == f"name a file, e.g. {suggested}"


@pytest.mark.parametrize(
    "section",
    [
        "receipts: {sink: jsonl, path: 'out/{date}.jsonl'}",
        "receipts: {sink: sqlite, path: '~/receipts.sqlite3'}",
        "receipts: {path: out/.hidden}",
        "receipts: {path: out/..jsonl}",
        "receipts: {sink: none, path: out/}",
        "store: {path: '~/state/budgets.sqlite3'}",
    ],
)
def test_a_file_path_or_one_nothing_reads_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str
) -> None:
    assert _validate(tmp_path, capsys, HEAD + section + "\n") == (0, [])


def test_the_path_of_a_store_that_does_not_read_it_is_only_pr133(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, found = _validate(tmp_path, capsys, HEAD + "store: {backend: memory, path: state/}\n")

    assert [d["code"] for d in found] == ["PR133"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/", "it ends with '/'"),
        ("..", "it ends with '..'"),
        ("a/./", "it ends with '/'"),
        ("a/.", "it ends with '.'"),
        ("~", "it is '~', the home directory"),
        ("~user", None),
        ("a.", None),
        ("...", None),
    ],
)
def test_directory_reason(path: str, reason: str | None) -> None:
    assert directory_reason(path) == reason


def test_store_path_with_tilde_is_in_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    policy = load_policy_text(
        HEAD
        + "budgets: [{name: b, limit_usd: 1, window: day}]\n"
        + "store: {path: '~/state/budgets.sqlite3'}\n"
        + "defaults: {max_tokens: 10}\n"
    )

    store = store_for(policy)
    assert store is not None
    try:
        now = time.time()
        line = ReserveLine("b/global/day", Decimal(1), Decimal("0.5"), now + 60)
        assert store.reserve([line], reservation_id="r1", lease_seconds=60, now=now).ok
    finally:
        store.close()

    assert sorted(p.name for p in work.rglob("*")) == []
    with sqlite3.connect(home / "state" / "budgets.sqlite3") as conn:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    conn.close()  # the context manager commits; it does not close (3.13 warns at collection)
    assert tables > 0


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('receipts: {sink: jsonl, path: "out/a\\0b.jsonl"}', "receipts.path"),
        ('receipts: {sink: sqlite, path: "a\\0b.sqlite3"}', "receipts.path"),
        ('store: {backend: sqlite, path: "state/\\0budgets.sqlite3"}', "store.path"),
    ],
)
def test_a_path_holding_a_nul_character_is_an_error_at_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str
) -> None:
    # It passed validation, and opening the store or the sink raised a bare ValueError.
    text = HEAD + section + "\n"

    code, found = _validate(tmp_path, capsys, text)

    (error,) = found
    assert code == 1
    assert (error["code"], error["path"], error["line"]) == ("PR013", key, 5)
    assert error["message"] == (f"{key} holds a NUL character (\\x00), which no file name can hold")
    with pytest.raises(PolicyValidationError):
        load_policy_text(text)
