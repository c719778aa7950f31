"""Every password a Redis store URL of any form carries is masked in its repr and its errors:
the data nodes' (``user:password@``, ``?password=``), the Sentinels' (``sentinel_password``)
and a TLS client key's passphrase (``ssl_password``)."""

from __future__ import annotations

import pytest

from policyroute.budgets.stores.redis import RedisStore, redacted_url
from policyroute.errors import BudgetStoreError

SECRETS = ("Dat4Pass", "Sent1Pass", "Key5Pass")


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://app:Dat4Pass@127.0.0.1:1,127.0.0.1:2/",
        "rediss+cluster://:Dat4Pass@127.0.0.1:1/?ssl_password=Key5Pass",
        "redis+sentinel://:Dat4Pass@127.0.0.1:1/svc/0?sentinel_password=Sent1Pass",
        "rediss+sentinel://127.0.0.1:1/svc?password=Dat4Pass&sentinel_password=Sent1Pass",
        "rediss+sentinel://127.0.0.1:1/svc?ssl_password=Key5Pass&sentinel_password=Sent1Pass",
        "rediss://:Dat4Pass@127.0.0.1:1/0?ssl_password=Key5Pass",
        "rediss://127.0.0.1:1/0?ssl_certfile=c.pem&ssl_password=Key5Pass&db=0",
    ],
)
def test_no_password_of_any_url_form_reaches_a_message(url: str) -> None:
    messages = [redacted_url(url)]
    try:
        store = RedisStore(url, socket_timeout=0.5)
    except BudgetStoreError as exc:  # a query argument this form's clients do not take
        messages.append(str(exc))
    else:
        messages.append(repr(store))
        with pytest.raises(BudgetStoreError) as caught:
            store.state("k", now=0.0)  # port 1 on loopback: refused at once
        messages.append(str(caught.value))
        store.close()
    for text in messages:
        assert "***" in text
        for secret in SECRETS:
            assert secret not in text, text


def test_a_tls_key_passphrase_is_masked_and_the_rest_of_the_query_kept() -> None:
    assert (
        redacted_url("rediss://cache:6380/0?ssl_password=Key5Pass&db=2")
        == "rediss://cache:6380/0?ssl_password=***&db=2"
    )
