"""A throwaway certificate authority for serving the fake provider over HTTPS.

Every real provider answers over TLS; :class:`LocalTLS` lets a test do the same on loopback,
with verification left on: a certificate authority made for the test issues a certificate for
``127.0.0.1``, ``::1`` and ``localhost``, and the client is told to trust that authority only
(:attr:`LocalTLS.ca_file`, :meth:`LocalTLS.client_context`). The certificates are made by
`trustme <https://trustme.readthedocs.io>`_, which ``pip install policyroute[testing]``
installs.

Example:
    >>> import httpx
    >>> from policyroute.testing import FakeProvider
    >>> tls = LocalTLS()
    >>> with FakeProvider(tls=tls) as fp:
    ...     r = httpx.get(fp.base_url + "/health", verify=tls.client_context())
    ...     fp.base_url.startswith("https://"), r.status_code
    (True, 200)
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["LocalTLS"]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
"""The names the certificate of a :class:`LocalTLS` is valid for, by default."""


class LocalTLS:
    """A certificate authority made for one test run, and a certificate it issued for
    ``hosts`` (by default ``127.0.0.1``, ``::1`` and ``localhost``).

    Serve with it: ``FakeProvider(tls=tls)`` (or ``FakeProvider(tls=True)``, which makes one:
    ``fp.tls``). Trust it on the client side, for this authority only, with
    :meth:`client_context` (``httpx.Client(verify=...)``, ``aiohttp``'s ``ssl=...``) or
    :attr:`ca_file`, a PEM file of the authority's certificate. litellm reads its trust
    (``litellm.ssl_verify``, else the ``SSL_VERIFY`` or ``SSL_CERT_FILE`` variable) when it
    builds a client, and keeps the clients it builds for an hour: in its client cache
    (``litellm.in_memory_llm_clients_cache``; the OpenAI SDK's per endpoint, Anthropic's per
    timeout) and in ``litellm.module_level_client`` / ``module_level_aclient`` (Anthropic's
    streams). Set ``litellm.ssl_verify = tls.ca_file`` before litellm builds any of them
    (one session-wide ``LocalTLS``), or give each HTTPS test a client cache and handlers of
    its own, built while ``litellm.ssl_verify`` names the file.

    The authority's files live in a temporary directory until the object is collected
    (or the interpreter exits).

    Example:
        >>> tls = LocalTLS()
        >>> tls.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        True
        >>> tls.client_context().verify_mode == ssl.CERT_REQUIRED
        True
    """

    def __init__(self, hosts: Sequence[str] = LOOPBACK_NAMES) -> None:
        if isinstance(hosts, str) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise TypeError("LocalTLS hosts must be a non-empty sequence of host names or IPs")
        trustme = _trustme()
        self.hosts: tuple[str, ...] = tuple(hosts)
        self._ca: Any = trustme.CA()
        self._cert: Any = self._ca.issue_cert(*self.hosts)
        directory = tempfile.mkdtemp(prefix="policyroute-tls-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        self.ca_file: str = os.path.join(directory, "ca.pem")
        """The path of a PEM file with the authority's certificate: what a client trusts."""
        self._ca.cert_pem.write_to_path(self.ca_file)

    @property
    def ca_pem(self) -> bytes:
        """The authority's certificate, PEM-encoded (the content of :attr:`ca_file`).

        Example:
            >>> tls = LocalTLS()
            >>> with open(tls.ca_file, "rb") as pem:
            ...     pem.read() == tls.ca_pem
            True
        """
        return bytes(self._ca.cert_pem.bytes())

    def server_context(self) -> ssl.SSLContext:
        """A new server-side context that presents the certificate.

        Example:
            >>> LocalTLS().server_context().verify_mode == ssl.CERT_NONE  # no client certificate
            True
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A new client-side context that verifies peers against this authority alone.

        Example:
            >>> context = LocalTLS().client_context()
            >>> context.check_hostname, len(context.get_ca_certs())
            (True, 1)
        """
        return ssl.create_default_context(cafile=self.ca_file)

    def __repr__(self) -> str:
        return f"LocalTLS(hosts={self.hosts!r}, ca_file={self.ca_file!r})"


def _trustme() -> Any:
    try:
        import trustme
    except ImportError as exc:  # an optional dependency of policyroute.testing
        raise ImportError(
            "serving the fake provider over TLS needs the trustme package, which makes its"
            " certificates: pip install 'policyroute[testing]' (or pip install trustme)"
        ) from exc
    return trustme
