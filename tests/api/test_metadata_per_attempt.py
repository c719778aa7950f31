"""Each attempt hands litellm its own copy of the call's metadata."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

import policyroute
from policyroute.testing import FakeProvider, Fault

POLICY = """
policyroute: 1
name: metadata-per-attempt
models:
  a: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: "${{PR_META_KEY}}"}}
  b: {{model: openai/gpt-4o, api_base: "{base}", api_key: "${{PR_META_KEY}}"}}
routes: [{{name: default, to: [a, b]}}]
receipts: {{sink: none}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""


def test_a_fallback_attempt_gets_the_callers_metadata_not_what_litellm_wrote_into_it(
    served: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PR_META_KEY", "sk-test")
    given: list[dict[str, Any]] = []
    real = litellm.completion

    def recording(**kwargs: Any) -> Any:
        given.append(dict(kwargs["metadata"]))  # as handed over, before litellm writes into it
        return real(**kwargs)

    monkeypatch.setattr(litellm, "completion", recording)
    served.script("gpt-4o-mini", Fault.status(500))
    policyroute.completion(
        policy=POLICY.format(base=served.openai_base),
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "u1"},
    )
    assert given == [{"user_id": "u1"}, {"user_id": "u1"}]
