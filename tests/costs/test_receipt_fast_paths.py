"""The cheap ways receipts format times, money and read responses give the reference answers."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from policyroute.costs import receipts
from policyroute.costs.receipts import _iso, _metadata_paths, _provider, format_usd
from policyroute.policy.model import BudgetSpec, WindowSpec

from .helpers import candidate


def _reference_iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


def _timestamps() -> list[float]:
    rng = random.Random(20260102)
    edges = [0, 0.0, -0.0, 1, -1, -0.5, -0.0004, 0.0005, 0.9995, 0.9999995, 1.9999995]
    edges += [-1.9999995, 1767225599.9996, 1767225599.9995, 1767225600.0004, 253402300799.999]
    values: list[float] = [float(e) for e in edges]
    for _ in range(4000):
        values.append(rng.uniform(-1e9, 4e9))
        # Milliseconds and microseconds at exact decimal boundaries, where rounding matters.
        values.append(rng.randrange(0, 4 * 10**9) + rng.randrange(10**4) / 10**4)
        values.append(rng.randrange(0, 4 * 10**9) + rng.randrange(10**7) / 10**7)
        values.append(rng.randrange(0, 4 * 10**9) + 0.9999995)
    return [v for x in values for v in (x, math.nextafter(x, math.inf), math.nextafter(x, -1e12))]


def test_iso_matches_datetime_to_the_millisecond() -> None:
    mismatches = [ts for ts in _timestamps() if _iso(ts) != _reference_iso(ts)]
    assert mismatches == []


def test_iso_cache_stays_bounded() -> None:
    for second in range(1000):
        _iso(1_700_000_000 + second + 0.5)
    assert len(receipts._ISO_SECONDS) <= receipts._ISO_SECONDS_MAX
    assert _iso(1_700_000_000.25) == "2023-11-14T22:13:20.250+00:00"


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf])
def test_iso_rejects_what_datetime_rejects(ts: float) -> None:
    with pytest.raises((ValueError, OverflowError)):
        _reference_iso(ts)
    with pytest.raises((ValueError, OverflowError)):
        _iso(ts)


def test_format_usd_matches_fixed_point_formatting() -> None:
    rng = random.Random(7)
    amounts = [Decimal(v) for v in ("0", "-0", "0E-20", "-0E+5", "1E+10", "NaN", "1E-7")]
    amounts += [Decimal("-0.0000005"), Decimal("0.0000005"), Decimal("999999999999999.9999995")]
    amounts += [
        Decimal(rng.randrange(-(10**12), 10**12)).scaleb(rng.randrange(-15, 8))
        for _ in range(20000)
    ]
    for amount in amounts:
        assert format_usd(amount) == f"{amount.quantize(Decimal('0.000001')):f}", amount


class _Reply(pydantic.BaseModel):
    """Shaped like litellm's ModelResponse: hidden params are a pydantic private attribute."""

    id: str = "r"
    _hidden_params: dict[str, Any] = pydantic.PrivateAttr(default_factory=dict)


class _Plain:
    def __init__(self, hidden: Any) -> None:
        self._hidden_params = hidden


def test_provider_reads_hidden_params_of_pydantic_and_plain_responses() -> None:
    cand = candidate("openai/gpt-4o-mini")
    reply = _Reply()
    reply._hidden_params["custom_llm_provider"] = "azure"
    assert _provider(cand, reply) == "azure"
    assert _provider(cand, _Reply()) == "openai"  # empty hidden params: the model's prefix
    assert _provider(cand, _Plain({"custom_llm_provider": "groq"})) == "groq"
    assert _provider(cand, _Plain(None)) == "openai"
    assert _provider(cand, None) == "openai"
    assert _provider(candidate("gpt-4o-mini"), None) == "openai"  # from litellm's price map


def _budget(per: str | None) -> BudgetSpec:
    return BudgetSpec(name="b", limit_usd=Decimal(1), window=WindowSpec(kind="day"), per=per)


def test_metadata_paths_follow_each_budgets_tuple() -> None:
    first = (_budget("metadata.user_id"), _budget(None), _budget("metadata.org.team"))
    second = (_budget("metadata.tenant"),)
    assert _metadata_paths(first) == ("user_id", "org.team")
    assert _metadata_paths(second) == ("tenant",)
    assert _metadata_paths(first) == ("user_id", "org.team")
    # A list may change after the call: read afresh each time, never remembered.
    budgets = [_budget("metadata.a")]
    assert _metadata_paths(budgets) == ("a",)
    budgets[0] = _budget("metadata.b")
    assert _metadata_paths(budgets) == ("b",)
