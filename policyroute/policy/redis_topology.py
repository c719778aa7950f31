"""Which Redis deployment a store URL names: one server, a Cluster, or a Sentinel-watched primary.

A single server is any URL redis-py reads (``redis://``, ``rediss://``, ``unix://``). Two
schemes name the others, each host list comma-separated, each ``[user:]password`` the data
nodes' credentials, and the query what redis-py's data connections take (``?socket_timeout=2``):

- ``redis+cluster://[[user]:password@]host:port[,host:port...][/0][?args]``: a Redis Cluster,
  found from any of the hosts listed (port 6379 when left out). A cluster has database 0 only.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?args]``: the
  primary the Sentinels at those hosts (port 26379 when left out) name for ``service``;
  ``sentinel_username`` and ``sentinel_password`` in the query log in to the Sentinels.

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS (to the Sentinels too).

Two query arguments are the store's own, taken off before redis-py sees the URL (any form but
a cluster's): ``wait_replicas=N`` makes every write that changes budget state wait, on the
connection that sent it, until ``N`` replicas acknowledged it (Redis ``WAIT``), for at most
``wait_timeout`` seconds (default 0.1; with 0.1 s to spare below the command timeout,
``socket_timeout``: :func:`wait_timeout_problem`). A cluster is refused them: ``WAIT`` must
reach the primary serving the budgets' slot on the very connection that wrote, which
redis-py's cluster clients do not offer. Nothing here imports redis at import time: the
policy validator reads these URLs where redis-py is not installed (and without loading the
stores); :func:`cluster_query_names` asks redis-py, if any.

Example:
    >>> t = topology("redis+sentinel://:pw@s1,s2:26380/budgets/2?sentinel_password=sp")
    >>> t.mode, t.nodes, t.service
    ('sentinel', (('s1', 26379), ('s2', 26380)), 'budgets')
    >>> t.url, t.sentinel
    ('redis://:pw@s1:26379/2', {'password': 'sp'})
    >>> topology("redis+cluster://n1:7000,n2:7001/").url
    'redis://n1:7000'
    >>> topology("redis+cluster://n1:7000/3")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    TopologyError: names database 3, but a cluster has database 0 only
    >>> t = topology("redis://cache:6379/0?wait_replicas=1&wait_timeout=0.05&db=0")
    >>> t.url, t.wait_replicas, t.wait_timeout
    ('redis://cache:6379/0?db=0', 1, 0.05)
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "MULTI_HOST_SCHEMES",
    "SENTINEL_QUERY",
    "WAIT_OVERRUN",
    "WAIT_QUERY",
    "Topology",
    "TopologyError",
    "cluster_query_names",
    "topology",
    "wait_milliseconds",
    "wait_timeout_problem",
]

Mode = Literal["server", "cluster", "sentinel"]

MULTI_HOST_SCHEMES: dict[str, tuple[str, Mode]] = {
    "redis+cluster": ("redis", "cluster"),
    "rediss+cluster": ("rediss", "cluster"),
    "redis+sentinel": ("redis", "sentinel"),
    "rediss+sentinel": ("rediss", "sentinel"),
}
# Query arguments that configure the Sentinel connections, and the keyword each becomes.
SENTINEL_QUERY = {"sentinel_username": "username", "sentinel_password": "password"}
# Query arguments the store reads itself (replication acknowledgement), never redis-py.
WAIT_QUERY = ("wait_replicas", "wait_timeout")
# Seconds a Redis command may take, unless the store or the URL's socket_timeout says otherwise.
DEFAULT_SOCKET_TIMEOUT = 5.0
# Seconds a write waits for its replicas when the URL asks for some without saying how long.
DEFAULT_WAIT_TIMEOUT = 0.1
# Seconds Redis may let WAIT run past its timeout: it times blocked commands out on its clock
# ticks (hz, 10 a second by default).
WAIT_OVERRUN = 0.1
_DEFAULT_PORT = {"cluster": 6379, "sentinel": 26379}
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\[\]:/?#@\s,]+)(?::(\d*))?$")


class TopologyError(ValueError):
    """A multi-host store URL that names no deployment; the message follows "the URL" and
    never quotes the URL."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Where a store's data lives and how to reach it.

    ``url`` is a plain ``redis://`` or ``rediss://`` URL for the first node (a cluster) or
    Sentinel-named primary (its host is only a placeholder there): its credentials, database
    and query are what every data connection takes. ``nodes`` lists the cluster's startup nodes
    or the Sentinels; ``sentinel`` the keywords for the Sentinel connections.
    ``wait_replicas`` (0: none) is how many replicas must acknowledge each write within
    ``wait_timeout`` seconds.
    """

    mode: Mode
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel: Mapping[str, str] = field(default_factory=dict)
    wait_replicas: int = 0
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT


def topology(url: str) -> Topology:
    """The deployment ``url`` names; :class:`TopologyError` when a multi-host URL is malformed.

    Any other URL is one server's, left to redis-py to read.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in MULTI_HOST_SCHEMES:
        plain, replicas, wait = _take_wait(url)
        return Topology("server", plain, wait_replicas=replicas, wait_timeout=wait)
    base, mode = MULTI_HOST_SCHEMES[scheme]
    # The password is everything up to the last '@' (as in redis_url): one holding '/', '?'
    # or '#' unencoded would otherwise end the host list early.
    userinfo, at, tail = rest.rpartition("@")
    if at and any(c in userinfo for c in "/?#"):
        raise TopologyError("has '/', '?' or '#' in its password: percent-encode them")
    hosts_end = next((i for i, c in enumerate(tail) if c in "/?#"), len(tail))
    hosts, after = tail[:hosts_end], tail[hosts_end:]
    nodes = tuple(_node(h, i, _DEFAULT_PORT[mode]) for i, h in enumerate(hosts.split(",")))
    path, _, query_text = after.partition("#")[0].partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    db, service = _path(mode, path)
    replicas, wait = _wait_arguments(query)
    if mode == "cluster" and any(k in WAIT_QUERY for k, _ in query):
        raise TopologyError(
            "passes wait_replicas or wait_timeout, which a cluster does not take (WAIT must"
            " reach the primary serving the budgets' slot on the connection that wrote);"
            " set min-replicas-to-write on the cluster's primaries instead"
        )
    plain_query = [
        (k, v)
        for k, v in query
        if (k not in SENTINEL_QUERY or mode != "sentinel") and k not in WAIT_QUERY
    ]
    if mode == "cluster" and any(k == "db" and v not in ("", "0") for k, v in query):
        raise TopologyError("passes db, but a cluster has database 0 only")
    host, port = nodes[0]
    plain = f"{base}://{userinfo}{at}{host}:{port}{'/' + db if db else ''}"
    if plain_query:
        plain += "?" + urlencode(plain_query)
    sentinel = {SENTINEL_QUERY[k]: v for k, v in query if k in SENTINEL_QUERY}
    sentinel = sentinel if mode == "sentinel" else {}
    return Topology(mode, plain, nodes, service, sentinel, replicas, wait)


def _take_wait(url: str) -> tuple[str, int, float]:
    """A one-server URL without the store's own query arguments, and what they ask for.

    Only the text after the last ``@`` is read, as in redis_url: a password holding an
    unencoded ``?`` is not taken for the query. A URL without them is returned unchanged.
    """
    head, at, tail = url.rpartition("@")
    tail, hash_, fragment = tail.partition("#")
    base, _, query_text = tail.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    if not any(k in WAIT_QUERY for k, _ in query):
        return url, 0, DEFAULT_WAIT_TIMEOUT
    replicas, wait = _wait_arguments(query)
    rest = urlencode([(k, v) for k, v in query if k not in WAIT_QUERY])
    return f"{head}{at}{base}{'?' + rest if rest else ''}{hash_}{fragment}", replicas, wait


def _wait_arguments(query: list[tuple[str, str]]) -> tuple[int, float]:
    """``wait_replicas`` and ``wait_timeout`` as ``query`` gives them, checked."""
    given: dict[str, str] = {}
    for name, value in query:
        if name in WAIT_QUERY:
            if name in given:
                raise TopologyError(f"passes {name} twice")
            given[name] = value
    if not given:
        return 0, DEFAULT_WAIT_TIMEOUT
    text = given.get("wait_replicas")
    if text is None:
        raise TopologyError("passes wait_timeout without wait_replicas, so nothing waits")
    if not (text.isascii() and text.isdigit()):
        raise TopologyError("gives wait_replicas a value that is not a whole number (0 or more)")
    wait = DEFAULT_WAIT_TIMEOUT
    if "wait_timeout" in given:
        try:
            wait = float(given["wait_timeout"])
        except ValueError:
            wait = math.nan
        # Redis reads WAIT's timeout 0 as "for ever": a write would never give up.
        if not (math.isfinite(wait) and wait > 0):
            raise TopologyError(
                "gives wait_timeout a value that is not a number of seconds above 0"
                " (Redis would read 0 as waiting for ever)"
            )
    return int(text), wait


def wait_timeout_problem(found: Topology, socket_timeout: float) -> str | None:
    """What is wrong with ``found``'s ``wait_timeout`` for a store whose commands time out
    after ``socket_timeout`` seconds (the URL's ``socket_timeout`` wins), as a phrase that
    follows "the URL"; ``None`` when it is below that timeout or nothing waits.

    Redis times ``WAIT`` out on its clock ticks (``hz``, 10 a second by default), so a wait
    for replicas that do not answer lasts up to :data:`WAIT_OVERRUN` longer than asked: the
    wait plus that must be below the command timeout, or the write that waited would fail
    with a socket timeout (a settlement that happened reported as failed) instead of being
    kept and logged.

    Example:
        >>> print(wait_timeout_problem(
        ...     topology("redis://c/0?wait_replicas=1&wait_timeout=4.95"), 5.0))
        ... # doctest: +NORMALIZE_WHITESPACE
        gives wait_timeout 4.95 s, not below the command timeout (socket_timeout, 5 s) less the
        0.1 s Redis may wait past it
    """
    if not found.wait_replicas:
        return None
    query = parse_qsl(found.url.rpartition("@")[2].partition("#")[0].partition("?")[2])
    for name, value in query:
        if name == "socket_timeout":
            try:
                socket_timeout = float(value)
            except ValueError:
                return None  # redis-py refuses it: checked where the URL's query is
    if found.wait_timeout + WAIT_OVERRUN < socket_timeout:
        return None
    return (
        f"gives wait_timeout {found.wait_timeout:g} s, not below the command timeout"
        f" (socket_timeout, {socket_timeout:g} s) less the {WAIT_OVERRUN:g} s Redis may wait"
        " past it"
    )


def wait_milliseconds(seconds: float) -> int:
    """``WAIT``'s timeout for ``seconds``: whole milliseconds, at least 1 (0 waits for ever).

    Example:
        >>> wait_milliseconds(0.0001), wait_milliseconds(0.05)
        (1, 50)
    """
    # Rounded first: 0.07 * 1000 is 70.00000000000001, which is not 71 ms.
    return max(1, math.ceil(round(seconds * 1000, 6)))


def _node(text: str, index: int, default_port: int) -> tuple[str, int]:
    where = f"host {index + 1}"
    if not text:
        raise TopologyError(f"lists an empty {where} (hosts are separated by single commas)")
    match = _HOST.match(text)
    if match is None:
        raise TopologyError(f"has a malformed {where} (write host:port)")
    port = match.group(2)
    if port == "" or (port is not None and not 0 < int(port) < 65536):
        raise TopologyError(f"gives {where} a port that is not from 1 to 65535")
    return match.group(1), default_port if port is None else int(port)


def _path(mode: Mode, path: str) -> tuple[str, str]:
    """The database and service a multi-host URL's path names."""
    parts = path.split("/")[1:] if path else []
    if mode == "cluster":
        if parts not in ([], [""], ["0"]):
            raise TopologyError(
                f"names database {'/'.join(parts)}, but a cluster has database 0 only"
            )
        return "", ""
    if not parts or not parts[0]:
        raise TopologyError("names no service (redis+sentinel://host:26379/service_name)")
    service, db = parts[0], "/".join(parts[1:])
    if len(parts) > 2 or (db and not db.isdigit()):
        raise TopologyError("has a path that is not /service or /service/db (a whole number)")
    return db, service


@cache
def cluster_query_names() -> frozenset[str]:
    """The URL query arguments both of redis-py's cluster clients take for their nodes
    (the sync one drops others silently, the asyncio one refuses them); empty without redis-py.
    """
    try:
        from redis import cluster
        from redis.asyncio import cluster as acluster
    except ImportError:
        return frozenset()
    async_names = set(inspect.signature(acluster.RedisCluster.__init__).parameters)
    taken = async_names & set(cluster.REDIS_ALLOWED_KEYS)
    # Set by the store or the URL's form itself, never by a query argument.
    return frozenset(taken - {"host", "port", "retry", "db", "max_connections", "self"})
