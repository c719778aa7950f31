"""``check_accounting`` asks for exactly the methods the ``Accounting`` protocol declares, read
from the protocol itself so that the two cannot drift apart, and names those an accounting
lacks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

import pytest

from policyroute.errors import RequestError
from policyroute.execution.hooks import (
    Accounting,
    LeaseRenewal,
    NullAccounting,
    _protocol_methods,
    check_accounting,
)


class _Base(Protocol):
    def first(self) -> None: ...

    def _private(self) -> None: ...


class _Derived(_Base, Protocol):
    limit: Decimal  # an attribute, not a method

    def second(self) -> None: ...

    async def third(self) -> None: ...


def test_a_protocols_methods_are_its_bases_then_its_own_in_the_order_written() -> None:
    assert _protocol_methods(_Derived) == ("first", "second", "third")
    assert _protocol_methods(LeaseRenewal) == ("renew", "arenew")


def test_the_accounting_methods_are_the_six_hooks_the_executor_calls() -> None:
    assert _protocol_methods(Accounting) == (
        "admit",
        "aadmit",
        "settle",
        "asettle",
        "finish",
        "afinish",
    )


def _without(name: str) -> object:
    """An accounting with every method of the protocol but ``name``."""
    methods: dict[str, Any] = {
        m: getattr(NullAccounting, m) for m in _protocol_methods(Accounting) if m != name
    }
    return type("Partial", (), methods)()


@pytest.mark.parametrize("missing", _protocol_methods(Accounting))
def test_an_accounting_without_one_method_is_refused_naming_it(missing: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_accounting(_without(missing))

    message = str(caught.value)
    assert message.endswith(f"got Partial, without {missing}")
    assert "with the methods admit, aadmit, settle, asettle, finish, afinish;" in message


def test_every_method_of_the_protocol_is_enough() -> None:
    check_accounting(NullAccounting())
    check_accounting(type("Full", (), dict(vars(NullAccounting)))())
    check_accounting(None)
