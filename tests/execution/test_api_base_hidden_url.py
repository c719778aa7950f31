"""The ``api_base`` an answer's ``_hidden_params`` shows for a deployment with user info: the
URL as configured, its password replaced where it stands and nowhere else."""

from __future__ import annotations

from typing import Any

import pytest

from policyroute.execution.url_credentials import (
    with_credentials_as_header,
    with_credentials_as_header_async,
)


class _Answer:
    def __init__(self, api_base: str) -> None:
        self._hidden_params: dict[str, Any] = {"api_base": api_base}


def _fake_completion(**params: Any) -> _Answer:
    # litellm reports the URL it was given, with the path it called
    return _Answer(params["api_base"] + "/chat/completions")


CASES = [
    # the password's text is also part of the host, the path or the user name
    ("http://proxy:gate@gateway.internal/v1", "http://proxy:[REDACTED]@gateway.internal/v1"),
    ("https://ops:v1@gw.example.com/v1", "https://ops:[REDACTED]@gw.example.com/v1"),
    ("https://pass:pass@gw.example.com/v1", "https://pass:[REDACTED]@gw.example.com/v1"),
    # an unencoded '@' in a short password: none of it is shown
    ("https://u:a@b@gw.example.com/v1", "https://u:[REDACTED]@gw.example.com/v1"),
    ("https://u:p%40ss@gw.example.com/v1", "https://u:[REDACTED]@gw.example.com/v1"),
    # nothing to hide
    ("https://user@gw.example.com/v1", "https://user@gw.example.com/v1"),
    ("https://user:@gw.example.com/v1", "https://user:@gw.example.com/v1"),
]


@pytest.mark.parametrize(("configured", "shown"), CASES)
def test_the_password_alone_is_replaced(configured: str, shown: str) -> None:
    complete = with_credentials_as_header(_fake_completion)
    answer = complete(model="openai/gpt-4o-mini", api_base=configured)
    assert answer._hidden_params["api_base"] == shown + "/chat/completions"


def test_the_async_path_shows_the_same_url() -> None:
    import asyncio

    async def fake(**params: Any) -> _Answer:
        return _fake_completion(**params)

    configured, shown = CASES[0]
    answer = asyncio.run(with_credentials_as_header_async(fake)(api_base=configured))
    assert answer._hidden_params["api_base"] == shown + "/chat/completions"
