"""What the fake provider records of each request it receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policyroute.testing._faults import Step
from policyroute.testing._synth import Api

Source = Literal["script", "default", "outage", "auto", "invalid"]
"""Where the answer to a request came from (see :class:`RecordedRequest`)."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the fake provider received.

    ``body`` is the parsed JSON body (``None`` if absent or not JSON), ``model`` its
    ``model`` field, ``timestamp`` the ``time.time()`` of arrival, ``step`` the scripted
    :class:`~policyroute.testing.Reply` / :class:`~policyroute.testing.Fault` that answered
    (``None`` for generated content) and ``source`` where it came from: ``"script"``
    (queue), ``"default"`` (``FakeProvider.set_default``), ``"outage"``
    (``FakeProvider.schedule_outage``), ``"auto"`` (generated) or ``"invalid"`` (unknown
    path, bad method, unparsable or refused body, answered with an error). ``connection``
    numbers the TCP connection the request came on (from 1), which shows whether a client
    reuses them.

    Example:
        >>> import httpx
        >>> from policyroute.testing import FakeProvider
        >>> with FakeProvider() as fp:
        ...     _ = httpx.post(fp.anthropic_base + "/v1/messages",
        ...                    json={"model": "c", "max_tokens": 9, "messages": []})
        ...     fp.requests[0].api, fp.requests[0].model, fp.requests[0].source
        ('anthropic', 'c', 'auto')
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    model: str | None
    timestamp: float
    step: Step | None
    source: Source
    api: Api | None
    raw_body: bytes = b""
    connection: int = 0

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed answer.

        Example:
            >>> import httpx
            >>> from policyroute.testing import FakeProvider
            >>> with FakeProvider() as fp:
            ...     _ = httpx.post(fp.openai_base + "/chat/completions",
            ...                    json={"model": "m", "stream": True})
            ...     fp.requests[0].stream
            True
        """
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def assistant_blocks(self) -> list[list[Mapping[str, Any]]]:
        """The content blocks of each assistant message in the body, oldest first.

        A string ``content`` reads as one ``text`` block and an absent or null one as no
        block; items that are not JSON objects are skipped. On the Anthropic wire this is
        what the client sent back, thinking blocks and their signatures included; on the
        OpenAI wire ``tool_calls`` and ``reasoning_content`` sit beside ``content`` and are
        not blocks (read them from ``body["messages"]``).

        Example:
            >>> import httpx
            >>> from policyroute.testing import FakeProvider
            >>> turn = [{"type": "thinking", "thinking": "t", "signature": "s"},
            ...         {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]
            >>> with FakeProvider() as fp:
            ...     _ = httpx.post(fp.anthropic_base + "/v1/messages", json={
            ...         "model": "c", "max_tokens": 9,
            ...         "messages": [{"role": "user", "content": "hi"},
            ...                      {"role": "assistant", "content": turn}]})
            ...     [block["type"] for block in fp.requests[0].assistant_blocks[0]]
            ['thinking', 'tool_use']
        """
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        if not isinstance(messages, list):
            return []
        turns: list[list[Mapping[str, Any]]] = []
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, str):
                turns.append([{"type": "text", "text": content}])
            elif isinstance(content, list):
                turns.append([block for block in content if isinstance(block, Mapping)])
            else:
                turns.append([])
        return turns
