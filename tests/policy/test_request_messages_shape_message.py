"""A request file's (or policy test case's) ``messages`` of the wrong type is refused with a
message that names both shapes it takes: a list of messages, or a string for one user
message."""

from __future__ import annotations

import pytest

from policyroute.errors import RequestError
from policyroute.policy.facts import parse_messages


@pytest.mark.parametrize(("value", "kind"), [(42, "int"), ({"role": "user"}, "dict")])
def test_messages_of_the_wrong_type_names_both_shapes_it_takes(value: object, kind: str) -> None:
    with pytest.raises(RequestError) as refused:
        parse_messages(value)
    assert str(refused.value) == (
        "request field 'messages' must be a list of messages or a string (one user message),"
        f" got {kind}"
    )


def test_a_string_is_one_user_message() -> None:
    assert parse_messages("hi") == [{"role": "user", "content": "hi"}]
