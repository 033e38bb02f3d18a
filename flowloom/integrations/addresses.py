"""Which addresses outbound HTTP may reach: private, loopback and link-local targets are refused.

IPv6 addresses that carry an IPv4 address inside (IPv4-mapped, -translated and -compatible,
NAT64, 6to4, Teredo, ISATAP interface ids) are judged by that IPv4 address too: a translator or
tunnel on the path delivers them to it, so ``::7f00:1`` is as much loopback as ``127.0.0.1``.
A pure client module: the nodes' HTTP (``flowloom.nodes._net``), the OAuth client and the MCP
checks all obey it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

__all__ = ["IPAddress", "blocked_reason", "embedded_ipv4", "resolve_checked"]


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
"""``::a.b.c.d``, deprecated (RFC 4291) but still tunnelled to the IPv4 address by some stacks."""
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
"""``::ffff:0:a.b.c.d`` (RFC 2765, SIIT)."""
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): the gateway connects to the last 32 bits."""
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
"""NAT64 local-use prefixes (RFC 8215): the IPv4 address may sit at any RFC 6052 offset, so
no one place can be checked; refused whole (they are not global addresses anyway)."""
_ISATAP_IDS: Final = frozenset({0x0000_5EFE, 0x0200_5EFE, 0x0100_5EFE, 0x0300_5EFE})
"""ISATAP interface ids (RFC 5214, with the u and g bits either way): ``...:0:5efe:a.b.c.d``."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which a translator or tunnel delivers to.

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``), IPv4-compatible
    (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``), Teredo
    (``2001::/32``: the server, and the client, whose address is stored XOR-ed) and ISATAP
    interface ids (``...:0:5efe:a.b.c.d``). Empty for an address that embeds none.
    """
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _IPV4_TRANSLATED or address in _NAT64:
        found.append(low32)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        # :: and ::1 are the unspecified and loopback addresses, judged as themselves.
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        server, client = address.teredo
        found.extend((server, client))
    if (int(address) >> 32) & 0xFFFF_FFFF in _ISATAP_IDS:
        found.append(low32)
    return found


def blocked_reason(address: IPAddress) -> str | None:
    """Why a node may not connect to ``address`` (None when it is a public address).

    An IPv6 address that embeds an IPv4 address (see :func:`embedded_ipv4`) is refused when
    either it or the IPv4 address inside it is not public: ``"loopback (it carries
    127.0.0.1)"``.
    """
    refusal = _refusal(address)
    if refusal is None:
        return None
    reason, inner = refusal
    return reason if inner is None else f"{reason} (it carries {inner})"


def _refusal(address: IPAddress) -> tuple[str, ipaddress.IPv4Address | None] | None:
    """The kind of address that is refused, and the embedded IPv4 address that made it so."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "NAT64 local-use", None
        for inner in embedded_ipv4(address):
            reason = _own_reason(inner)
            if reason is not None:
                return reason, inner
    reason = _own_reason(address)
    return None if reason is None else (reason, None)


def _own_reason(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "not a public address"
    return None


async def resolve_checked(host: str, port: int) -> str:
    """An address of ``host`` to connect to, after checking every address it resolves to.

    Raises ValueError naming the address and why it is refused, or saying the host does not
    resolve. A literal IP address is checked without a DNS query.
    """
    literal = True
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        literal = False
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve host {host!r}: {exc.strerror}") from None
        addresses = []
        for info in infos:
            # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"); the zone is not part of it.
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
    for address in addresses:
        refusal = _refusal(address)
        if refusal is not None:
            reason, inner = refusal
            shown = host if literal else f"{host} ({address})"
            carried = "" if inner is None else f" (it carries {inner})"
            raise ValueError(
                f"refusing to connect to {shown}{carried}: {reason} addresses are not allowed "
                "(an administrator can allow private targets)"
            )
    return str(addresses[0])
