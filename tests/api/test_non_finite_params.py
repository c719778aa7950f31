"""NaN and infinity in a call's parameters are refused with a RequestError naming the parameter,
before anything is reserved or sent: JSON has neither, and a provider answers them with a 400
only after the budget reservation was made."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.request_checks import check_params
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: non-finite
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 16}}
"""

HI = [{"role": "user", "content": "hi"}]
NAN, INF = math.nan, math.inf

# (keyword arguments of the call, the place the error must name)
NON_FINITE: list[tuple[dict[str, Any], str]] = [
    ({"temperature": NAN}, "'temperature'"),
    ({"temperature": INF}, "'temperature'"),
    ({"top_p": NAN}, "'top_p'"),
    ({"presence_penalty": -INF}, "'presence_penalty'"),
    ({"frequency_penalty": NAN}, "'frequency_penalty'"),
    ({"repetition_penalty": INF}, "'repetition_penalty'"),
    ({"timeout": INF}, "'timeout'"),
    ({"logit_bias": {"50256": NAN}}, "'logit_bias.50256'"),
    ({"extra_body": {"options": [1.0, -INF]}}, "'extra_body.options[1]'"),
]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_TEST_KEY", "sk-test")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="ok"))
        yield provider
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _policy(tmp_path: Path, fp: FakeProvider) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base))
    return path


@pytest.mark.parametrize(("kwargs", "where"), NON_FINITE)
def test_completion_refuses_a_non_finite_parameter(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], where: str
) -> None:
    policy = _policy(tmp_path, fp)

    with pytest.raises(RequestError, match="not a finite number") as info:
        policyroute.completion(policy=policy, messages=HI, **kwargs)

    assert where in str(info.value)
    assert fp.requests == []


@pytest.mark.parametrize(("kwargs", "where"), NON_FINITE[:2] + NON_FINITE[-2:])
def test_chat_policy_route_refuses_a_non_finite_parameter(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], where: str
) -> None:
    llm = ChatPolicyRoute(policy=_policy(tmp_path, fp))

    with pytest.raises(RequestError, match="not a finite number") as info:
        llm.invoke("hi", **kwargs)

    assert where in str(info.value)
    assert fp.requests == []


def test_chat_policy_route_refuses_a_non_finite_model_kwarg(
    tmp_path: Path, fp: FakeProvider
) -> None:
    with pytest.raises(RequestError, match="'top_p' holds nan"):
        ChatPolicyRoute(policy=_policy(tmp_path, fp), model_kwargs={"top_p": NAN})


def test_finite_numbers_still_pass(tmp_path: Path, fp: FakeProvider) -> None:
    policy = _policy(tmp_path, fp)

    policyroute.completion(
        policy=policy,
        messages=HI,
        temperature=0.0,
        top_p=1,
        timeout=30.5,
        logit_bias={"50256": -100.0},
    )

    assert len(fp.requests) == 1


def test_the_search_stops_eight_levels_down() -> None:
    check_params({"temperature": None, "extra_body": {"deep": [[[[[[[[NAN]]]]]]]]}})
    with pytest.raises(RequestError, match=r"'extra_body\.deep\[0\]'"):
        check_params({"extra_body": {"deep": [NAN]}})
