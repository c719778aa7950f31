"""A 404 or 410 is the deployment's doing (a retired model, a wrong deployment name, a model not
pulled): the call moves on to the next deployment, and the failure counts against the breaker.

Through ``ChatPolicyRoute`` on the fake provider, on both wires, sync and async, streamed and
not; and with ``not_found`` left out of ``fallback_on``, a typed ``NotFoundError``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from exec_support import arun

import policyroute
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: not-found-{uid}
models:
  gone: {{model: "{gone_model}", api_base: "{gone_base}", api_key: "${{PR_404_KEY}}", price: P}}
  live: {{model: openai/live, api_base: "{base}", api_key: "${{PR_404_KEY}}", price: P}}
routes:
  - name: default
    to: [gone, live]
defaults:
  max_tokens: 20
  retry: {{attempts: 2, backoff: {{initial: 5s, max: 5s}}{fallback_on}}}
  circuit_breaker: {{failures: 2, cooldown: 60s}}
receipts: {{sink: none}}
"""
PRICE = "{input_per_mtok: 1, output_per_mtok: 2}"


def _model(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, *, wire: str = "openai", **kw: Any
) -> ChatPolicyRoute:
    monkeypatch.setenv("PR_404_KEY", "sk-test-0123456789")
    gone_model, gone_base = (
        ("anthropic/gone", fp.anthropic_base)
        if wire == "anthropic"
        else ("openai/gone", fp.openai_base)
    )
    text = POLICY.format(
        gone_model=gone_model,
        gone_base=gone_base,
        base=fp.openai_base,
        fallback_on=kw.get("fallback_on", ""),
        uid=uuid.uuid4().hex,  # breakers are shared by the models of one policy: one each
    )
    return ChatPolicyRoute(policy=text.replace(" P}", f" {PRICE}}}"))


def _attempts(message: Any) -> list[tuple[str, str, str | None]]:
    attempts = message.response_metadata["policyroute"]["attempts"]
    return [(a["deployment"], a["status"], a["error_class"]) for a in attempts]


def _invoke(model: ChatPolicyRoute, mode: str) -> Any:
    if mode == "sync":
        return model.invoke("hello")
    if mode == "async":
        return arun(model.ainvoke("hello"))
    chunks = list(model.stream("hello"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    return whole


@pytest.mark.parametrize("status", [404, 410])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_missing_model_falls_over_without_a_retry(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, mode: str, wire: str, status: int
) -> None:
    fp.script("gone", Fault.status(status))
    fp.script("live", Reply(text="from live"))
    answer = _invoke(_model(fp, monkeypatch, wire=wire), mode)
    assert answer.content == "from live"
    assert [r.model for r in fp.requests] == ["gone", "live"]  # no retry of the 404
    assert _attempts(answer) == [("gone", "error", "not_found"), ("live", "ok", None)]


def test_a_deployment_that_keeps_answering_404_is_skipped_by_its_breaker(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.set_default("gone", Fault.status(404))
    fp.set_default("live", Reply(text="from live"))
    model = _model(fp, monkeypatch)
    for _ in range(2):
        assert model.invoke("hello").content == "from live"
    answer = model.invoke("hello")
    assert fp.attempts("gone") == 2  # the breaker opened after two 404s
    assert _attempts(answer) == [("live", "ok", None)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_without_not_found_in_fallback_on_the_call_stops_with_a_typed_error(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    fp.script("gone", Fault.status(404))
    model = _model(fp, monkeypatch, fallback_on=", fallback_on: [server_error]")
    with pytest.raises(policyroute.NotFoundError) as info:
        _invoke(model, mode)
    err = info.value
    assert (err.error_class, err.status_code, err.deployment) == ("not_found", 404, "gone")
    assert "does not exist" in str(err)  # the provider's own words are kept
    assert isinstance(err, policyroute.ProviderError)
    assert fp.attempts("live") == 0
