"""LangChain's standard ``text-plain`` block (a plain-text document, as langchain-core's own
translators produce from Anthropic text documents and v0 text files) is sent, not refused:
its text as a text part, or, given as data, a URL or a file id, as a text/plain file."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from langchain_core.messages import HumanMessage, content

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.content_parts import to_openai_content
from policyroute.testing import FakeProvider

EPHEMERAL = {"type": "ephemeral"}


def test_its_text_is_a_text_part() -> None:
    block = content.create_plaintext_block("The contract says...", title="contract.txt")
    assert to_openai_content([block]) == [{"type": "text", "text": "The contract says..."}]


def test_its_cache_mark_is_kept() -> None:
    block = {
        "type": "text-plain",
        "text": "long document",
        "mime_type": "text/plain",
        "extras": {"cache_control": EPHEMERAL},
    }
    assert to_openai_content([block]) == [
        {"type": "text", "text": "long document", "cache_control": EPHEMERAL}
    ]


@pytest.mark.parametrize(
    ("block", "file"),
    [
        (
            {"type": "text-plain", "base64": base64.b64encode(b"hi").decode()},
            {"filename": "document", "file_data": "data:text/plain;base64,aGk="},
        ),
        ({"type": "text-plain", "file_id": "file-1"}, {"file_id": "file-1"}),
    ],
    ids=["base64", "file-id"],
)
def test_as_data_or_a_file_id_it_is_a_text_file(
    block: dict[str, str], file: dict[str, str]
) -> None:
    assert to_openai_content([block]) == [{"type": "file", "file": file}]


def test_a_call_with_a_plain_text_document_reaches_the_provider(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    document = content.create_plaintext_block("Paris is the capital.")
    llm.invoke([HumanMessage([{"type": "text", "text": "Summarise:"}, document])])
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    assert recorded.body["messages"][-1]["content"] == [
        {"type": "text", "text": "Summarise:"},
        {"type": "text", "text": "Paris is the capital."},
    ]
