"""A deployment whose ``api_base`` or ``api_key`` reads a variable the environment does not set
is sent nothing.

Left unset, litellm would send the call to the provider's public endpoint instead of the
gateway the policy names (with the gateway's key), or with the key of the provider's usual
variable, billing another account. Each attempt on it fails as ``authentication`` before
anything is sent; the call falls over to the next candidate, or is refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.api import clear_cache
from policyroute.errors import AllCandidatesRefusedError
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

HI = [{"role": "user", "content": "hi"}]

POLICY = """\
policyroute: 1
name: unset-endpoints
models:
  gateway:
    model: openai/gw-model
    api_base: "${{UNSET_TEST_GATEWAY_URL}}"
    api_key: "${{UNSET_TEST_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
  team:
    model: openai/team-model
    api_base: {base}
    api_key: "${{UNSET_TEST_TEAM_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
  backup:
    model: openai/backup-model
    api_base: {base}
    api_key: "${{UNSET_TEST_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
routes:
  - {{name: gateway-first, when: {{metadata.route: gw}}, to: [gateway, backup]}}
  - {{name: gateway-only, when: {{metadata.route: gw-only}}, to: gateway}}
  - {{name: team-only, to: team}}
defaults:
  retry: {{attempts: 2, backoff: {{initial: 1ms, max: 1ms}}}}
receipts: {{sink: none}}
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_TEST_GATEWAY_URL", raising=False)
    monkeypatch.delenv("UNSET_TEST_TEAM_KEY", raising=False)
    monkeypatch.setenv("UNSET_TEST_KEY", "sk-gateway")
    # the provider's usual variable, holding another account's key
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-account")
    clear_cache()


def _policy(fp: FakeProvider) -> str:
    fp.set_default("*", Reply(text="ok"))
    return POLICY.format(base=fp.openai_base)


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_a_deployment_whose_api_base_is_unset_is_passed_over(fp: FakeProvider, mode: str) -> None:
    policy = _policy(fp)
    kwargs = {"policy": policy, "messages": HI, "metadata": {"route": "gw"}}
    if mode == "sync":
        answer = policyroute.completion(**kwargs)
    elif mode == "async":
        answer = asyncio.run(policyroute.acompletion(**kwargs))
    elif mode == "stream":
        stream = policyroute.completion(stream=True, **kwargs)
        list(stream)
        answer = stream.result.response
    else:

        async def read() -> object:
            stream = await policyroute.acompletion(stream=True, **kwargs)
            async for _ in stream:
                pass
            return stream.result.response

        answer = asyncio.run(read())
    assert answer.choices[0].message.content == "ok"
    assert [r.body["model"] for r in fp.requests] == ["backup-model"]
    attempts = answer._hidden_params["policyroute"]["attempts"]
    assert [(a["deployment"], a["error_class"]) for a in attempts] == [
        ("gateway", "authentication"),
        ("backup", None),
    ]


def test_a_route_of_unset_deployments_is_refused_and_says_which_variable(
    fp: FakeProvider,
) -> None:
    policy = _policy(fp)
    with pytest.raises(AllCandidatesRefusedError) as refused:
        policyroute.completion(policy=policy, messages=HI, metadata={"route": "gw-only"})
    text = str(refused.value)
    assert "api_base: ${UNSET_TEST_GATEWAY_URL} is not set in the environment" in text
    assert "nothing was sent" in text
    assert "sk-gateway" not in text
    assert [a.error_class for a in refused.value.attempts] == ["authentication"]  # no retry
    assert fp.requests == []


def test_an_unset_key_is_not_replaced_by_the_providers_usual_variable(
    fp: FakeProvider,
) -> None:
    llm = ChatPolicyRoute(policy=_policy(fp), accounting=NullAccounting())
    with pytest.raises(AllCandidatesRefusedError, match=r"api_key: \$\{UNSET_TEST_TEAM_KEY\}"):
        llm.invoke("hi")
    with pytest.raises(AllCandidatesRefusedError):
        list(llm.stream("hi"))
    assert fp.requests == []  # sk-another-account never went out


def test_the_deployment_is_used_once_its_variable_is_set(
    fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy(fp), encoding="utf-8")
    with pytest.raises(AllCandidatesRefusedError):
        policyroute.completion(policy=str(path), messages=HI)
    monkeypatch.setenv("UNSET_TEST_TEAM_KEY", "sk-team")
    answer = ChatPolicyRoute(policy=str(path), accounting=NullAccounting()).invoke("hi")
    assert isinstance(answer, AIMessage)
    assert answer.content == "ok"
    assert policyroute.completion(policy=str(path), messages=HI).choices[0].message.content == "ok"
    assert [r.headers["authorization"] for r in fp.requests] == ["Bearer sk-team"] * 2
