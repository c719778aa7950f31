"""Windows and scopes: calendar boundaries across DST and month ends, rolling buckets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from policyroute.budgets.windows import (
    line_key,
    parse_line_key,
    scope_values,
    window_for,
)
from policyroute.policy.model import WindowSpec
from policyroute.request import Request


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(
    ("moment", "key", "hours"),
    [
        ("2025-03-09T12:00", "day:2025-03-09", 23),  # spring forward
        ("2025-11-02T12:00", "day:2025-11-02", 25),  # fall back
        ("2025-11-02T00:30", "day:2025-11-02", 25),
        ("2025-06-01T23:59", "day:2025-06-01", 24),
    ],
)
def test_days_follow_the_local_calendar_across_dst(moment: str, key: str, hours: int) -> None:
    tz = "America/New_York"
    window = window_for(WindowSpec(kind="day", timezone=tz), at(moment, tz))
    assert window.key == key
    assert window.end - window.start == hours * 3600
    assert window.start == at(key[4:] + "T00:00", tz)


def test_a_day_whose_midnight_does_not_exist_starts_at_the_jump() -> None:
    # Chile moved clocks from 2024-09-08 00:00 straight to 01:00.
    tz = "America/Santiago"
    window = window_for(WindowSpec(kind="day", timezone=tz), at("2024-09-08T12:00", tz))
    assert window.key == "day:2024-09-08"
    assert window.end - window.start == 23 * 3600
    assert window.start == at("2024-09-08T01:00", tz)


def test_the_same_instant_is_a_different_day_in_another_zone() -> None:
    moment = at("2025-01-01T03:00")
    assert window_for(WindowSpec(kind="day"), moment).key == "day:2025-01-01"
    la = window_for(WindowSpec(kind="day", timezone="America/Los_Angeles"), moment)
    assert la.key == "day:2024-12-31"


@pytest.mark.parametrize(
    ("moment", "key", "start", "end"),
    [
        ("2025-01-31T23:59", "month:2025-01", "2025-01-01", "2025-02-01"),
        ("2024-02-29T10:00", "month:2024-02", "2024-02-01", "2024-03-01"),
        ("2025-12-31T23:00", "month:2025-12", "2025-12-01", "2026-01-01"),
    ],
)
def test_months_end_on_the_last_day(moment: str, key: str, start: str, end: str) -> None:
    window = window_for(WindowSpec(kind="month"), at(moment))
    assert (window.key, window.start, window.end) == (key, at(start + "T00:00"), at(end + "T00:00"))


def test_weeks_are_iso_weeks_starting_monday() -> None:
    # 2025-01-01 is a Wednesday in ISO week 2025-W01, which starts on 2024-12-30.
    window = window_for(WindowSpec(kind="week"), at("2025-01-01T12:00"))
    assert window.key == "week:2025-W01"
    assert window.start == at("2024-12-30T00:00")
    assert window.end == at("2025-01-06T00:00")
    sunday = window_for(WindowSpec(kind="week"), at("2025-01-05T23:59"))
    assert sunday.key == "week:2025-W01"


def test_week_spanning_dst_is_one_hour_short() -> None:
    tz = "Europe/Berlin"
    window = window_for(WindowSpec(kind="week", timezone=tz), at("2025-03-30T12:00", tz))
    assert window.end - window.start == 7 * 86400 - 3600


def test_calendar_state_outlives_its_window_by_a_margin() -> None:
    window = window_for(WindowSpec(kind="day"), at("2025-05-05T10:00"))
    assert window.expires_at > window.end
    assert window.persistent


def test_rolling_windows_use_sixty_buckets() -> None:
    window = window_for(WindowSpec(kind="rolling", seconds=6 * 3600), 1_000_000.0)
    assert window.key == "rolling:21600s"
    assert window.bucket_seconds == 360
    assert window.span_seconds == 21600
    assert window.expires_at >= 1_000_000 + 21600


def test_call_windows_keep_no_state() -> None:
    assert not window_for(WindowSpec(kind="call"), 5.0).persistent


def test_line_keys_round_trip_awkward_scopes() -> None:
    key = line_key("per user", "a/b c%", "day:2025-01-01")
    assert key.count("/") == 2
    assert parse_line_key(key) == ("per user", "a/b c%", "day:2025-01-01")


def test_scopes() -> None:
    req = Request(messages=[], metadata={"user": {"id": 42}, "team": "x"}, tags=["a", "b"])
    assert scope_values(None, req, route="r", model="m") == ("*",)
    assert scope_values("metadata.user.id", req, route="r", model="m") == ("42",)
    assert scope_values("metadata.team", req, route="r", model="m") == ("x",)
    assert scope_values("metadata.nope", req, route="r", model="m") == ("<none>",)
    assert scope_values("tags", req, route="r", model="m") == ("a", "b")
    assert scope_values("tags", Request(messages=[]), route="r", model="m") == ("<none>",)
    assert scope_values("route", req, route="code", model="m") == ("code",)
    assert scope_values("model", req, route="r", model="mini") == ("mini",)


@pytest.mark.parametrize(
    ("kind", "tz", "start"),
    [
        ("day", "America/New_York", "2025-11-02T00:00"),  # a 25-hour day
        ("day", "America/Santiago", "2024-09-08T01:00"),  # starts at the jump
        ("week", "Europe/Paris", "2025-03-24T00:00"),  # spans spring forward
        ("month", "Asia/Kolkata", "2025-02-01T00:00"),
    ],
)
def test_cached_calendar_windows_match_a_fresh_computation(kind: str, tz: str, start: str) -> None:
    # Walk across the window and both its edges in random order, so each call may hit the
    # cache filled by a neighbouring window; every answer must equal the uncached one.
    import random

    from policyroute.budgets import windows

    spec = WindowSpec(kind=kind, timezone=tz)  # type: ignore[arg-type]
    first = windows._calendar_window(spec, at(start, tz))
    moments = [first.start - 1, first.start - 0.001, first.start, first.end - 0.001, first.end]
    moments += [first.start + i * (first.end - first.start) / 50 for i in range(50)]
    random.Random(7).shuffle(moments)
    for moment in moments * 2:
        assert window_for(spec, moment) == windows._calendar_window(spec, moment)
    assert window_for(spec, first.start) == first
    assert window_for(spec, first.end) != first
