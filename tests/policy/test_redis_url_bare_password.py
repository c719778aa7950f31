"""PR139 refuses a Redis URL whose password holds a bare '/', '?' or '#': the host part ends
there, and redis-py would connect to localhost without the password."""

from __future__ import annotations

import pytest

from policyroute.policy.redisurl import redis_url_problem


@pytest.mark.parametrize(
    "url",
    [
        "redis://:1234/abc@cache:6379/0",
        "rediss://user:pa?ss@cache:6379",
        "redis://:pa#ss@cache:6379/0",
    ],
    ids=["slash", "question-mark", "hash"],
)
def test_a_password_with_a_bare_delimiter_is_refused(url: str) -> None:
    problem = redis_url_problem(url)
    assert problem is not None
    assert "percent-encode" in problem or "malformed" in problem


@pytest.mark.parametrize(
    "url",
    ["redis://:1234%2Fabc@cache:6379/0", "redis://cache:6379/0?client_name=a", "unix:///r@1.sock"],
)
def test_encoded_passwords_and_at_signs_in_socket_paths_pass(url: str) -> None:
    assert redis_url_problem(url) is None
