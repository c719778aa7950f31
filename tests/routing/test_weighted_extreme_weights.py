"""A weighted order depends on the weights' ratios only, whatever their scale.

The schema takes any weight of 0 or more. Keys ``log(u) / w`` overflowed to -inf for weights
near the smallest float, so every member tied and the first listed always came first.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from policyroute.routing.strategies import order_weighted


def _firsts(weights: dict[str, float], draws: int = 4000) -> Counter[str]:
    rng = random.Random(11)
    return Counter(order_weighted(list(weights), weights.__getitem__, rng)[0] for _ in range(draws))


@pytest.mark.parametrize("scale", [1e-320, 1e-300, 1.0, 1e300])
def test_first_places_follow_the_ratio_of_the_weights_at_any_scale(scale: float) -> None:
    firsts = _firsts({"a": 1 * scale, "b": 3 * scale})
    assert 800 < firsts["a"] < 1200  # a quarter of 4000, well inside chance
    assert firsts["a"] + firsts["b"] == 4000


def test_a_zero_weight_still_comes_last() -> None:
    rng = random.Random(3)
    order = order_weighted(["z", "a", "b"], {"z": 0.0, "a": 5e-324, "b": 5e-324}.get, rng)
    assert order[-1] == "z"
