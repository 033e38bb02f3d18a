"""The address guard judges IPv6 addresses that carry an IPv4 address by that IPv4 address.

A NAT64 gateway, a 6to4 or Teredo relay, an ISATAP router or the host's own stack delivers
these to the IPv4 address inside, so ``::7f00:1`` must be refused like ``127.0.0.1``.
"""

from __future__ import annotations

import ipaddress

import pytest

from flowloom.exceptions import NodeFailed
from flowloom.nodes._net import blocked_reason, embedded_ipv4, resolve_checked
from flowloom.testing import make_context, run_node


def _teredo(client: str, server: str = "65.54.227.120") -> str:
    """A Teredo address (2001:0::/32) for ``client``, whose address is stored XOR-ed."""
    value = (0x2001_0000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
    value |= 0x8000 << 48  # flags
    value |= (0xFFFF ^ 3544) << 32  # the obfuscated port
    value |= int(ipaddress.IPv4Address(client)) ^ 0xFFFF_FFFF
    return str(ipaddress.IPv6Address(value))


REFUSED = {
    # IPv4-compatible (::/96)
    "::7f00:1": "loopback",
    "::a9fe:a9fe": "link-local",
    "::a00:1": "private",
    # IPv4-mapped and IPv4-translated
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "link-local",
    "::ffff:0:7f00:1": "loopback",
    "::ffff:0:a9fe:a9fe": "link-local",
    # NAT64: the well-known prefix carries the address; local-use prefixes are refused whole
    "64:ff9b::a9fe:a9fe": "link-local",
    "64:ff9b::7f00:1": "loopback",
    "64:ff9b::c0a8:101": "private",
    "64:ff9b:1::808:808": "NAT64 local-use",
    "64:ff9b:1:7f00:1::": "NAT64 local-use",
    # 6to4
    "2002:7f00:1::": "loopback",
    "2002:a9fe:a9fe::1": "link-local",
    "2002:c0a8:101::": "private",
    # Teredo: the client address is obfuscated (XOR)
    _teredo("127.0.0.1"): "loopback",
    _teredo("169.254.169.254"): "link-local",
    # ISATAP interface ids under a global prefix
    "2a00:1450::5efe:7f00:1": "loopback",
    "2a00:1450::200:5efe:a00:1": "private",
}


@pytest.mark.parametrize(("address", "kind"), sorted(REFUSED.items()))
def test_an_embedded_ipv4_address_is_judged_by_the_ipv4_rules(address: str, kind: str) -> None:
    reason = blocked_reason(ipaddress.ip_address(address))

    assert reason is not None
    assert reason.startswith(kind)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "2a00:1450:4001:81b::200e",  # a plain global IPv6 address
        "64:ff9b::808:808",  # NAT64 to a public address
        "2002:808:808::1",  # 6to4 of a public address
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_and_public_embeddings_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_the_embedded_addresses_are_extracted() -> None:
    def inner(address: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(address))]

    assert inner("::7f00:1") == ["127.0.0.1"]
    assert inner("::ffff:0:a9fe:a9fe") == ["169.254.169.254"]
    assert inner("64:ff9b::a9fe:a9fe") == ["169.254.169.254"]
    assert inner("2002:7f00:1::") == ["127.0.0.1"]
    assert inner(_teredo("10.1.2.3")) == ["65.54.227.120", "10.1.2.3"]
    assert inner("2a00:1450::5efe:7f00:1") == ["127.0.0.1"]
    assert inner("2a00:1450:4001:81b::200e") == []
    # The loopback and unspecified addresses are themselves, not IPv4-compatible forms.
    assert inner("::1") == inner("::") == []


async def test_a_literal_embedding_a_private_address_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match=r"::7f00:1 \(it carries 127\.0\.0\.1\): loopback"):
        await resolve_checked("::7f00:1", 80)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::7f00:1]:9/",
        "http://[::a9fe:a9fe]/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://[::ffff:0:7f00:1]/",
    ],
)
async def test_http_request_refuses_embedded_private_targets(url: str) -> None:
    with pytest.raises(NodeFailed, match="are not allowed"):
        await run_node("http.request", {"url": url}, ctx=make_context())
