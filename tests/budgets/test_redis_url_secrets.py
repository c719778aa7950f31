"""A Redis URL's password never reaches a message, also when it is written unencoded.

Generated passwords often hold ``/`` (base64), ``?`` or ``#``; written into the URL as they
are, they end its authority early, so the password no longer parses as one (redis-py then
reads part of it as the port). The store refuses such a URL, and its message must still
mask every part of the password.
"""

from __future__ import annotations

import pytest

from policyroute.budgets.stores.redis import RedisStore, redacted_url
from policyroute.errors import BudgetStoreError

PASSWORD = "Xy7q/9Rk+Tz?Lm#Wv2"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:Xy7q/9Rk@cache:6379/0",
        "redis://app:Xy7q/9Rk+Tz@cache:6379/0",
        "redis://:Xy7q?9Rk@cache:6379/0",
        "rediss://default:Xy7q#9Rk@cache:6380/0",
        f"redis://app:{PASSWORD}@cache:6379/0",
        "unix://app:Xy7q/9Rk@/run/redis.sock?db=1",
    ],
)
def test_an_unencoded_password_is_masked_whole_in_the_url_and_the_error(url: str) -> None:
    secret = url.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
    pieces = [p for p in secret.replace("?", "/").replace("#", "/").split("/") if p]

    shown = redacted_url(url)
    messages = []
    try:
        store = RedisStore(url)  # redis-py may accept it, reading another address
    except BudgetStoreError as exc:
        messages.append(str(exc))
    else:
        messages.append(repr(store))
        assert url.startswith("unix://")  # connecting fails locally, touching no network
        with pytest.raises(BudgetStoreError) as caught:
            store.state("k", now=0.0)  # the socket path redis-py read holds part of it
        messages.append(str(caught.value))
        store.close()

    for text in (shown, *messages):
        assert "***" in text
        for piece in pieces:
            assert piece not in text
    assert shown.endswith(url.rsplit("@", 1)[1])  # where it points is still shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://app:s3cret@cache:6379/2", "redis://app:***@cache:6379/2"),
        ("redis://:s3cret@cache:6379/2", "redis://:***@cache:6379/2"),
        ("redis://cache:6379/0?password=s3cret&db=2", "redis://cache:6379/0?password=***&db=2"),
        ("redis://cache:6379/0?password=p@ss", "redis://cache:6379/0?password=***"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
        ("redis://app@cache:6379/0", "redis://app@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_well_formed_urls_keep_their_shape(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
