"""How a group orders its members for one request.

Every strategy returns a permutation of its input; none drops a member (filtering by
capability and availability happens afterwards). All sorts are stable, so ties keep the order
the group lists its members in.

- ``ordered``: as listed.
- ``cheapest``: by input + output price per token; unpriced members last.
- ``fastest``: members without latency data first, in listed order, then the rest by observed
  latency. Trying unmeasured deployments first is deliberate: otherwise a deployment that has
  never been tried would never be measured. With no data at all this is the listed order.
  An unmeasured member that a call is already trying comes after the measured ones (but
  before those that only failed): one call explores it, instead of every call made until its
  first answer comes back. Among members being explored, the one with the fewest calls in
  flight comes first, so concurrent first calls spread over them. Stats that offer
  ``ranking_latency`` (as
  :class:`~policyroute.routing.stats.DeploymentStatsTracker` does) are ranked by it: failures
  count against a deployment and old observations go stale. A
  :class:`~policyroute.routing.stats.DeploymentStatsTracker` ranks streamed requests by time
  to first token and unstreamed ones by the time to an answer of typical length, or of the
  request's output limit when that is shorter.
- ``weighted``: a weighted random order without replacement (each position drawn in
  proportion to the remaining weights); zero-weight members last, in listed order.
- ``least_busy``: by calls in flight, fewest first.

The functions are generic over the items they order (the compiler orders candidate entries and
nested groups with them) and take key functions.

Example:
    >>> order_cheapest(["a", "b", "c"], {"a": 3.0, "b": None, "c": 1.0}.get)
    ['c', 'a', 'b']
"""

from __future__ import annotations

import functools
import inspect
import math
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TypeVar

from policyroute.errors import PolicyError
from policyroute.policy.model import Strategy
from policyroute.routing.decision import DeploymentStats
from policyroute.routing.stats import DeploymentStatsTracker

__all__ = [
    "STRATEGIES",
    "order_cheapest",
    "order_fastest",
    "order_least_busy",
    "order_members",
    "order_weighted",
    "ranking_latency",
]

T = TypeVar("T")

STRATEGIES: Final[tuple[Strategy, ...]] = (
    "ordered",
    "cheapest",
    "fastest",
    "weighted",
    "least_busy",
)


def order_cheapest(items: Sequence[T], price: Callable[[T], Decimal | float | None]) -> list[T]:
    """Cheapest first by ``price`` (per token, input + output); ``None`` prices last.

    Example:
        >>> order_cheapest(["x", "y"], {"x": None, "y": 2.0}.get)
        ['y', 'x']
    """
    priced = [(p, i, item) for i, item in enumerate(items) if (p := price(item)) is not None]
    priced.sort(key=lambda t: (t[0], t[1]))
    unpriced = [item for item in items if price(item) is None]
    return [item for _, _, item in priced] + unpriced


def order_fastest(
    items: Sequence[T],
    latency: Callable[[T], float | None],
    in_flight: Callable[[T], int] | None = None,
) -> list[T]:
    """Unmeasured first (listed order), then lowest observed latency first.

    With ``in_flight``, an unmeasured item with calls in flight is being measured already: it
    comes after the measured items with a finite latency, before those at ``inf`` (only
    failures), so that concurrent calls do not all go to a deployment nobody knows yet; among
    such items, the one with the fewest calls in flight comes first (ties: listed order), so
    concurrent calls spread over the deployments being explored.

    Example:
        >>> order_fastest(["a", "b", "c"], {"a": 0.9, "c": 0.2}.get)
        ['b', 'c', 'a']
        >>> order_fastest(["a", "b", "c"], {"c": 0.2}.get, lambda x: int(x == "a"))
        ['b', 'c', 'a']
        >>> order_fastest(["a", "b"], {}.get, {"a": 2, "b": 1}.get)
        ['b', 'a']
    """
    unknown: list[T] = []
    ranked: list[tuple[int, float, int, T]] = []
    for i, item in enumerate(items):
        seconds = latency(item)
        if seconds is None:
            busy = 0 if in_flight is None else in_flight(item)
            if busy > 0:
                # being explored: among those, the fewest calls in flight first, so that
                # concurrent first calls spread over every unmeasured member instead of all
                # but one piling onto the first listed
                ranked.append((1, float(busy), i, item))
            else:
                unknown.append(item)
        elif math.isinf(seconds):
            ranked.append((2, 0.0, i, item))
        else:
            ranked.append((0, seconds, i, item))
    ranked.sort(key=lambda t: (t[0], t[1], t[2]))
    return unknown + [item for *_, item in ranked]


def order_weighted(items: Sequence[T], weight: Callable[[T], float], rng: random.Random) -> list[T]:
    """A random order where each next item is drawn with probability proportional to weight.

    Uses Efraimidis-Spirakis keys (``u ** (1 / w)``, largest first), which gives exactly that
    distribution with one random draw per item. The keys are compared as logarithms
    (``log(u) / w``, the same order): ``u ** (1 / w)`` underflows to 0.0 for small weights
    (half the time at ``w = 0.001``), and the tie then went to the member listed first.
    Zero-weight items come last, in listed order.

    Example:
        >>> order_weighted(["a", "b", "z"], {"a": 1.0, "b": 1.0, "z": 0.0}.get,
        ...                random.Random(7))[-1]
        'z'
    """
    keyed: list[tuple[float, int, T]] = []
    zero: list[T] = []
    weights = [weight(item) for item in items]
    # Weights are relative: each is taken as a share of the largest, so that weights too small
    # for log(u) / w (1e-320 each: every key -inf, the first listed always first) or too large
    # still order by their ratios.
    top = max((w for w in weights if w > 0), default=1.0)
    for i, (item, w) in enumerate(zip(items, weights, strict=True)):
        if w > 0:
            u = rng.random()
            share = w / top
            keyed.append((math.log(u) / share if u > 0.0 and share > 0.0 else -math.inf, -i, item))
        else:
            zero.append(item)
    keyed.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [item for _, _, item in keyed] + zero


def order_least_busy(items: Sequence[T], in_flight: Callable[[T], int]) -> list[T]:
    """Fewest calls in flight first; ties keep the listed order.

    Example:
        >>> order_least_busy(["a", "b", "c"], {"a": 2, "b": 0, "c": 2}.get)
        ['b', 'a', 'c']
    """
    return sorted(items, key=in_flight)


def order_members(
    strategy: Strategy,
    items: Sequence[T],
    *,
    alias: Callable[[T], str],
    price: Callable[[T], Decimal | float | None],
    weight: Callable[[T], float],
    stats: DeploymentStats | None,
    rng: random.Random,
    stream: bool = False,
    max_output_tokens: Callable[[str], int | None] | None = None,
) -> list[T]:
    """Order ``items`` by ``strategy``; ``alias`` names the deployment ``stats`` is asked about.

    Without ``stats``, ``fastest`` and ``least_busy`` keep the listed order. ``fastest`` reads
    ``stats.ranking_latency`` when the stats have it, ``stats.latency`` otherwise, and
    ``stats.in_flight`` to explore an unmeasured member with one call at a time (a tracker
    counts only the calls that may be of the request's kind); ``stream``
    says the request streams and ``max_output_tokens`` gives, per deployment alias, the
    output limit an unstreamed request sends it (see :func:`ranking_latency`).

    Example:
        >>> order_members("cheapest", ["a", "b"], alias=str, price={"a": 2, "b": 1}.get,
        ...               weight=lambda _: 1.0, stats=None, rng=random.Random(0))
        ['b', 'a']
    """
    if strategy == "ordered":
        return list(items)
    if strategy == "cheapest":
        return order_cheapest(items, price)
    if strategy == "weighted":
        return order_weighted(items, weight, rng)
    if strategy == "fastest":
        if stats is None:
            return list(items)
        seconds = ranking_latency(stats, stream, max_output_tokens)
        in_flight: Callable[[str], int] = stats.in_flight
        if isinstance(stats, DeploymentStatsTracker):
            # only a call of the request's kind measures what the request is ranked by
            tracker = stats
            in_flight = lambda name: tracker.in_flight(name, stream=stream)  # noqa: E731
        return order_fastest(
            items, lambda item: seconds(alias(item)), lambda item: in_flight(alias(item))
        )
    if strategy == "least_busy":
        if stats is None:
            return list(items)
        return order_least_busy(items, lambda item: stats.in_flight(alias(item)))
    raise PolicyError(f"unknown group strategy {strategy!r}")


def ranking_latency(
    stats: DeploymentStats,
    stream: bool = False,
    max_output_tokens: Callable[[str], int | None] | None = None,
) -> Callable[[str], float | None]:
    """What ``fastest`` ranks a deployment by, for a streamed request or not.

    A :class:`~policyroute.routing.stats.DeploymentStatsTracker` tells the two apart (time to
    first token, time to a whole answer). Other stats are asked ``stats.ranking_latency`` if
    they offer it (the protocol predates it, and user implementations need not have it),
    else ``latency``; neither is told whether the request streams.

    ``max_output_tokens`` maps a deployment alias to the output limit an unstreamed request
    sends it (``None``: no limit); it is ignored for streams. The tracker then compares at
    that length when it is shorter than the typical one; other stats are passed it as the
    keyword ``max_output_tokens`` only if their ``ranking_latency`` names such a parameter.

    Example:
        >>> from policyroute.routing.stats import DeploymentStatsTracker
        >>> stats = DeploymentStatsTracker()
        >>> stats.record_failure("a")
        >>> stats.latency("a"), ranking_latency(stats)("a")
        (None, inf)
        >>> stats.record_latency("b", 2.0, first_token=0.3)
        >>> ranking_latency(stats)("b"), ranking_latency(stats, stream=True)("b")
        (None, 0.3)
    """
    bound = None if stream else max_output_tokens
    if isinstance(stats, DeploymentStatsTracker):
        tracker = stats
        if stream:
            return lambda alias: tracker.ranking_latency(alias, stream=True)
        if bound is not None:
            return lambda alias: tracker.ranking_latency(alias, max_output_tokens=bound(alias))
        return tracker.ranking_latency
    ranking: Callable[..., float | None] | None = getattr(stats, "ranking_latency", None)
    if ranking is None:
        return stats.latency
    if bound is not None and _takes_output_bound(ranking):
        ranked = ranking
        return lambda alias: ranked(alias, max_output_tokens=bound(alias))
    return ranking


def _takes_output_bound(method: Callable[..., Any]) -> bool:
    """Whether a stats object's ``ranking_latency`` names a ``max_output_tokens`` parameter
    (a catch-all ``**kwargs`` does not count: it may not expect one).

    Example:
        >>> class Stats:
        ...     def ranking_latency(self, alias, *, max_output_tokens=None): ...
        >>> _takes_output_bound(Stats().ranking_latency), _takes_output_bound(len)
        (True, False)
    """
    function = getattr(method, "__func__", method)  # one answer per class, not per object
    try:
        return _names_output_bound(function)
    except TypeError:  # an unhashable callable: not cached
        return _names_output_bound.__wrapped__(function)


@functools.lru_cache(maxsize=128)
def _names_output_bound(function: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(function).parameters.get("max_output_tokens")
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
