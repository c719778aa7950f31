"""policyroute.completion / acompletion over a policy file and the fake provider."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from exec_support import RecordingAccounting, arun

from policyroute import api
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(20)
os.environ.setdefault("POLICYROUTE_EXEC_TEST_KEY", "sk-test")

POLICY = """
policyroute: 1
name: api-test
models:
  first:
    model: openai/first
    api_base: {base}
    api_key: ${{POLICYROUTE_EXEC_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
  second:
    model: openai/second
    api_base: {base}
    api_key: ${{POLICYROUTE_EXEC_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: [first, second]
defaults:
  retry: {{attempts: 0}}
  max_tokens: 33
"""
MESSAGES = [{"role": "user", "content": "hi there"}]


@pytest.fixture
def policy_file(fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The policy's default receipts go to .policyroute/ under the working directory.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base))
    api.clear_cache()
    return path


def test_completion_returns_litellm_response_with_policyroute_summary(
    fp: FakeProvider, policy_file: Path
):
    fp.script("first", Fault.status(503))
    response = api.completion(policy=policy_file, messages=MESSAGES, temperature=0.1)
    info = response._hidden_params["policyroute"]
    assert info["route"] == "default"
    assert info["deployment"] == "second"
    assert [a["status"] for a in info["attempts"]] == ["error", "ok"]
    assert fp.requests_for("second")[0].body["max_tokens"] == 33


def test_executors_are_cached_per_path(fp: FakeProvider, policy_file: Path):
    first = api._executor_for(policy_file, None)
    assert api._executor_for(str(policy_file), None) is first
    acct = RecordingAccounting()
    assert api._executor_for(policy_file, acct) is not first


def test_acompletion_with_accounting(fp: FakeProvider, policy_file: Path):
    acct = RecordingAccounting()
    response = arun(api.acompletion(policy=policy_file, messages=MESSAGES, accounting=acct))
    assert response.choices[0].message.content
    assert [o.status for o in acct.finished] == ["ok"]


def test_streamed_completion_yields_litellm_chunks(fp: FakeProvider, policy_file: Path):
    fp.script("first", Reply(text="a b c"))
    stream = api.completion(policy=policy_file, messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "a b c"
    assert stream.policyroute is not None
    assert stream.policyroute["deployment"] == "first"


def test_async_streamed_completion(fp: FakeProvider, policy_file: Path):
    fp.script("first", Reply(text="x y"))

    async def main() -> str:
        stream = await api.acompletion(policy=policy_file, messages=MESSAGES, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert arun(main()) == "x y"
