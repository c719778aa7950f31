"""Copying, pickling and constructor keywords of ChatPolicyRoute, as LangChain users use them."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy
from policyroute.testing import FakeProvider, Reply


@pytest.fixture
def policy_file(tmp_path: Path, make_policy: Callable[..., str]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(make_policy())
    return path


def _route(llm: ChatPolicyRoute) -> str:
    return str(llm.invoke("hi").response_metadata["policyroute"]["route"])


def test_pickle_rebuilds_a_model_built_from_a_path(fp: FakeProvider, policy_file: Path) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm = ChatPolicyRoute(policy=str(policy_file), temperature=0.1, accounting=NullAccounting())
    llm.invoke("warm the executor up")
    again = pickle.loads(pickle.dumps(llm))
    assert again.policy == str(policy_file)
    assert again.temperature == 0.1
    assert again.compiled_policy.content_hash == llm.compiled_policy.content_hash
    assert again.invoke("hi").content == "ok"


def test_pickle_of_a_compiled_policy_names_its_file(fp: FakeProvider, policy_file: Path) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm = ChatPolicyRoute(policy=load_policy(policy_file), accounting=NullAccounting())
    again = pickle.loads(pickle.dumps(llm))
    assert Path(str(again.policy)) == policy_file
    assert again.invoke("hi").content == "ok"


def test_pickle_refuses_a_policy_with_nothing_to_rebuild_it_from(
    make_policy: Callable[..., str],
) -> None:
    from policyroute.policy.loader import load_policy_text

    llm = ChatPolicyRoute(policy=load_policy_text(make_policy()), accounting=NullAccounting())
    with pytest.raises(TypeError, match="not loaded from a file"):
        pickle.dumps(llm)


def test_deepcopy_shares_policy_and_accounting_not_the_executor(
    fp: FakeProvider, llm: ChatPolicyRoute
) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm.invoke("hi")
    copied = copy.deepcopy(llm)
    assert copied.compiled_policy is llm.compiled_policy
    assert copied.accounting is llm.accounting
    assert copied.executor is not llm.executor
    assert copied.invoke("hi").content == "ok"
    deep = llm.model_copy(deep=True)
    assert deep.executor is not llm.executor


def test_deep_model_copy_with_an_update_is_an_independent_model(
    fp: FakeProvider, llm: ChatPolicyRoute, make_policy: Callable[..., str]
) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm.invoke("hi")
    colder = llm.model_copy(update={"temperature": 0.25}, deep=True)
    assert colder.compiled_policy is llm.compiled_policy
    assert colder.accounting is llm.accounting
    assert colder.executor is not llm.executor
    assert colder.invoke("hi").content == "ok"
    assert fp.requests[-1].body["temperature"] == 0.25
    assert llm.temperature is None
    other = llm.model_copy(update={"policy": make_policy(name="other")}, deep=True)
    assert other.compiled_policy.name == "other"
    assert other.executor is not llm.executor
    assert _route(other) == "default"


def test_model_copy_with_a_new_policy_routes_by_it(
    fp: FakeProvider, llm: ChatPolicyRoute, make_policy: Callable[..., str]
) -> None:
    fp.set_default("*", Reply(text="ok"))
    assert _route(llm) == "default"
    everything_strong = make_policy(name="strong-only").replace(
        "  - name: default\n    to: [fast, backup]", "  - name: default\n    to: strong"
    )
    copied = llm.model_copy(update={"policy": everything_strong})
    assert copied.compiled_policy.name == "strong-only"
    assert copied.invoke("hi").response_metadata["policyroute"]["deployment"] == "strong"
    assert llm.invoke("hi").response_metadata["policyroute"]["deployment"] == "fast"


def test_model_copy_with_new_accounting_gets_its_own_executor(llm: ChatPolicyRoute) -> None:
    executor = llm.executor
    accounting = NullAccounting()
    copied = llm.model_copy(update={"accounting": accounting})
    assert copied.executor is not executor
    assert copied.executor.accounting is accounting
    assert llm.model_copy(update={"temperature": 0.3}).executor is executor


def test_model_copy_with_a_broken_policy_fails_at_once(llm: ChatPolicyRoute) -> None:
    from policyroute.errors import PolicyError

    with pytest.raises(PolicyError):
        llm.model_copy(update={"policy": "policyroute: 1\nname: broken\n"})


def test_undeclared_constructor_keywords_reach_the_provider(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm = ChatPolicyRoute(
        policy=make_policy(),
        accounting=NullAccounting(),
        top_p=0.5,
        model_kwargs={"seed": 7, "presence_penalty": 0.1},
    )
    assert llm.model_kwargs == {"seed": 7, "presence_penalty": 0.1, "top_p": 0.5}
    llm.invoke("hi")
    body = fp.requests[-1].body
    assert isinstance(body, dict)
    assert (body["top_p"], body["seed"], body["presence_penalty"]) == (0.5, 7, 0.1)
    # A call's own keyword overrides the constructor's.
    llm.invoke("hi", seed=8)
    body = fp.requests[-1].body
    assert isinstance(body, dict)
    assert body["seed"] == 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"api_base": "http://elsewhere"}, "'api_base' is not accepted"),
        ({"max_retries": 2}, "'max_retries' is not accepted"),
        ({"model_kwargs": {"fallbacks": ["gpt-4o"]}}, "'fallbacks' is not accepted"),
        ({"model_kwargs": {"temperature": 0}}, "pass temperature=... instead"),
        ({"model_kwargs": {"seed": 1}, "seed": 2}, "both on its own and in model_kwargs"),
        ({"model_kwargs": ["seed"]}, "must be a mapping"),
        ({"top_p": "high"}, "'top_p' must be a number"),
    ],
)
def test_constructor_keywords_that_would_take_over_are_refused(
    make_policy: Callable[..., str], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(RequestError, match=match):
        ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), **kwargs)


def test_model_kwargs_key_the_cache(make_policy: Callable[..., str]) -> None:
    policy = make_policy()
    plain = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    seeded = ChatPolicyRoute(policy=policy, accounting=NullAccounting(), seed=1)
    assert plain._get_llm_string() != seeded._get_llm_string()
    assert seeded._identifying_params["model_kwargs"] == {"seed": 1}
