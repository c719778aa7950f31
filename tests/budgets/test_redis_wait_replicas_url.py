"""The store URL's ``wait_replicas`` and ``wait_timeout``: read off before redis-py sees the
URL, on every form but a cluster's (refused there: WAIT must reach the slot's primary on the
connection that wrote); `policyroute validate` refuses a bad value with PR139, naming the
argument and never the URL, and the store refuses what validation refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.budgets.stores.redis import RedisStore
from policyroute.cli import main
from policyroute.errors import BudgetStoreError
from policyroute.policy.redis_topology import topology

HEAD = (
    "policyroute: 1\nname: redis-wait\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)

# Each URL, with the one redis-py is given and the wait it asks for.
READ = [
    ("redis://:hunter2@cache:6379/0?wait_replicas=1", "redis://:hunter2@cache:6379/0", 1, 0.1),
    (
        "redis://cache/0?socket_timeout=2&wait_replicas=2&wait_timeout=0.05",
        "redis://cache/0?socket_timeout=2",
        2,
        0.05,
    ),
    ("rediss://cache:6380/0?wait_timeout=1&wait_replicas=1", "rediss://cache:6380/0", 1, 1.0),
    ("unix:///run/redis.sock?db=2&wait_replicas=0", "unix:///run/redis.sock?db=2", 0, 0.1),
    (
        "redis+sentinel://:hunter2@s1,s2/budgets/0?wait_replicas=1&sentinel_password=sp",
        "redis://:hunter2@s1:26379/0",
        1,
        0.1,
    ),
    ("redis://cache:6379/0", "redis://cache:6379/0", 0, 0.1),
]

# Each with what the message says of it; every one holds the password "hunter2".
REFUSED = [
    ("redis://:hunter2@cache/0?wait_replicas=one", "gives wait_replicas a value that is not a"),
    ("redis://:hunter2@cache/0?wait_replicas=-1", "gives wait_replicas a value that is not a"),
    ("redis://:hunter2@cache/0?wait_replicas=1.5", "gives wait_replicas a value that is not a"),
    ("redis://:hunter2@cache/0?wait_replicas=", "gives wait_replicas a value that is not a"),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=0",
        "gives wait_timeout a value that is not a number of seconds above 0 (Redis would read 0"
        " as waiting for ever)",
    ),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=-1",
        "gives wait_timeout a value that is not a number of seconds above 0",
    ),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=50ms",
        "gives wait_timeout a value that is not a number of seconds above 0",
    ),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=nan",
        "gives wait_timeout a value that is not a number of seconds above 0",
    ),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=inf",
        "gives wait_timeout a value that is not a number of seconds above 0",
    ),
    (
        "redis://:hunter2@cache/0?wait_timeout=0.05",
        "passes wait_timeout without wait_replicas, so nothing waits",
    ),
    ("redis://:hunter2@cache/0?wait_replicas=1&wait_replicas=2", "passes wait_replicas twice"),
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=5",
        "gives wait_timeout 5 s, not below the command timeout (socket_timeout, 5 s)",
    ),
    (
        "redis+sentinel://:hunter2@s1/budgets?socket_timeout=0.5&wait_replicas=1&wait_timeout=1",
        "gives wait_timeout 1 s, not below the command timeout (socket_timeout, 0.5 s)",
    ),
    (
        "redis+sentinel://:hunter2@s1/budgets?wait_replicas=x",
        "gives wait_replicas a value that is not a",
    ),
    (
        "redis+cluster://:hunter2@n1:7000,n2:7001?wait_replicas=1",
        "passes wait_replicas or wait_timeout, which a cluster does not take",
    ),
    (
        "rediss+cluster://:hunter2@n1:7000/?wait_replicas=0",
        "passes wait_replicas or wait_timeout, which a cluster does not take",
    ),
]


@pytest.mark.parametrize(("url", "plain", "replicas", "wait"), READ)
def test_the_store_reads_its_own_arguments_off_the_url(
    url: str, plain: str, replicas: int, wait: float
) -> None:
    found = topology(url)
    assert (found.url, found.wait_replicas, found.wait_timeout) == (plain, replicas, wait)


def test_a_password_holding_a_question_mark_is_not_taken_for_the_query() -> None:
    # Validation refuses such a URL (percent-encode it), but a store opened on one reads it.
    found = topology("redis://:a?wait_replicas=2@cache/0?wait_replicas=1")
    assert (found.url, found.wait_replicas) == ("redis://:a?wait_replicas=2@cache/0", 1)


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> tuple[int, list[dict[str, Any]]]:
    monkeypatch.setenv("REDIS_URL", url)
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + "store: {backend: redis, url: '${REDIS_URL}'}\n", encoding="utf-8")
    code = main(["validate", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    return code, report["files"][0]["diagnostics"]


@pytest.mark.parametrize("url", [u for u, *_ in READ])
def test_validation_takes_the_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    assert _validate(tmp_path, capsys, monkeypatch, url) == (0, [])


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_a_bad_value_is_pr139_naming_the_argument(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    problem: str,
) -> None:
    code, found = _validate(tmp_path, capsys, monkeypatch, url)

    (error,) = found
    assert code == 1
    assert (error["code"], error["path"]) == ("PR139", "store.url")
    assert error["message"].startswith(
        "store.url (with ${REDIS_URL} expanded) is not a URL redis-py can connect with:"
        f" it {problem}"
    )
    assert "hunter2" not in json.dumps(found)


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_the_store_refuses_what_validation_refuses(url: str, problem: str) -> None:
    with pytest.raises(BudgetStoreError) as refused:
        RedisStore(url, prefix="p")
    assert problem in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_store_holds_the_wait_below_its_own_command_timeout() -> None:
    url = "redis://cache:6379/0?wait_replicas=1&wait_timeout=1"
    with pytest.raises(BudgetStoreError, match=r"not below the command timeout \(socket_timeout"):
        RedisStore(url, socket_timeout=0.5)
    # The URL's socket_timeout wins over the store's.
    RedisStore(url + "&socket_timeout=2", socket_timeout=0.5).close()


# Redis times WAIT out on its clock ticks (10 a second by default): a WAIT for replicas that
# do not answer returns up to 0.1 s after its timeout, so a wait_timeout within 0.1 s of the
# command timeout lets the socket time out first, and a settlement that happened on the
# primary is reported as failed instead of kept and logged.
NEAR_THE_COMMAND_TIMEOUT = [
    (
        "redis://:hunter2@cache/0?wait_replicas=1&wait_timeout=4.95",
        "gives wait_timeout 4.95 s, not below the command timeout (socket_timeout, 5 s) less"
        " the 0.1 s Redis may wait past it",
    ),
    (
        "redis+sentinel://:hunter2@s1/budgets?socket_timeout=1&wait_replicas=1&wait_timeout=0.95",
        "gives wait_timeout 0.95 s, not below the command timeout (socket_timeout, 1 s) less"
        " the 0.1 s Redis may wait past it",
    ),
]


@pytest.mark.parametrize(("url", "problem"), NEAR_THE_COMMAND_TIMEOUT)
def test_a_wait_within_redis_clock_tick_of_the_command_timeout_is_pr139(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    problem: str,
) -> None:
    code, found = _validate(tmp_path, capsys, monkeypatch, url)

    (error,) = found
    assert (code, error["code"]) == (1, "PR139")
    assert error["message"].endswith(f" it {problem}")


@pytest.mark.parametrize(("url", "problem"), NEAR_THE_COMMAND_TIMEOUT)
def test_the_store_refuses_a_wait_within_redis_clock_tick_of_the_command_timeout(
    url: str, problem: str
) -> None:
    with pytest.raises(BudgetStoreError) as refused:
        RedisStore(url, prefix="p")
    assert problem in str(refused.value)


def test_a_wait_with_a_clock_tick_to_spare_is_taken() -> None:
    RedisStore("redis://cache/0?wait_replicas=1&wait_timeout=4.85", prefix="p").close()
