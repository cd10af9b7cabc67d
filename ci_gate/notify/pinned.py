"""Connections to the one address the host check approved (ci_gate.notify.hosts.pin).

Checking a name's address and then letting the HTTP or SMTP client resolve the name again would
leave a gap a DNS-rebinding receiver could use: the second answer could be an internal address. So
the socket is opened to the checked address itself, while everything else still speaks to the host
name: the HTTP Host header, TLS's server name and certificate check, the SMTP STARTTLS check.
"""

from __future__ import annotations

import smtplib
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

NO_PROXIES: dict[str, Any] = {"http": None, "https": None, "all": None}
"""A pinned request goes straight to its address: a proxy would resolve the name itself (requests drops
the proxies of the environment that a request sets to None)."""


class _PinnedConnection(HTTPConnection):
    pinned_address = ""

    def _new_conn(self) -> socket.socket:
        # urllib3 opens the socket to `_dns_host`; only for that moment is it the checked address, so
        # the Host header, SNI and certificate verification keep the name
        name = self._dns_host
        self._dns_host = self.pinned_address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        attributes = {"pinned_address": self._address}
        plain = type("PinnedHTTPConnection", (_PinnedConnection,), attributes)
        secure = type("PinnedHTTPSConnection", (_PinnedConnection, HTTPSConnection), attributes)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
            "https": type("PinnedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": secure}),
        }


def session(address: str | None) -> requests.Session:
    """A session whose every connection goes to `address` (send with `proxies=NO_PROXIES`); None: an
    ordinary session (the operator's own endpoints, not checked)."""
    pinned = requests.Session()
    if address is None:
        return pinned
    adapter = _PinnedAdapter(address)
    pinned.mount("http://", adapter)
    pinned.mount("https://", adapter)
    return pinned


class SMTP(smtplib.SMTP):
    """smtplib.SMTP connecting to `address` (None: the host name, resolved as usual); STARTTLS still
    checks the certificate against the host name given."""

    def __init__(self, address: str | None, host: str, port: int, timeout: float) -> None:
        self._pinned_address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self._pinned_address or host, port, timeout)  # type: ignore[misc]
