"""The Redis budget store when Redis misbehaves: unreachable, wrong credentials, lost replies.

A budget is never exceeded, nothing is sent to a provider unless its reservation was recorded,
a failure is a BudgetStoreError naming the store (its URL, never the password), and no
reservation is lost: what could not be settled is reclaimed when its lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

import policyroute
from budgets.helpers import write_store_policy
from budgets.proxy import FaultyProxy
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore
from policyroute.budgets.windows import budget_prefix
from policyroute.cli import main
from policyroute.errors import BudgetStoreError, PolicyValidationError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


def _policy(tmp_path: Path, fp: FakeProvider, url: str, prefix: str = "policyroute") -> Path:
    store = f"{{backend: redis, url: '{url}', prefix: {prefix}}}"
    return write_store_policy(tmp_path / "policy.yaml", fp.openai_base, store)


def _daily(store: RedisStore) -> tuple[Decimal, Decimal]:
    """(spent, reserved) of the policy's one budget line, read straight from Redis."""
    lines = store.scan(budget_prefix("daily"), now=time.time())
    assert len(lines) <= 1
    if not lines:
        return Decimal(0), Decimal(0)
    return lines[0].spent, lines[0].reserved


def _line(amount: str = "0.1") -> ReserveLine:
    return ReserveLine("daily/*/day:x", Decimal("1"), Decimal(amount), time.time() + 3600)


def _warm_up(store: RedisStore) -> None:
    """Connect and load the reserve script, so that the next script reply is the reserve's."""
    assert store.reserve([_line()], reservation_id="w", lease_seconds=60, now=0.0).ok
    store.release("w", now=0.0)


# ----------------------------------------------------------------------- refused before the call


def test_wrong_credentials_refuse_the_call_naming_the_url_without_the_password(
    tmp_path: Path, fake_provider: FakeProvider, redis_url: str
) -> None:
    port = urlsplit(redis_url).port
    url = f"redis://nobody:s3cret-pw@127.0.0.1:{port}/0"
    policy = _policy(tmp_path, fake_provider, url)

    with pytest.raises(BudgetStoreError) as caught:
        policyroute.completion(policy=policy, messages=MESSAGES)

    message = str(caught.value)
    assert f"redis://nobody:***@127.0.0.1:{port}/0" in message
    assert "s3cret-pw" not in message
    assert "invalid username-password" in message
    assert fake_provider.requests == []


def test_a_database_index_the_server_lacks_is_named(
    tmp_path: Path, fake_provider: FakeProvider, redis_url: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/99"
    policy = _policy(tmp_path, fake_provider, url)

    with pytest.raises(BudgetStoreError, match=r"redis://127\.0\.0\.1:\d+/99.*DB index"):
        policyroute.completion(policy=policy, messages=MESSAGES)
    assert fake_provider.requests == []


def test_an_unreachable_server_refuses_the_call_before_the_provider_is_asked(
    tmp_path: Path, fake_provider: FakeProvider, proxy: FaultyProxy
) -> None:
    proxy.refuse = True
    url = f"redis://:pw@127.0.0.1:{proxy.port}/0"
    policy = _policy(tmp_path, fake_provider, url)

    with pytest.raises(BudgetStoreError) as caught:
        policyroute.completion(policy=policy, messages=MESSAGES)

    assert f"redis://:***@127.0.0.1:{proxy.port}/0" in str(caught.value)
    assert "pw@" not in str(caught.value)
    assert fake_provider.requests == []


@pytest.mark.parametrize("url", ["http://:pw@127.0.0.1:6379/0", "redis://:pw@127.0.0.1:notaport/0"])
def test_a_malformed_url_is_a_store_error_not_a_raw_value_error(url: str) -> None:
    # A policy is refused such a URL when it is loaded (PR139); a store opened on one
    # directly fails as a store, naming it masked.
    with pytest.raises(BudgetStoreError, match=r"redis budget store .*:\*\*\*@127\.0\.0\.1") as e:
        RedisStore(url)
    assert ":pw@" not in str(e.value)


def test_a_policy_with_a_malformed_url_is_refused_before_the_call_without_the_password(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    policy = _policy(tmp_path, fake_provider, "redis://:pw@127.0.0.1:notaport/0")

    with pytest.raises(PolicyValidationError, match="PR139") as caught:
        policyroute.completion(policy=policy, messages=MESSAGES)
    assert ":pw@" not in str(caught.value)
    assert fake_provider.requests == []


def test_budget_status_reports_an_unreachable_store_as_an_error(
    tmp_path: Path,
    fake_provider: FakeProvider,
    proxy: FaultyProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.refuse = True
    policy = _policy(tmp_path, fake_provider, f"redis://:pw@127.0.0.1:{proxy.port}/0")

    assert main(["budget", "status", str(policy)]) == 1

    err = capsys.readouterr().err
    assert f"redis://:***@127.0.0.1:{proxy.port}/0" in err
    assert ":pw@" not in err


def test_budget_status_reports_a_malformed_url_as_an_error(
    tmp_path: Path, fake_provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, fake_provider, "http://:pw@127.0.0.1:6379/0")

    assert main(["budget", "status", str(policy)]) == 1
    err = capsys.readouterr().err
    assert "store.url" in err
    assert ":pw@" not in err


# ----------------------------------------------------------------------- lost replies, resets


def test_a_reserve_whose_reply_was_lost_is_retried_and_held_once(
    proxy: FaultyProxy, prefix: str
) -> None:
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        _warm_up(store)
        proxy.cut_replies = 1  # Redis runs the reserve; its reply never arrives

        result = store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=time.time())

        assert result.ok
        assert store.state("daily/*/day:x", now=time.time()).reserved == Decimal("0.1")
        store.settle("r1", Decimal("0.04"), now=time.time())
        state = store.state("daily/*/day:x", now=time.time())
        assert (state.spent, state.reserved) == (Decimal("0.04"), Decimal(0))
    finally:
        store.close()


def test_a_settle_whose_reply_was_lost_still_reports_what_it_did(
    proxy: FaultyProxy, prefix: str
) -> None:
    # The retried settle finds the reservation gone; it must still return the line states
    # (for the receipt) and the thresholds the first run crossed (they fire only once).
    store = RedisStore(proxy.url(), prefix=prefix)
    line = ReserveLine(
        "daily/*/day:x", Decimal("1"), Decimal("0.7"), time.time() + 3600, thresholds=(0.5,)
    )
    try:
        _warm_up(store)
        assert store.reserve([line], reservation_id="r1", lease_seconds=60, now=time.time()).ok
        proxy.cut_replies = 1

        states = store.settle("r1", Decimal("0.6"), now=time.time())

        assert [(s.spent, s.reserved, s.crossed) for s in states] == [
            (Decimal("0.6"), Decimal(0), (0.5,))
        ]
        assert store.state(line.key, now=time.time()).spent == Decimal("0.6")
    finally:
        store.close()


@pytest.mark.asyncio
async def test_async_calls_survive_a_connection_reset_between_them(
    proxy: FaultyProxy, prefix: str
) -> None:
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        result = await store.areserve(
            [_line()], reservation_id="r1", lease_seconds=60, now=time.time()
        )
        assert result.ok
        proxy.reset_all()  # a Redis restart or a network blip drops the pooled connection

        states = await store.asettle("r1", Decimal("0.04"), now=time.time())

        assert [(s.spent, s.reserved) for s in states] == [(Decimal("0.04"), Decimal(0))]
    finally:
        await store.aclose()


@pytest.mark.asyncio
async def test_an_async_reserve_whose_replies_were_lost_is_released(
    proxy: FaultyProxy, prefix: str
) -> None:
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        warm = await store.areserve([_line()], reservation_id="w", lease_seconds=60, now=0.0)
        assert warm.ok
        await store.arelease("w", now=0.0)
        proxy.cut_replies = 2  # the reserve and its retry both run; neither reply arrives

        with pytest.raises(BudgetStoreError, match="Connection closed"):
            await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=time.time())

        assert store.state("daily/*/day:x", now=time.time()).reserved == 0
        assert await store.areclaim_expired(time.time() + 3600) == 0
    finally:
        await store.aclose()


def test_a_reserve_that_failed_is_released_so_it_is_never_charged(
    tmp_path: Path, fake_provider: FakeProvider, proxy: FaultyProxy, prefix: str
) -> None:
    policy = _policy(tmp_path, fake_provider, proxy.url(), prefix)
    # Prime the connection pool and the scripts with one ordinary call.
    policyroute.completion(policy=policy, messages=MESSAGES)
    spent_before, _ = _daily(check := RedisStore(proxy.url(), prefix=prefix))
    check.close()
    proxy.cut_replies = 2  # the reserve runs in Redis, but neither it nor its retry answers

    with pytest.raises(BudgetStoreError):
        policyroute.completion(policy=policy, messages=MESSAGES)

    assert len(fake_provider.requests) == 1  # only the priming call reached the provider
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        assert _daily(store) == (spent_before, Decimal(0))
        assert store.reclaim_expired(time.time() + 3600) == 0
    finally:
        store.close()


# ----------------------------------------------------------------------- settle after the answer


def test_redis_lost_after_the_answer_keeps_the_answer_and_the_receipt_and_reclaims_later(
    tmp_path: Path,
    fake_provider: FakeProvider,
    proxy: FaultyProxy,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The answer is paid for, so it is returned; the reservation that could not be settled
    # stays held until its lease runs out, then is charged its worst case.
    slow = Fault.slow_first_token(0.5, Reply(text="late", usage=Usage(prompt=7, completion=3)))
    fake_provider.script("fake-a", slow)
    policy = _policy(tmp_path, fake_provider, proxy.url(), prefix)
    answers: list[object] = []

    def call() -> None:
        answers.append(policyroute.completion(policy=policy, messages=MESSAGES))

    caller = threading.Thread(target=call)
    with caplog.at_level(logging.ERROR, logger="policyroute"):
        caller.start()
        fake_provider.wait_for_requests(1)
        proxy.refuse = True
        proxy.reset_all()
        caller.join(timeout=30)
    assert not caller.is_alive()

    assert [a.choices[0].message.content for a in answers] == ["late"]  # type: ignore[attr-defined]
    assert any("settling budget reservation failed" in r.getMessage() for r in caplog.records)
    receipts = [json.loads(line) for line in (tmp_path / "receipts.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["status"]) for r in receipts] == [("attempt", "ok"), ("call", "ok")]
    assert receipts[0]["budgets"] == []
    assert f"redis budget store {proxy.url()}" in receipts[0]["budget_error"]
    proxy.refuse = False
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        spent, reserved = _daily(store)
        assert spent == 0
        assert reserved > 0  # still held: the budget stays covered
        # Leases end by the server's clock: no host's clock ends this one early.
        assert store.reclaim_expired(time.time() + 3600) == 0
        # Its lease runs out (minutes on the server, moved here to a second ago)...
        client = redis.Redis.from_url(proxy.url())
        try:
            seconds, micros = client.time()
            (rid,) = client.zrange("{" + prefix + "}:res", 0, -1)
            client.zadd("{" + prefix + "}:res", {rid: seconds + micros / 1e6 - 1}, xx=True)
        finally:
            client.close()
        assert store.reclaim_expired(time.time()) == 1  # ...and it is reclaimed
        assert _daily(store) == (reserved, Decimal(0))
    finally:
        store.close()


@pytest.mark.asyncio
async def test_async_redis_lost_after_the_answer_keeps_the_answer_and_records_the_error(
    tmp_path: Path, fake_provider: FakeProvider, proxy: FaultyProxy, prefix: str
) -> None:
    slow = Fault.slow_first_token(0.5, Reply(text="late", usage=Usage(prompt=7, completion=3)))
    fake_provider.script("fake-a", slow)
    policy = _policy(tmp_path, fake_provider, proxy.url(), prefix)

    pending = asyncio.ensure_future(policyroute.acompletion(policy=policy, messages=MESSAGES))
    await asyncio.to_thread(fake_provider.wait_for_requests, 1)
    proxy.refuse = True
    proxy.reset_all()
    answer = await asyncio.wait_for(pending, timeout=30)

    assert answer.choices[0].message.content == "late"
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    attempt = json.loads(lines[0])
    assert attempt["status"] == "ok"
    assert f"redis budget store {proxy.url()}" in attempt["budget_error"]
    proxy.refuse = False
    store = RedisStore(proxy.url(), prefix=prefix)
    try:
        assert _daily(store)[1] > 0  # held until its lease ends
    finally:
        store.close()
