"""Where deliveries may go: URL rules at registration, and an address check at every delivery.

An endpoint URL is https on port 443 to a public DNS name. The name is resolved at every delivery and every
address it resolves to must be public: not private, loopback, link-local (169.254.0.0/16 holds the cloud metadata
address), multicast, reserved, shared (100.64.0.0/10), nor one of the platform's own ranges (the VPC, the cluster's
pod and service ranges, the gateway's public addresses), which the deployment passes in. One bad address refuses
the whole name: a name that answers with a public and a private address is a rebinding attempt.

The HTTP client connects to the addresses this module checked (`GuardedResolver` is its resolver), so nothing
resolves the name again between the check and the connection. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str], Awaitable[list[str]]]
"""host name -> the addresses it resolves to now (tests inject their own)."""
MAX_URL = 2048
ALWAYS_BLOCKED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b::/96",  # NAT64: embeds any IPv4 address, private ones too
        "64:ff9b:1::/48",
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4: embeds an IPv4 address
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class RefusedError(Exception):
    """A URL or address deliveries may not go to; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class Policy:
    blocked: tuple[Network, ...] = ()
    """The platform's own ranges (VPC, pod and service CIDRs, gateway addresses), refused on top of ALWAYS_BLOCKED."""
    platform_domains: tuple[str, ...] = ()
    """The platform's own DNS zones: endpoints may not point into them."""
    allow_loopback: bool = False
    """Test setting: http and any port to 127.0.0.1/::1 (refused by the server when it runs in a cluster)."""


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: str, policy: Policy) -> bool:
    try:
        ip = _unmapped(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return False
    if policy.allow_loopback and any(ip in net for net in LOOPBACK if net.version == ip.version):
        return True
    if any(ip in net for net in (*ALWAYS_BLOCKED, *policy.blocked) if net.version == ip.version):
        return False
    return ip.is_global and not ip.is_multicast


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int


def check_url(url: str, policy: Policy) -> Target:
    """The URL rules (no DNS): https, port 443, a DNS name outside the platform's zones, no credentials."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise RefusedError(f"url: must be a string of at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise RefusedError("url: must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedError(f"url: not a valid URL ({exc})") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise RefusedError("url: has no host")
    _same_host_for_the_client(url, host)
    if parts.username is not None or parts.password is not None:
        raise RefusedError("url: must not carry credentials")
    if parts.fragment:
        raise RefusedError("url: must not have a fragment")
    loopback_test = policy.allow_loopback and (host == "localhost" or (_is_ip(host) and address_allowed(host, policy)))
    if loopback_test:
        if parts.scheme not in ("http", "https"):
            raise RefusedError("url: must be http(s)")
        return Target(url, host, port or (443 if parts.scheme == "https" else 80))
    if parts.scheme != "https":
        raise RefusedError("url: must be https")
    if port not in (None, 443):
        raise RefusedError("url: must use port 443")
    if _is_ip(host):
        raise RefusedError("url: must name a public DNS host, not an IP address")
    labels = host.split(".")
    if len(labels) < 2 or not all(labels) or any(len(label) > 63 for label in labels) or len(host) > 253:
        raise RefusedError("url: the host must be a fully qualified public DNS name")
    try:
        host.encode("idna")
    except UnicodeError:
        raise RefusedError("url: the host is not a valid DNS name") from None
    if labels[-1] in ("localhost", "local", "internal", "lan", "home", "corp", "localdomain", "arpa"):
        raise RefusedError("url: the host must be a public DNS name")
    for zone in policy.platform_domains:
        zone = zone.strip(".").lower()
        if zone and (host == zone or host.endswith("." + zone)):
            raise RefusedError("url: must not point into the platform's own domain")
    return Target(url, host, 443)


def _same_host_for_the_client(url: str, host: str) -> None:
    """The host checked here must be the host aiohttp connects to (it parses with yarl): a URL the two parsers read
    differently is refused, so no parser quirk leads the client somewhere the checks never looked."""
    try:
        raw = (yarl.URL(url).raw_host or "").rstrip(".").lower()
        expected = host if _is_ip(host) else host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise RefusedError("url: not a valid URL") from None
    if raw != expected:
        raise RefusedError("url: ambiguous host")


async def system_resolve(host: str) -> list[str]:
    """The system resolver (what the pod's resolv.conf says), both families."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class Guard:
    policy: Policy
    resolve: Resolve = system_resolve
    timeout: float = 5.0
    _last: dict[str, list[str]] = field(default_factory=dict, repr=False)

    async def addresses(self, host: str) -> list[str]:
        """Resolve `host` now and check every address; RefusedError if any is not allowed or none resolves."""
        if _is_ip(host):
            found = [host]
        else:
            try:
                found = await asyncio.wait_for(self.resolve(host), self.timeout)
            except (OSError, TimeoutError, UnicodeError) as exc:
                raise RefusedError(f"{host} does not resolve ({type(exc).__name__})") from None
        if not found:
            raise RefusedError(f"{host} does not resolve")
        bad = [address for address in found if not address_allowed(address, self.policy)]
        if bad:
            raise RefusedError(f"{host} resolves to an address deliveries may not go to ({bad[0]})")
        return list(found)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: the addresses the connector connects to are the ones the guard just checked."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            found = await self.guard.addresses(host)
        except RefusedError as exc:
            # aiohttp turns an OSError from the resolver into ClientConnectorDNSError: the attempt fails, no socket.
            raise OSError(str(exc)) from None
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in found
        ]

    async def close(self) -> None:
        return None


def parse_networks(text: Iterable[str], name: str) -> tuple[Network, ...]:
    out = []
    for item in text:
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not a CIDR range") from None
    return tuple(out)
