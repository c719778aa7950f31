"""`receipts report` counts the calls litellm answered from its response cache: each row's
``cache_hits``, in the table, JSON and CSV, from receipts written by real calls. Receipts said
``cache_hit: true`` and the report had no count of them, so a model's calls and cost could not
be told apart into paid calls and free answers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.cli import main
from policyroute.testing import FakeProvider, Reply, Usage

litellm = import_litellm()
pytestmark = [
    pytest.mark.timeout(60),
    # litellm's cache-hit path imports its proxy's modules, whose pydantic models warn once
    # when first built; litellm's to fix, and nothing our code does.
    pytest.mark.filterwarnings("ignore:Items .* `ReadOnly` qualifier:UserWarning"),
]

POLICY = """
policyroute: 1
name: report-cache-hits
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_CACHE_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 1.00
    window: day
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults:
  max_tokens: 10
  retry: {{attempts: 0}}
"""


@pytest.fixture
def receipts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The receipts of three calls with litellm's response cache on: one paid, then the same
    question twice (answered from the cache), then another question (paid)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_CACHE_KEY", "sk-test")
    # litellm.Cache registers itself among litellm's callbacks: the lists are put back after.
    for name in ("input_callback", "success_callback", "_async_success_callback"):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    monkeypatch.setattr(litellm, "cache", litellm.Cache(type="local"))
    try:
        with FakeProvider() as provider:
            provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
            (tmp_path / "policy.yaml").write_text(POLICY.format(base=provider.openai_base))
            for text in ("hello there", "hello there", "hello there", "something else"):
                policyroute.completion(
                    policy="policy.yaml", messages=[{"role": "user", "content": text}]
                )
            assert len(provider.requests) == 2  # two answered from the cache
    finally:
        clear_cache()
        from policyroute.accounting import _clear_default_cache

        _clear_default_cache()
    return str(tmp_path / "receipts" / "calls.jsonl")


def _report(path: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["receipts", "report", path, "--by", "model,budget", "--format", fmt]) == 0
    return capsys.readouterr().out


def test_json_counts_cache_hits(receipts: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_report(receipts, "json", capsys))
    assert (doc["total"]["calls"], doc["total"]["cache_hits"]) == (4, 2)
    model = doc["by"]["model"]["openai/fake-a"]
    assert (model["calls"], model["attempts"], model["cache_hits"]) == (4, 4, 2)
    budget = doc["by"]["budget"]["daily"]
    assert (budget["calls"], budget["cache_hits"]) == (4, 2)


def test_table_has_a_cache_hits_column(receipts: str, capsys: pytest.CaptureFixture[str]) -> None:
    sections = _report(receipts, "table", capsys).split("\n\n")
    rows = {}
    for section in sections:
        header, _, *body = section.splitlines()
        columns = header.split()
        assert columns[-1] == "cache_hits"
        for line in body:
            cells = dict(zip(columns, line.split(), strict=True))
            rows[(columns[0], cells[columns[0]])] = (cells["calls"], cells["cache_hits"])
    assert rows == {
        ("total", "all"): ("4", "2"),
        ("model", "openai/fake-a"): ("4", "2"),
        ("budget", "daily"): ("4", "2"),
    }


def test_csv_has_a_cache_hits_column_last(
    receipts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.reader(io.StringIO(_report(receipts, "csv", capsys))))
    assert rows[0][-1] == "cache_hits"
    found = {(row[0], row[1]): dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert {key: (r["calls"], r["cache_hits"]) for key, r in found.items()} == {
        ("total", "all"): ("4", "2"),
        ("model", "openai/fake-a"): ("4", "2"),
        ("budget", "daily"): ("4", "2"),
    }
