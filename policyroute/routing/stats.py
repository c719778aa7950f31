"""Runtime observations of deployments: latency, failures, calls in flight, availability.

:class:`DeploymentStatsTracker` implements
:class:`~policyroute.routing.decision.DeploymentStats`, which the ``fastest`` and
``least_busy`` strategies read and routing consults to move circuit-open deployments last.
It is thread-safe; one tracker is shared by every call of one executor: in a process, the
calls on one policy and accounting (see :mod:`policyroute._shared_cache`), not every call of the
process. Its keys are a policy's model aliases, which name a deployment within that policy only.

``fastest`` ranks by :meth:`DeploymentStatsTracker.ranking_latency`, not by the bare latency,
and by what the caller waits for:

- a streamed request by the time to the first token: a stream's total time says more about
  how long the answer was than about the deployment, and the first token is what a streaming
  user waits for; a stream its consumer closed after the first token counts it too;
- an unstreamed request by the time to a whole answer, fitted as a fixed part plus a part per
  output token (:mod:`~policyroute.routing.answer_time`) and read at one answer length for
  every deployment: the moving mean of output tokens over all unstreamed answers the tracker
  has seen, the length the next answer most likely has, or the request's output limit when
  that is shorter (``max_output_tokens``: an answer capped at 20 tokens is compared at 20). A
  deployment that happened to get long answers no longer looks slow, and one with a slow start
  but fast generation is not mistaken for one with a quick start and slow generation;
- each kind is measured by its own calls: a deployment that only streamed so far is
  unmeasured for unstreamed requests, and ``fastest`` tries it once (answers of unknown
  length count as of that typical length);
- a failure counts as one more attempt to make, so the figure is divided by the observed
  success rate (a moving average shared by both kinds), and a deployment that has only ever
  failed ranks after every deployment that has answered;
- a call its caller cancelled while the deployment kept it waiting is a lower bound: the wait
  moves the figure of its kind up when longer than it, and gives an unmeasured deployment its
  figure when no deployment is known to take longer (:meth:`DeploymentStatsTracker.record_wait`);
- observations go stale (``stale_after``, 5 minutes by default): a deployment nobody has tried
  for that long is unmeasured again, so ``fastest`` tries it once more instead of remembering
  one slow answer for ever, and sees it recover. Each kind's figure goes stale on its own.
- an unmeasured deployment with a call in flight is being measured already, and ``fastest``
  sends other calls elsewhere meanwhile; a call started with its kind (``start(alias,
  stream=...)``) measures only that kind, so streams in flight on a deployment never
  measured unstreamed do not keep unstreamed requests from exploring it (nor the reverse).

:meth:`DeploymentStatsTracker.latency`, the protocol's figure, stays the moving average of
every answered attempt's latency.

Example:
    >>> stats = DeploymentStatsTracker()
    >>> with stats.track("mini"):
    ...     stats.in_flight("mini")
    1
    >>> stats.in_flight("mini"), stats.latency("mini") is not None
    (0, True)
    >>> stats.record_latency("mini", 4.0, first_token=0.25)
    >>> stats.ranking_latency("mini", stream=True)
    0.25
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Final, NamedTuple, TypeVar

from policyroute.errors import PolicyRouteError
from policyroute.routing.answer_time import AnswerFit

__all__ = ["DeploymentStatsTracker"]

_PRUNE_FLOOR: Final = 64

K = TypeVar("K", bound=Hashable)


class _Seen(NamedTuple):
    """What is known of one deployment; replaced whole, so a reader never sees half of it.
    (A named tuple: built once per observation, and much faster to build than a frozen
    dataclass.)"""

    latency: float | None  # moving average of answered latencies, streamed or not
    failing: float  # moving average of 1 per failure, 0 per answer
    at: float  # clock time of the newest observation
    first_token: float | None  # moving average of streamed answers' time to first token
    first_token_at: float  # clock time of the newest streamed answer
    answer: AnswerFit | None  # unstreamed answers: seconds against output tokens
    answer_at: float  # clock time of the newest unstreamed answer


class DeploymentStatsTracker:
    """Moving averages of latency and failures, and in-flight counts, per deployment alias.

    Args:
        alpha: weight of the newest observation in the moving averages (0 < alpha <= 1).
        availability: a predicate saying whether a deployment may be used now; the executor's
            circuit breaker plugs in here. Without one every deployment is available.
        stale_after: seconds after which a deployment's observations no longer rank it
            (``None``: never); a call already in flight on it keeps them until it ends.
        clock: monotonic seconds (injectable for tests).
    """

    __slots__ = (
        "_alpha",
        "_availability",
        "_clock",
        "_in_flight",
        "_kinds",
        "_lock",
        "_prune_at",
        "_seen",
        "_stale_after",
        "_typical_tokens",
    )

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        availability: Callable[[str], bool] | None = None,
        stale_after: float | None = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise PolicyRouteError(f"alpha must be in (0, 1], got {alpha!r}")
        if stale_after is not None and not stale_after > 0:
            raise PolicyRouteError(f"stale_after must be > 0 seconds, got {stale_after!r}")
        self._alpha = alpha
        self._availability = availability
        self._stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}
        self._in_flight: dict[str, int] = {}
        # of those, the calls started saying whether they stream: (alias, stream) -> count
        self._kinds: dict[tuple[str, bool], int] = {}
        self._prune_at = _PRUNE_FLOOR
        # moving mean of output tokens over every unstreamed answer: the length at which
        # deployments' answer times are compared (None until an answer's length is known)
        self._typical_tokens: float | None = None

    # ------------------------------------------------------------------ DeploymentStats

    def latency(self, alias: str) -> float | None:
        """The moving average of answered latencies in seconds, or ``None`` before any."""
        seen = self._seen.get(alias)
        return None if seen is None else seen.latency

    def in_flight(self, alias: str, *, stream: bool | None = None) -> int:
        """Calls started and not yet finished on ``alias``; with ``stream``, those that may
        be of that kind (every call but those started as the other kind).

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.start("a", stream=True); stats.start("a")
            >>> stats.in_flight("a"), stats.in_flight("a", stream=False)
            (2, 1)
        """
        count = self._in_flight.get(alias, 0)
        if stream is None or not self._kinds:
            return count
        return max(0, count - self._kinds.get((alias, not stream), 0))

    def is_available(self, alias: str) -> bool:
        """What the availability predicate says (``True`` without one)."""
        predicate = self._availability
        return True if predicate is None else bool(predicate(alias))

    # ------------------------------------------------------------------ what fastest reads

    def time_to_first_token(self, alias: str) -> float | None:
        """The moving average of streamed answers' time to first token, or ``None``.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.record_latency("a", 3.0, first_token=0.5)
            >>> stats.time_to_first_token("a"), stats.latency("a")
            (0.5, 3.0)
        """
        seen = self._seen.get(alias)
        return None if seen is None else seen.first_token

    def answer_fit(self, alias: str) -> AnswerFit | None:
        """The fixed and per-token parts fitted to the unstreamed answers, or ``None``.

        Example:
            >>> stats = DeploymentStatsTracker(alpha=0.5)
            >>> stats.record_latency("a", 1.1, output_tokens=100)
            >>> stats.record_latency("a", 2.1, output_tokens=300)
            >>> round(stats.answer_fit("a").per_token, 4)  # 1 s more for 200 tokens more
            0.005
        """
        seen = self._seen.get(alias)
        return None if seen is None else seen.answer

    @property
    def typical_output_tokens(self) -> float:
        """The answer length unstreamed rankings compare at: the moving mean of output
        tokens over every unstreamed answer of known length (0 before any)."""
        return self._typical_tokens or 0.0

    def ranking_latency(
        self, alias: str, *, stream: bool = False, max_output_tokens: int | None = None
    ) -> float | None:
        """The figure ``fastest`` orders by: expected seconds to the first token of a
        streamed answer (``stream``), or to a whole unstreamed answer of the typical length,
        or of ``max_output_tokens`` (the request's output limit) when that is shorter.

        ``None`` when nothing fresh of that kind is known (never observed, or stale with no
        call in flight); ``inf`` when every fresh observation is a failure; otherwise the
        figure over the success rate.

        Example:
            >>> stats = DeploymentStatsTracker(alpha=0.5)
            >>> stats.record_failure("a"); stats.ranking_latency("a")
            inf
            >>> stats.record_latency("a", 1.0); stats.ranking_latency("a")
            2.0
            >>> stats.ranking_latency("a", stream=True) is None  # never streamed yet
            True
            >>> stats.record_latency("b", 1.2, output_tokens=100)
            >>> stats.ranking_latency("b", max_output_tokens=10) < stats.ranking_latency("b")
            True
        """
        seen = self._seen.get(alias)
        if seen is None:
            return None
        limit = self._stale_after
        # observations older than this are stale; a call in flight keeps them until it ends
        oldest = -math.inf if limit is None or self._in_flight.get(alias) else self._clock() - limit
        if seen.at < oldest:
            return None
        if seen.failing >= 1.0:
            return math.inf
        if stream:
            figure, at = seen.first_token, seen.first_token_at
        else:
            fit = seen.answer  # fit.seconds_for(length), inlined: this runs per member
            length = self._typical_tokens or 0.0
            if max_output_tokens is not None and max_output_tokens < length:
                length = max_output_tokens  # no answer to this request can be longer
            figure = None if fit is None else fit.base + fit.per_token * length
            at = seen.answer_at
        if figure is None or at < oldest:
            return None
        return figure / (1.0 - seen.failing)

    # ------------------------------------------------------------------ recording

    def set_availability(self, predicate: Callable[[str], bool] | None) -> None:
        """Plug in (or remove) the availability predicate, e.g. a circuit breaker's."""
        self._availability = predicate

    def record_latency(
        self,
        alias: str,
        seconds: float,
        *,
        output_tokens: int | None = None,
        first_token: float | None = None,
    ) -> None:
        """Fold one answer, ``seconds`` long, into the moving averages.

        ``first_token`` (seconds to the first token) marks a streamed answer, and is what
        streamed requests are ranked by; otherwise the answer, with its ``output_tokens``
        (``None``: unknown, taken as typical), feeds the unstreamed fit.
        """
        with self._lock:
            self._fold(alias, seconds, output_tokens, first_token)

    def record_failure(self, alias: str) -> None:
        """Fold one failure of the deployment (not of the request, nor a cancellation)."""
        with self._lock:
            self._fold(alias, None, None, None)

    def record_wait(self, alias: str, seconds: float, *, stream: bool) -> None:
        """Fold an attempt that waited ``seconds`` on ``alias`` and was cancelled before its
        answer (``stream``: before its first token): the deployment takes at least that long.

        A lower bound can only make a deployment look slower: it is folded into the figure of
        its kind (time to first token, or time to an answer of typical length) when it is
        longer than that figure, and left out otherwise. A deployment not yet measured for the
        kind is given ``seconds`` as its figure only when that is longer than every fresh
        figure of the kind elsewhere (or there is none), so it ranks behind every deployment
        known to answer sooner, instead of being explored again by the next call: without
        this, a deployment that hangs until its callers give up would be tried first by every
        call. Neither the answered latency (:meth:`latency`) nor the success rate moves: the
        wait was neither an answer nor the deployment's failure.

        Example:
            >>> stats = DeploymentStatsTracker(alpha=0.5)
            >>> stats.record_latency("a", 1.0); stats.record_latency("b", 2.0)
            >>> stats.record_wait("a", 5.0, stream=False)  # cancelled after 5 s
            >>> stats.ranking_latency("a"), stats.latency("a")
            (3.0, 1.0)
            >>> stats.record_wait("c", 9.0, stream=False)  # never answered yet
            >>> stats.ranking_latency("c")
            9.0
            >>> stats.record_wait("b", 0.5, stream=False)  # says nothing new
            >>> stats.ranking_latency("b")
            2.0
        """
        if not 0.0 < seconds < math.inf:
            return
        with self._lock:
            now = self._clock()
            limit = math.inf if self._stale_after is None else self._stale_after
            typical = self._typical_tokens or 0.0
            old = self._seen.get(alias)
            if old is not None and now - old.at > limit:
                old = None
            own = None if old is None else _figure(old, stream, typical, now, limit)
            if own is None:
                for other, seen in self._seen.items():
                    figure = _figure(seen, stream, typical, now, limit)
                    if other != alias and figure is not None and figure >= seconds:
                        return  # some deployment is known to take longer: nothing learnt
            elif seconds <= own:
                return
            a = self._alpha
            if old is None:
                old = _Seen(None, 0.0, now, None, now, None, now)
            if stream:
                first = seconds if own is None else own + a * (seconds - own)
                self._seen[alias] = old._replace(at=now, first_token=first, first_token_at=now)
            else:
                fit = old.answer
                answer = (
                    AnswerFit.first(seconds, typical)
                    if own is None or fit is None
                    else fit.fold(seconds, typical, a)
                )
                self._seen[alias] = old._replace(at=now, answer=answer, answer_at=now)

    def start(self, alias: str, *, stream: bool | None = None) -> None:
        """Count one more call in flight on ``alias``, streamed or not if ``stream`` says
        (then :meth:`finish` must say the same)."""
        with self._lock:
            self._in_flight[alias] = self._in_flight.get(alias, 0) + 1
            if stream is not None:
                kind = (alias, stream)
                self._kinds[kind] = self._kinds.get(kind, 0) + 1

    def record_first_token(self, alias: str, seconds: float) -> None:
        """Fold the time to first token of a stream that ended before its answer did, its
        consumer having stopped reading: what streamed requests are ranked by was seen, and
        the deployment answered; the stream's total time says nothing, and is left out.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.record_first_token("a", 0.4)
            >>> stats.ranking_latency("a", stream=True), stats.latency("a")
            (0.4, None)
        """
        with self._lock:
            self._fold(alias, None, None, seconds)

    def finish(
        self,
        alias: str,
        latency: float | None = None,
        *,
        output_tokens: int | None = None,
        first_token: float | None = None,
        stream: bool | None = None,
    ) -> None:
        """Count one call less in flight and, if given, record its latency (with
        :meth:`record_latency`'s ``output_tokens`` and ``first_token``), or without a latency
        its ``first_token`` alone (:meth:`record_first_token`); ``stream`` as the call was
        started with."""
        with self._lock:
            _count_down(self._in_flight, alias)
            if stream is not None:
                _count_down(self._kinds, (alias, stream))
            if latency is not None or first_token is not None:
                self._fold(alias, latency, output_tokens, first_token)

    @contextmanager
    def track(self, alias: str, *, stream: bool | None = None) -> Iterator[None]:
        """Count a call in flight for the block (of the kind ``stream`` says, if it does);
        record its latency if it did not raise.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> with stats.track("mini"):
            ...     pass
            >>> stats.latency("mini") is not None
            True
        """
        self.start(alias, stream=stream)
        began = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.finish(alias, time.perf_counter() - began if ok else None, stream=stream)

    def reset(self) -> None:
        """Forget every latency and failure observed.

        Calls in flight stay counted: they are running, and each counts itself out when it
        ends; forgetting them would let those ends cancel out calls started after the reset.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.start("mini"); stats.record_latency("mini", 0.5); stats.reset()
            >>> stats.latency("mini"), stats.in_flight("mini")
            (None, 1)
        """
        with self._lock:
            self._seen.clear()
            self._typical_tokens = None

    # ------------------------------------------------------------------ internals

    def _stale(self, at: float, now: float) -> bool:
        return self._stale_after is not None and now - at > self._stale_after

    def _fold(
        self,
        alias: str,
        seconds: float | None,
        output_tokens: int | None,
        first_token: float | None,
    ) -> None:
        """Fold an answer (``seconds``), a stream's first token alone (``seconds`` ``None``,
        ``first_token`` given: an answer, of unknown length) or a failure (both ``None``);
        the caller holds the lock.

        A figure no clock gives (negative, NaN, infinite) is left out: once in an average it
        would stay there and make the ranking's order undefined.
        """
        if seconds is not None and not 0.0 <= seconds < math.inf:
            return
        if first_token is not None and not 0.0 <= first_token < math.inf:
            if seconds is None:
                return  # a first token alone, and not a figure: nothing was observed
            first_token = None
        now = self._clock()
        a = self._alpha
        # _stale() inlined: this runs once per attempt, under the lock
        limit = math.inf if self._stale_after is None else self._stale_after
        failed = 0.0 if seconds is not None or first_token is not None else 1.0
        old = self._seen.get(alias)
        if old is not None and now - old.at > limit:
            old = None  # a deployment that recovered must not carry its old figures
        latency: float | None = None
        first: float | None = None
        answer: AnswerFit | None = None
        first_at = answer_at = now
        failing = failed
        if old is not None:
            latency, first, answer = old.latency, old.first_token, old.answer
            first_at, answer_at = old.first_token_at, old.answer_at
            failing = old.failing + a * (failed - old.failing)
        if seconds is not None:
            latency = seconds if latency is None else latency + a * (seconds - latency)
        if first_token is not None:  # a stream: ranked by its first token
            if first is None or now - first_at > limit:
                first = first_token
            else:
                first += a * (first_token - first)
            first_at = now
        elif seconds is not None:
            tokens = self._typical(output_tokens)
            if answer is None or now - answer_at > limit:
                answer = AnswerFit.first(seconds, tokens)
            else:
                answer = answer.fold(seconds, tokens, a)
            answer_at = now
        self._seen[alias] = _Seen(latency, failing, now, first, first_at, answer, answer_at)
        if len(self._seen) > self._prune_at:
            self._prune(now)

    def _typical(self, output_tokens: int | None) -> float:
        """The length to fold an answer at: its own, which moves the typical length, or the
        typical length when unknown (so it moves neither the fit's slope nor the mean)."""
        typical = self._typical_tokens
        if output_tokens is None:
            return typical or 0.0
        tokens = float(output_tokens)
        self._typical_tokens = (
            tokens if typical is None else typical + self._alpha * (tokens - typical)
        )
        return tokens

    def _prune(self, now: float) -> None:
        """Drop stale observations of idle deployments, so many short-lived aliases (policies
        reloaded under new names) do not pile up; amortised by doubling the threshold."""
        if self._stale_after is not None:
            for alias in [a for a, s in self._seen.items() if self._stale(s.at, now)]:
                if not self._in_flight.get(alias):
                    del self._seen[alias]
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._seen))


def _figure(seen: _Seen, stream: bool, typical: float, now: float, limit: float) -> float | None:
    """``seen``'s fresh figure of one kind, before the success rate divides it: time to first
    token (``stream``), or to an answer of ``typical`` output tokens; ``None`` if unknown or
    stale."""
    if stream:
        return seen.first_token if now - seen.first_token_at <= limit else None
    fit = seen.answer
    if fit is None or now - seen.answer_at > limit:
        return None
    return fit.base + fit.per_token * typical


def _count_down(counts: dict[K, int], key: K) -> None:
    """One less of ``key`` in ``counts``; the key goes once none is left."""
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
