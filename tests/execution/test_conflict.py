"""A 409 (a conflict the provider met meanwhile: Vertex AI's ABORTED, a lock that timed out) is
transient, as the provider SDKs treat it (the OpenAI SDK retries it): it is a ``server_error``,
retried on the same deployment and then fallen over, not a bad request that ends the call.

Through ``ChatPolicyRoute`` on the fake provider, on both wires, sync, async and streamed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from exec_support import arun

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: conflict-{uid}
models:
  busy: {{model: "{busy_model}", api_base: "{busy_base}", api_key: "${{PR_409_KEY}}", price: P}}
  live: {{model: openai/live, api_base: "{base}", api_key: "${{PR_409_KEY}}", price: P}}
routes:
  - name: default
    to: [busy, live]
defaults:
  max_tokens: 20
  retry: {{attempts: 1, backoff: {{initial: 10ms, max: 10ms, jitter: false}}}}
receipts: {{sink: none}}
"""
PRICE = "{input_per_mtok: 1, output_per_mtok: 2}"


def _model(fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, wire: str) -> ChatPolicyRoute:
    monkeypatch.setenv("PR_409_KEY", "sk-test-0123456789")
    busy_model, busy_base = (
        ("anthropic/busy", fp.anthropic_base)
        if wire == "anthropic"
        else ("openai/busy", fp.openai_base)
    )
    text = POLICY.format(
        busy_model=busy_model, busy_base=busy_base, base=fp.openai_base, uid=uuid.uuid4().hex
    )
    return ChatPolicyRoute(policy=text.replace(" P}", f" {PRICE}}}"))


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


def _attempts(message: Any) -> list[tuple[str, str, str | None]]:
    attempts = message.response_metadata["policyroute"]["attempts"]
    return [(a["deployment"], a["status"], a["error_class"]) for a in attempts]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_conflict_is_retried_on_the_same_deployment(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, mode: str, wire: str
) -> None:
    fp.script("busy", Fault.status(409), Reply(text="from busy"))
    answer = _invoke(_model(fp, monkeypatch, wire), mode)
    assert answer.content == "from busy"
    assert [r.model for r in fp.requests] == ["busy", "busy"]
    assert _attempts(answer) == [("busy", "error", "server_error"), ("busy", "ok", None)]


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_lasting_conflict_falls_over_to_the_next_deployment(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    fp.set_default("busy", Fault.status(409))
    fp.script("live", Reply(text="from live"))
    answer = _invoke(_model(fp, monkeypatch, "openai"), mode)
    assert answer.content == "from live"
    assert [r.model for r in fp.requests] == ["busy", "busy", "live"]
    assert [a[2] for a in _attempts(answer)] == ["server_error", "server_error", None]
