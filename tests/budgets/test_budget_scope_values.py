"""Budget scopes from any metadata value: charged under a key every store can hold, or refused
with a RequestError before anything is sent. Through policyroute.completion, on each store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.budgets.windows import scope_values
from policyroute.errors import RequestError
from policyroute.request import Request
from policyroute.testing import FakeProvider

POLICY = """
policyroute: 1
name: scope-values
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: per-user
    per: metadata.user_id
    limit_usd: 10
    window: day
  - name: per-tag
    per: tags
    limit_usd: 10
    window: day
defaults: {{max_tokens: 8}}
store: {store}
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _receipts(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "receipts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


def _policy(tmp_path: Path, fp: FakeProvider, backend: str, request: pytest.FixtureRequest) -> Path:
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        store = f'{{backend: redis, url: "{url}", prefix: scope{tmp_path.name[-8:]}}}'
    else:
        store = "{backend: sqlite, path: budgets.sqlite3}"
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base, store=store))
    return path


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_scope_with_lone_surrogates_is_charged_under_an_escaped_key(
    tmp_path: Path, fake_provider: FakeProvider, backend: str, request: pytest.FixtureRequest
) -> None:
    # Undecodable bytes read with surrogateescape end up as lone surrogates in a user id.
    user = b"caf\xe9".decode("utf-8", "surrogateescape")
    policy = _policy(tmp_path, fake_provider, backend, request)

    response = policyroute.completion(
        policy=policy,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": user},
        tags=[user, "plain"],
    )

    assert response.choices[0].message.content == "hi"
    assert len(fake_provider.requests) == 1
    attempt = next(r for r in _receipts(tmp_path) if r["kind"] == "attempt")
    charged = {(b["budget"], b["scope"]) for b in attempt["budgets"]}
    assert charged == {
        ("per-user", "caf\\udce9"),
        ("per-tag", "caf\\udce9"),
        ("per-tag", "plain"),
    }


@pytest.mark.parametrize("value", [Unprintable(), {"self": None}])
def test_a_scope_value_that_cannot_be_text_is_refused_before_the_call(
    tmp_path: Path, fake_provider: FakeProvider, value: Any, request: pytest.FixtureRequest
) -> None:
    if isinstance(value, dict):
        value["self"] = value  # a circular structure
    policy = _policy(tmp_path, fake_provider, "sqlite", request)

    with pytest.raises(RequestError, match=r"budget scope 'metadata\.user_id'"):
        policyroute.completion(
            policy=policy,
            messages=[{"role": "user", "content": "hi"}],
            metadata={"user_id": value},
        )
    assert fake_provider.requests == []


def test_scope_values_escape_only_what_utf8_cannot_hold() -> None:
    request = Request(messages=[], metadata={"u": "é\udce9"}, tags=["ü", "\udcff"])
    assert scope_values("metadata.u", request, route="r", model="m") == ("é\\udce9",)
    assert scope_values("tags", request, route="r", model="m") == ("ü", "\\udcff")
    assert scope_values(
        "metadata.u", Request(messages=[], metadata={"u": 7}), route="r", model="m"
    ) == ("7",)
