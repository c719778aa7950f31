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
