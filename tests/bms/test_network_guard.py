"""The suite's network guard (tests/sockets.py): the configured services always, other loopback ports only
for a test marked ``loopback``, nothing else."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.sockets import Policy, SocketBlockedError, endpoints


@pytest.fixture
def local_server() -> Iterator[tuple[socket.socket, int]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))  # binding and listening are never guarded: connecting is
        server.listen(1)
        yield server, server.getsockname()[1]


def test_a_connection_outside_loopback_is_refused_before_it_leaves() -> None:
    with pytest.raises(SocketBlockedError, match=r"192\.0\.2\.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)  # TEST-NET-1: never routed


@pytest.mark.loopback
def test_loopback_does_not_open_other_hosts() -> None:
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)


def test_an_undeclared_local_server_is_refused(local_server: tuple[socket.socket, int]) -> None:
    _, port = local_server
    with pytest.raises(SocketBlockedError, match=str(port)):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with socket.socket() as client, pytest.raises(SocketBlockedError):
        client.connect_ex(("127.0.0.1", port))


def test_the_refusal_is_not_an_os_error_that_a_retry_loop_would_swallow(
    local_server: tuple[socket.socket, int],
) -> None:
    _, port = local_server
    caught = ""
    try:
        socket.create_connection(("localhost", port), timeout=2)
    except OSError:  # what client code catches around a connection
        caught = "connection error"
    except SocketBlockedError:
        caught = "guard"
    assert caught == "guard"


def test_names_other_than_localhost_are_not_resolved() -> None:
    with pytest.raises(SocketBlockedError, match=r"example\.com"):
        socket.getaddrinfo("example.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)  # numeric hosts need no DNS


@pytest.mark.loopback
def test_a_test_marked_loopback_reaches_its_own_server(local_server: tuple[socket.socket, int]) -> None:
    server, port = local_server
    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        peer, _ = server.accept()
        with peer:
            client.sendall(b"ok")
            assert peer.recv(2) == b"ok"


def test_the_configured_services_are_open_on_their_ports_only() -> None:
    services, hosts = endpoints(["redis://localhost:6390/8", "postgres://127.0.0.1:5432", "memory://", ""])
    assert services >= {("127.0.0.1", 6390), ("127.0.0.1", 5432)}
    assert hosts == {"localhost", "127.0.0.1"}
    policy = Policy(services, hosts, loopback=False)
    assert policy.allows(("127.0.0.1", 6390))
    assert policy.allows(("localhost", 5432))
    assert not policy.allows(("127.0.0.1", 6391))
    assert not policy.allows(("127.0.0.2", 6390))
    assert not policy.allows(("db.internal", 5432))  # a name is never connected to unresolved
    assert policy.allows("/run/postgresql/.s.PGSQL.5432")  # Unix sockets
    assert Policy(services, hosts, loopback=True).allows(("::1", 8000))
