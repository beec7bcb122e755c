"""The client's address, taken from ``X-Forwarded-For`` only when the peer is a trusted proxy.

uvicorn runs with ``--no-proxy-headers`` (docker/Dockerfile, compose, deploy/k8s), so ``REMOTE_ADDR`` is
the TCP peer. When that peer is in ``TRUSTED_PROXIES`` (CIDRs, empty by default), the client is the
right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy: a client can prepend whatever it
likes to that header, but only the proxies append to it. Everything downstream (login lockouts,
throttles, /health/deep, the audit trail, the access log) reads the resolved ``REMOTE_ADDR``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_in(address: str, cidrs: Sequence[str]) -> bool:
    """Whether ``address`` parses as an IP in one of ``cidrs`` (anything unparsable is not)."""
    try:
        addr = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(addr in net for net in _networks(tuple(cidrs)))


def resolve_client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[str]) -> str:
    if not forwarded_for or not address_in(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            # A hop that is not an address at all was written by the client, not by a proxy.
            return hop if address_in(hop, ("0.0.0.0/0", "::/0")) else peer
    return hops[0] if hops else peer


class ClientIpMiddleware:
    """Rewrites ``REMOTE_ADDR`` to the resolved client (the peer is kept as ``BMS_PEER_ADDR``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        peer = request.META.get("REMOTE_ADDR", "")
        request.META["BMS_PEER_ADDR"] = peer
        request.META["REMOTE_ADDR"] = resolve_client_ip(
            peer, request.META.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
        )
        return self.get_response(request)


def request_client_ip(request: HttpRequest) -> str:
    """django-axes' ``AXES_CLIENT_IP_CALLABLE``: the address ClientIpMiddleware resolved (never a header)."""
    return str(request.META.get("REMOTE_ADDR", ""))
