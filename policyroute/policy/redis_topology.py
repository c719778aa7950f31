"""Which Redis deployment a store URL names: one server, a Cluster, or a Sentinel-watched primary.

A single server is any URL redis-py reads (``redis://``, ``rediss://``, ``unix://``). Two
schemes name the others, each host list comma-separated, each ``[user:]password`` the data
nodes' credentials, and the query what redis-py's data connections take (``?socket_timeout=2``):

- ``redis+cluster://[[user]:password@]host:port[,host:port...][/0][?args]``: a Redis Cluster,
  found from any of the hosts listed (port 6379 when left out). A cluster has database 0 only.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?args]``: the
  primary the Sentinels at those hosts (port 26379 when left out) name for ``service``;
  ``sentinel_username`` and ``sentinel_password`` in the query log in to the Sentinels.

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS (to the Sentinels too). Nothing here
imports redis at import time: the policy validator reads these URLs where redis-py is not
installed (and without loading the stores); :func:`cluster_query_names` asks redis-py, if any.

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
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "MULTI_HOST_SCHEMES",
    "SENTINEL_QUERY",
    "Topology",
    "TopologyError",
    "cluster_query_names",
    "topology",
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
    """

    mode: Mode
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel: Mapping[str, str] = field(default_factory=dict)


def topology(url: str) -> Topology:
    """The deployment ``url`` names; :class:`TopologyError` when a multi-host URL is malformed.

    Any other URL is one server's, left to redis-py to read.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in MULTI_HOST_SCHEMES:
        return Topology("server", url)
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
    plain_query = [(k, v) for k, v in query if k not in SENTINEL_QUERY or mode != "sentinel"]
    if mode == "cluster" and any(k == "db" and v not in ("", "0") for k, v in query):
        raise TopologyError("passes db, but a cluster has database 0 only")
    host, port = nodes[0]
    plain = f"{base}://{userinfo}{at}{host}:{port}{'/' + db if db else ''}"
    if plain_query:
        plain += "?" + urlencode(plain_query)
    sentinel = {SENTINEL_QUERY[k]: v for k, v in query if k in SENTINEL_QUERY}
    return Topology(mode, plain, nodes, service, sentinel if mode == "sentinel" else {})


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
