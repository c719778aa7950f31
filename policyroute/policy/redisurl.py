"""PR139: a Redis store's ``url`` that redis-py cannot connect with.

The Redis store opens its connections lazily, so a ``store.url`` that redis-py's ``from_url``
refuses (``redis//host:6379``, ``http://...``, ``REDIS://...``, a port that is not a number,
``?db=one``) used to pass validation and fail the first call that reserved a budget. This
check refuses it at the value, on the URL a call would use: ``${ENV_VAR}`` references are
expanded first, from the environment the policy is validated with, as for ``api_base``
(:mod:`policyroute.policy.endpoints`), and a URL with an unset variable is left to PR119. It
also refuses what ``from_url`` lets through but no connection survives: a space, line break
or control character, a ``unix://`` URL without a socket path, and a query argument no
connection takes (``?socket_timout=2``): redis-py hands it to every new connection, which raises
``TypeError``; the store's own ``wait_replicas`` and ``wait_timeout`` are checked as
:mod:`policyroute.policy.redis_topology` reads them (refused on a cluster). No message shows
the URL or any part of a variable's value: either may hold the password; an argument's name is
shown, never its value.

A Redis Cluster (``redis+cluster://h1:6379,h2:6379``) and a Sentinel-watched primary
(``redis+sentinel://h1:26379,h2:26379/service/0``) are read as
:mod:`policyroute.policy.redis_topology` reads them: a malformed host list, a cluster
database other than 0, or a Sentinel URL without a service is refused, and the rest is checked
as a one-server URL would be.

The rules follow redis-py's ``parse_url`` (redis 5 to 8), without importing redis: validation
works where the ``redis`` extra is not installed. Query argument names are the exception: they
are read off the installed redis-py's connection and pool classes, sync and asyncio (the store
makes both), so a release's new argument is taken; without redis-py only a near miss of a
well-known name is refused.

Example:
    >>> redis_url_problem("redis://cache:6379/0") is None
    True
    >>> redis_url_problem("redis//cache:6379"), redis_url_problem("http://cache:6379")
    ('has no scheme', "uses the scheme 'http'")
"""

from __future__ import annotations

import difflib
import inspect
import re
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from policyroute.policy.endpoints import authority_problem, blank_problem
from policyroute.policy.envrefs import env_names, expand_env
from policyroute.policy.redis_topology import (
    DEFAULT_SOCKET_TIMEOUT,
    MULTI_HOST_SCHEMES,
    WAIT_QUERY,
    TopologyError,
    cluster_query_names,
    topology,
    wait_timeout_problem,
)

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_store_url", "redis_url_problem"]

# redis-py compares the start of the text itself (``url.startswith("redis://")``), so a
# scheme in capitals is refused although URL schemes are otherwise case-insensitive.
_SCHEMES = ("redis", "rediss", "unix")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# The query arguments redis-py converts, and refuses when they do not convert
# (URL_QUERY_ARGUMENT_PARSERS in redis/connection.py); the others are passed on as text.
_INTS = ("db", "socket_read_size", "max_connections", "health_check_interval", "protocol")
_NUMBERS: dict[str, tuple[type[int] | type[float], str]] = {
    **dict.fromkeys((*_INTS, "ssl_min_version"), (int, "a whole number")),
    **dict.fromkeys(("socket_timeout", "socket_connect_timeout", "timeout"), (float, "a number")),
}
# The query arguments a user writes, for telling a near miss when redis-py is not installed.
_WELL_KNOWN = (
    "db",
    "username",
    "password",
    "client_name",
    "protocol",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_read_size",
    "retry_on_timeout",
    "retry_on_error",
    "health_check_interval",
    "max_connections",
    "timeout",
    "encoding",
    "encoding_errors",
    "decode_responses",
)
_WELL_KNOWN_TLS = (
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_ca_path",
    "ssl_check_hostname",
    "ssl_password",
    "ssl_min_version",
    "ssl_ciphers",
)


def redis_url_problem(url: str) -> str | None:
    """What keeps redis-py from connecting with ``url``, as a phrase that follows "the URL";
    ``None`` when nothing does. The phrase never quotes the URL.

    Example:
        >>> redis_url_problem("REDIS://cache:6379"), redis_url_problem("redis://cache:63x9")
        ("writes the scheme 'REDIS' in capitals", 'has a malformed host or port')
        >>> redis_url_problem("unix:///run/redis.sock?db=one")
        'gives db a value that is not a whole number'
    """
    blank = blank_problem(url)
    if blank is not None:
        return blank
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "has no scheme"
    name = scheme.group(1)
    if name in MULTI_HOST_SCHEMES:
        return _multi_host_problem(url, name)
    if name not in _SCHEMES:
        if name.lower() in (*_SCHEMES, *MULTI_HOST_SCHEMES):
            return f"writes the scheme {name!r} in capitals"
        return f"uses the scheme {name.lower()!r}"
    if not url[scheme.end() :].startswith("//"):
        return f"has no '//' after '{name}:'"
    malformed = authority_problem(url)
    if malformed is not None:
        return malformed
    try:
        found = topology(url)  # the store's own query arguments are taken off here
    except TopologyError as exc:
        return str(exc)
    waits = wait_timeout_problem(found, DEFAULT_SOCKET_TIMEOUT)
    if waits is not None:
        return waits
    url = found.url
    # urlparse, as redis-py's parse_url: it reads ";params" apart from the socket path
    parts = urlparse(url)
    if name == "unix" and not parts.path:
        return "names no socket path (unix:///path/to/redis.sock)"
    if name != "unix" and "@" in url[scheme.end() + 2 + len(parts.netloc) :]:
        # A password holding a bare '/', '?' or '#' ends the host part early: redis-py, which
        # takes an empty host for localhost, would connect elsewhere without the password.
        return "has an '@' after its host: percent-encode '/', '?' and '#' in the password"
    query = parse_qs(parts.query)
    unknown = _unknown_argument(name, query)
    if unknown is not None:
        return unknown
    for arg, values in query.items():
        kind = _NUMBERS.get(arg)
        if kind is None:
            continue
        try:
            kind[0](values[0])
        except ValueError:
            return f"gives {arg} a value that is not {kind[1]}"
    return None


def _multi_host_problem(url: str, name: str) -> str | None:
    """What keeps a ``redis+cluster://`` or ``redis+sentinel://`` URL from naming a deployment:
    its host list and path, then what one of its data connections would make of the rest."""
    if not url[len(name) + 1 :].startswith("//"):
        return f"has no '//' after '{name}:'"
    try:
        found = topology(url)
    except TopologyError as exc:
        return str(exc)
    problem = redis_url_problem(found.url) or wait_timeout_problem(found, DEFAULT_SOCKET_TIMEOUT)
    if problem is not None:
        return problem.replace("rediss://", f"rediss+{found.mode}://")
    if found.mode != "cluster":
        return None
    taken = cluster_query_names()
    for arg in parse_qs(urlparse(found.url).query):
        if taken and arg not in taken:
            return (
                f"passes the query argument {arg!r}, which redis-py's cluster clients do not take"
            )
    return None


def _unknown_argument(scheme: str, query: dict[str, list[str]]) -> str | None:
    """The phrase for the first query argument no connection of ``scheme`` takes, if any."""
    if not query:
        return None
    taken = _taken_by_redis_py(scheme)
    known = taken or frozenset(_WELL_KNOWN + (_WELL_KNOWN_TLS if scheme == "rediss" else ()))
    for arg in query:
        if arg in known:
            continue
        if taken and arg in _sync_only_in_redis_py(scheme):
            # The store serves async calls too: each would fail on its first connection.
            return (
                f"passes the query argument {arg!r}, which redis-py's asyncio connections"
                " do not take (every async call would fail)"
            )
        # the store's own arguments are taken off before this check, but a misspelling of
        # one is still most likely meant for it
        near = difflib.get_close_matches(arg, sorted({*known, *WAIT_QUERY}), n=1, cutoff=0.8)
        if not taken and not near:
            continue  # no redis-py to ask, and no near miss: leave it to the store
        meant = f" (did you mean {near[0]}?)" if near else ""
        if arg.startswith("ssl_") and scheme != "rediss":
            meant = " (TLS arguments need a rediss:// URL)"
        return f"passes the query argument {arg!r}, which no redis-py connection takes{meant}"
    return None


def _taken_by_redis_py(scheme: str) -> frozenset[str]:
    """The keyword arguments the installed redis-py's pool and connection classes take for a
    ``scheme`` URL (``parse_url`` hands every query argument to them), its sync and asyncio
    ones alike (the store makes both); empty without redis-py."""
    sync, asyncio = _redis_py_names(scheme)
    return sync & asyncio


def _sync_only_in_redis_py(scheme: str) -> frozenset[str]:
    """The arguments only redis-py's sync classes take for a ``scheme`` URL
    (``ssl_validate_ocsp``); empty without redis-py."""
    sync, asyncio = _redis_py_names(scheme)
    return sync - asyncio


@cache
def _redis_py_names(scheme: str) -> tuple[frozenset[str], frozenset[str]]:
    """What redis-py's sync and asyncio classes take for a ``scheme`` URL (both empty without
    redis-py), read once per scheme."""
    try:
        from redis import connection
        from redis.asyncio import connection as aconnection
    except ImportError:
        return frozenset(), frozenset()
    return _init_names(scheme, connection), _init_names(scheme, aconnection)


def _init_names(scheme: str, connection: Any) -> frozenset[str]:
    """The names taken for a ``scheme`` URL by one of redis-py's ``connection`` modules."""
    classes = {
        "redis": connection.Connection,
        "rediss": connection.SSLConnection,
        "unix": connection.UnixDomainSocketConnection,
    }
    names: set[str] = set()
    for top in (classes[scheme], connection.ConnectionPool, connection.BlockingConnectionPool):
        for klass in top.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for parameter in inspect.signature(init).parameters.values():
                if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                    names.add(parameter.name)
    names.discard("self")
    names.discard("connection_kwargs")
    return frozenset(names)


def check_store_url(c: Checker) -> None:
    """PR139 on the ``url`` of a ``redis`` store (another backend's is PR132)."""
    store: Any = c.data.get("store")
    if not isinstance(store, dict) or store.get("backend") != "redis":
        return
    text = store.get("url")
    if not isinstance(text, str) or not text:
        return  # the schema reports it, or PR131 its absence
    if text.count("${") != len(env_names(text)):
        return  # a malformed reference: PR126 says where
    url = expand_env(text, c.environ)
    if url is None:
        return  # an unset variable: PR119
    problem = redis_url_problem(url)
    if problem is None:
        return
    refs = ", ".join(f"${{{name}}}" for name in dict.fromkeys(env_names(text)))
    after = f" (with {refs} expanded)" if refs else ""
    c.emit(
        "PR139",
        ("store", "url"),
        f"store.url{after} is not a URL redis-py can connect with: it {problem}",
        # The URL's form is right when only the store's own arguments are wrong: say what
        # those take instead of listing URL forms.
        hint=_WAIT_HINT if any(name in problem for name in WAIT_QUERY) else _FORMS_HINT,
    )


_FORMS_HINT = (
    "write redis://host:6379/0, rediss://host:6380/0 (TLS), unix:///path/to/redis.sock,"
    " redis+cluster://host:6379,host2:6379 or redis+sentinel://host:26379/service/0"
)
_WAIT_HINT = (
    "wait_replicas takes a whole number of replicas, and wait_timeout, given only with it,"
    " seconds above 0 and more than 0.1 s below socket_timeout (5 s unless the URL sets it),"
    " e.g. ?wait_replicas=1&wait_timeout=0.05; a redis+cluster:// URL takes neither"
)
