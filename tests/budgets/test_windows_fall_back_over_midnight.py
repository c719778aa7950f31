"""Calendar windows where clocks fall back across midnight (St. John's until 2011: at 00:01
back to 23:01), so the local date runs backwards for an hour: every instant lies inside the
window it is charged to, and a process computes the same window whatever it computed before."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from policyroute.budgets import windows
from policyroute.budgets.windows import window_for
from policyroute.policy.model import WindowSpec

ZONE = "America/St_Johns"
# 2009-11-01 00:00 NDT (-02:30): the first minute of November, then clocks went back to
# 2009-10-31 23:01 NST (-03:30) at 00:01.
NOVEMBER = datetime(2009, 11, 1, 2, 30, tzinfo=ZoneInfo("UTC")).timestamp()
# Half an hour later: the local clock reads 2009-10-31 23:30 again.
REPEATED = NOVEMBER + 1800


@pytest.mark.parametrize(("kind", "key"), [("day", "day:2009-11-01"), ("month", "month:2009-11")])
def test_an_instant_after_midnight_that_reads_the_day_before_is_in_the_next_window(
    kind: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = WindowSpec(kind=kind, timezone=ZONE)  # type: ignore[arg-type]
    assert datetime.fromtimestamp(REPEATED, ZoneInfo(ZONE)).day == 31

    monkeypatch.setattr(windows, "_CALENDAR_CACHE", {})
    cold = window_for(spec, REPEATED)
    monkeypatch.setattr(windows, "_CALENDAR_CACHE", {})
    window_for(spec, NOVEMBER)
    warm = window_for(spec, REPEATED)

    assert cold.start <= REPEATED < cold.end
    assert cold == warm
    assert cold.key == key


def test_the_days_around_the_fall_back_tile_without_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = WindowSpec(kind="day", timezone=ZONE)
    seen: list[windows.Window] = []
    for moment in range(int(NOVEMBER) - 7200, int(NOVEMBER) + 7200, 300):
        monkeypatch.setattr(windows, "_CALENDAR_CACHE", {})
        window = window_for(spec, float(moment))
        assert window.start <= moment < window.end
        if not seen or seen[-1] != window:
            seen.append(window)

    assert [w.key for w in seen] == ["day:2009-10-31", "day:2009-11-01"]
    assert seen[0].end == seen[1].start == NOVEMBER
