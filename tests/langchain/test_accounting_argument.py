"""``ChatPolicyRoute(accounting=...)`` takes an Accounting or nothing; anything else is refused
when the model is built, with a RequestError, not at its first call with an AttributeError
from inside the executor."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import ConfigurableField

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply


class _HalfAccounting:
    """Sync methods only: an async call would fail halfway through."""

    def admit(self, attempt: Any) -> Any:
        return NullAccounting().admit(attempt)

    def settle(self, *args: Any) -> Any:
        return NullAccounting().settle(*args)

    def finish(self, *args: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("accounting", "missing"),
    [
        (5, "admit, aadmit, settle, asettle, finish, afinish"),
        ("accounting.sqlite3", "admit, aadmit, settle, asettle, finish, afinish"),
        (_HalfAccounting(), "aadmit, asettle, afinish"),
    ],
)
def test_a_model_built_with_no_accounting_object_is_refused(
    fp: FakeProvider, make_policy: Any, accounting: object, missing: str
) -> None:
    with pytest.raises(RequestError) as refused:
        ChatPolicyRoute(policy=make_policy(), accounting=accounting)
    assert f"got {type(accounting).__name__}, without {missing}" in str(refused.value)
    assert not fp.requests


def test_an_accounting_given_through_configurable_fields_is_checked(
    fp: FakeProvider, make_policy: Any
) -> None:
    fp.set_default("*", Reply(text="ok"))
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    configurable = llm.configurable_fields(accounting=ConfigurableField(id="accounting"))
    with pytest.raises(RequestError, match="got object, without admit"):
        configurable.with_config(configurable={"accounting": object()}).invoke("hi")
    assert not fp.requests


def test_an_accounting_object_or_none_is_taken(
    fp: FakeProvider, make_policy: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the policy's own receipts, without an accounting
    fp.set_default("*", Reply(text="ok"))
    for accounting in (NullAccounting(), None):
        answer = ChatPolicyRoute(policy=make_policy(), accounting=accounting).invoke("hi")
        assert isinstance(answer, AIMessage)
        assert answer.content == "ok"
