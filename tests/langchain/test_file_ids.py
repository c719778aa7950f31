"""Blocks that name a file by id reach Claude as what they are: litellm picks the Anthropic
block from the part's ``format`` (a PDF or text a ``document``, an image an ``image``) and,
without one, sends a ``container_upload`` (a file for the code-execution tool), which the
model does not read as the document or image. The format is litellm's own key: OpenAI never
receives it."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from lc_support import claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.content_parts import to_openai_content
from policyroute.testing import FakeProvider

BLOCKS: list[dict[str, Any]] = [
    {"type": "file", "file_id": "file-pdf", "mime_type": "application/pdf"},
    {"type": "image", "file_id": "file-img", "mime_type": "image/jpeg"},
    {"type": "text-plain", "file_id": "file-txt", "mime_type": "text/plain"},
    {"type": "document", "source": {"type": "file", "file_id": "file-doc"}},
    {"type": "image", "source": {"type": "file", "file_id": "file-pic"}},
]


@pytest.mark.parametrize(
    ("block", "file"),
    [
        (BLOCKS[0], {"file_id": "file-pdf", "format": "application/pdf"}),
        (BLOCKS[1], {"file_id": "file-img", "format": "image/jpeg"}),
        (BLOCKS[2], {"file_id": "file-txt", "format": "text/plain"}),
        (BLOCKS[3], {"file_id": "file-doc", "format": "application/pdf"}),
        (BLOCKS[4], {"file_id": "file-pic", "format": "image/png"}),
        (
            {"type": "video", "file_id": "file-vid", "mime_type": "video/mp4"},
            {"file_id": "file-vid", "format": "video/mp4"},
        ),
        ({"type": "file", "file_id": "file-any"}, {"file_id": "file-any"}),
    ],
    ids=["pdf", "image", "text", "anthropic-document", "anthropic-image", "video", "no-mime"],
)
def test_a_file_id_part_says_what_the_file_is(block: dict[str, Any], file: dict[str, Any]) -> None:
    assert to_openai_content([block]) == [{"type": "file", "file": file}]


def _sent(fp: FakeProvider, first: str) -> list[Any]:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="file-ids", first=first)
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    llm.invoke([HumanMessage([{"type": "text", "text": "Read these."}, *BLOCKS])])
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    parts: list[Any] = recorded.body["messages"][-1]["content"]
    return parts[1:]


def test_claude_receives_documents_and_images(fp: FakeProvider) -> None:
    assert _sent(fp, "claude") == [
        {"type": "document", "source": {"type": "file", "file_id": "file-pdf"}},
        {"type": "image", "source": {"type": "file", "file_id": "file-img"}},
        {"type": "document", "source": {"type": "file", "file_id": "file-txt"}},
        {"type": "document", "source": {"type": "file", "file_id": "file-doc"}},
        {"type": "image", "source": {"type": "file", "file_id": "file-pic"}},
    ]


def test_openai_receives_no_format_key(fp: FakeProvider) -> None:
    assert _sent(fp, "gpt") == [
        {"type": "file", "file": {"file_id": name}}
        for name in ("file-pdf", "file-img", "file-txt", "file-doc", "file-pic")
    ]
