"""The suite's network guard: a test connects only to the configured services, and to other loopback
ports only where it declares ``@pytest.mark.loopback``.

Allowed in every test: the endpoints (address and port) of the services the settings configure —
PostgreSQL, Redis (cache, broker, channel layer), MongoDB — since a test on PG+Redis reaches them through
every query and cache call, wherever its fixtures opened the connection. Allowed with the ``loopback``
marker (on the test, its module or its class): any port of 127.0.0.0/8 and ::1, for a test that talks to
a server it starts (a live server, an LLM stub, a worker's metrics port). Anything else — another host,
or an undeclared port on 127.0.0.1 — raises ``SocketBlockedError`` at ``connect`` and a name other than
localhost or a service's host is not even resolved; both are ``RuntimeError`` so that code which catches
``OSError`` cannot swallow them and pass.

pytest-socket (``--allow-hosts``) checks hosts only, so on PG+Redis every test needed loopback and an
undeclared local server went unnoticed: hence this small equal, installed by tests/conftest.py. It
patches ``socket.socket.connect``/``connect_ex`` and ``socket.getaddrinfo`` for the duration of each
test (threads the test starts included); libpq (psycopg) connects in C and is not seen, which only
concerns PostgreSQL, a declared service anyway. Unix sockets are always allowed (asyncio's self-pipe).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379, "mongodb": 27017}
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

_true_connect = socket.socket.connect
_true_connect_ex = socket.socket.connect_ex
_true_getaddrinfo = socket.getaddrinfo


class SocketBlockedError(RuntimeError):
    """A test reached for the network outside what it may use."""


@dataclass(frozen=True)
class Policy:
    services: frozenset[tuple[str, int]]  # (IP address, port) of each configured service
    service_hosts: frozenset[str]  # the names they were configured with (resolved before the tests)
    loopback: bool  # the test declared that it talks to a local server of its own

    def allows(self, address: Any) -> bool:
        if not isinstance(address, tuple):  # a Unix socket's path
            return True
        host, port = str(address[0]).lower(), int(address[1])
        if host in LOCAL_NAMES:
            return self.loopback or any((ip, port) in self.services for ip in ("127.0.0.1", "::1"))
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False  # a name: connect() would resolve it in C, past the getaddrinfo guard
        return (str(ip), port) in self.services or (self.loopback and ip.is_loopback)

    def resolves(self, host: Any) -> bool:
        if host is None or isinstance(host, bytes | bytearray):
            host = host.decode() if host else None
        if host is None:
            return True
        name = str(host).lower()
        if name in LOCAL_NAMES or name in self.service_hosts:
            return True
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return False
        return True


_policy: Policy | None = None  # None outside a test: collection and session hooks are not guarded


def _blocked(what: str) -> SocketBlockedError:
    return SocketBlockedError(
        f"A test tried to {what}: tests may connect only to the configured services, and to loopback when "
        "they declare @pytest.mark.loopback (tests/sockets.py)."
    )


def _guarded_connect(sock: socket.socket, address: Any) -> None:
    policy = _policy
    if policy is not None and not policy.allows(address):
        sock.close()  # the caller may not get to close it: the error is not an OSError
        raise _blocked(f"connect to {address!r}")
    return _true_connect(sock, address)


def _guarded_connect_ex(sock: socket.socket, address: Any) -> int:
    policy = _policy
    if policy is not None and not policy.allows(address):
        sock.close()
        raise _blocked(f"connect to {address!r}")
    return _true_connect_ex(sock, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    policy = _policy
    if policy is not None and not policy.resolves(host):
        raise _blocked(f"resolve {host!r}")
    return _true_getaddrinfo(host, *args, **kwargs)


def endpoints(urls: Iterable[str]) -> tuple[frozenset[tuple[str, int]], frozenset[str]]:
    """The (IP, port) pairs and host names of service URLs (resolved now, before any test runs)."""
    pairs: set[tuple[str, int]] = set()
    names: set[str] = set()
    for url in urls:
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in DEFAULT_PORTS:
            continue  # memory://, sqlite, an unset service
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        names.add(parts.hostname.lower())
        for *_, sockaddr in _true_getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
            pairs.add((str(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])), port))
    return frozenset(pairs), frozenset(names)


def install() -> None:
    """Put the guards in place (once per session); they check the policy of the running test."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo


def uninstall() -> None:
    socket.socket.connect = _true_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _true_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _true_getaddrinfo


@contextmanager
def guarded(policy: Policy) -> Iterator[None]:
    """``policy`` applies to every connection made meanwhile (the test's own threads too)."""
    global _policy
    before, _policy = _policy, policy
    try:
        yield
    finally:
        _policy = before
