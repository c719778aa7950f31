"""A Redis URL's password, masked for messages and logs.

The password is read as it was written, not as a URL parser reads it: a generated password
often holds ``/`` (base64), ``?`` or ``#``, and written into the URL unencoded it ends the
authority early (``redis://app:Xy7q/9Rk@cache``: host ``app``, "port" ``Xy7q``). Everything
between the first ``:`` after ``//`` and the last ``@`` is the password then, and masked
whole; redis-py, which parses such a URL otherwise, may quote pieces of it in its own errors
(the "port" it could not read, the socket path it could not open), so those pieces are
listed too, for :func:`scrub`. Query arguments that carry a password (``password``, a
Sentinel URL's ``sentinel_password``, a TLS key's ``ssl_password``) are masked as well.

Example:
    >>> redacted_url("redis://app:Xy7q/9Rk@cache:6379/0")
    'redis://app:***@cache:6379/0'
    >>> scrub("Port could not be cast to integer value as 'Xy7q'", "redis://:Xy7q/9Rk@cache")
    "Port could not be cast to integer value as '***'"
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["redacted_url", "scrub"]

# redis-py also reads a password from the query string (its value ends at ``&`` or ``#``), a
# Sentinel URL carries the Sentinels' own there, and a TLS URL may carry the passphrase of its
# client key (``ssl_password``): every argument named ``password`` or ``<something>_password``.
_QUERY_PASSWORD = re.compile(r"([?&](?:\w+_)?password=)([^&#]*)")
# Pieces shorter than this are not scrubbed from other text: a letter or two of a password
# reveals nothing, and replacing them would garble the message around them.
_MIN_PIECE = 3


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for messages and logs.

    Example:
        >>> redacted_url("redis://app:s3cret@cache:6379/2")
        'redis://app:***@cache:6379/2'
        >>> redacted_url("redis://cache:6379/0?password=s3cret")
        'redis://cache:6379/0?password=***'
    """
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:  # no credentials, or a user name alone
        return url
    return f"{scheme}{sep}{user}:***@{host}"


def _secrets(url: str) -> set[str]:
    """The password(s) ``url`` carries, whole and in the pieces a parser may split them into."""
    found = {m.group(2) for m in _QUERY_PASSWORD.finditer(url)}
    rest = url.partition("://")[2] or url
    userinfo, at, _ = rest.rpartition("@")
    if at and ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    pieces = {p for s in found for p in re.split(r"[/?#@&]", s)}
    return {t for s in found | pieces for t in (s, unquote(s)) if len(t) >= _MIN_PIECE}


def scrub(text: str, url: str) -> str:
    """``text`` with every password (or piece of one) that ``url`` carries replaced by ``***``.

    Example:
        >>> scrub("AUTH failed for s3cret", "redis://:s3cret@cache:6379/0")
        'AUTH failed for ***'
    """
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
