"""Where deliveries may go: the URL rules, the address rules, and that the client connects to the checked address."""

from __future__ import annotations

import asyncio
import ipaddress

import aiohttp
import pytest

from services.webhooks.netguard import Guard, GuardedResolver, Policy, RefusedError, address_allowed, check_url
from tests.services.webhooks_harness import Receiver

PUBLIC = Policy()
VPC = Policy(blocked=(ipaddress.ip_network("52.28.0.0/16"),), platform_domains=("voice-platform.example",))


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.partner.example/x",  # not https
        "https://hooks.partner.example:8443/x",  # not 443
        "https://127.0.0.1/x",
        "https://10.0.0.5/x",
        "https://169.254.169.254/latest/meta-data/",  # the metadata address
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://2130706433/x",  # 127.0.0.1 as one number: not a DNS name
        "https://localhost/x",
        "https://metadata.google.internal/x",
        "https://user:pw@hooks.partner.example/x",
        "https://hooks.partner.example/x#frag",
        "https://intranet/x",
        "ftp://hooks.partner.example/x",
        "https://hooks.partner.example/\nx",
        "https://" + "a" * 2050 + ".example/",
        "https://api.voice-platform.example/v2/calls",  # the platform's own zone
        "https://voice-platform.example/",
        "https://hooks.partner.example\\@10.0.0.1/",  # parsers disagree on the host: refused
        "https://127.1/x",  # not an IP to Python, 127.0.0.1 to inet_aton: a DNS name that must resolve (it does not)
    ],
)
def test_urls_refused_at_registration(url: str) -> None:
    with pytest.raises(RefusedError):
        check_url(url, VPC)
        asyncio.run(Guard(VPC).addresses(check_url(url, VPC).host))  # what registration does after the rules


def test_a_public_https_url_passes() -> None:
    target = check_url("https://Hooks.Partner.example./in?x=1", VPC)
    assert (target.host, target.port) == ("hooks.partner.example", 443)
    assert check_url("https://Bücher.example/in", VPC).host == "bücher.example"  # IDN: both parsers agree
    assert check_url("https://hooks.partner.example:443/in", VPC).port == 443


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fd12::1",
        "ff02::1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "52.28.1.7",  # the platform's own range (its gateway addresses, from the policy)
        "not-an-address",
    ],
)
def test_addresses_refused(address: str) -> None:
    assert not address_allowed(address, VPC)


def test_public_addresses_allowed_and_loopback_only_by_the_test_setting() -> None:
    assert address_allowed("93.184.216.34", VPC)
    assert address_allowed("52.28.1.7", PUBLIC)  # public: refused above only as the platform's own range
    assert address_allowed("2606:2800:220:1:248:1893:25c8:1946", VPC)
    assert not address_allowed("127.0.0.1", PUBLIC)
    assert address_allowed("127.0.0.1", Policy(allow_loopback=True))
    assert not address_allowed("10.0.0.1", Policy(allow_loopback=True))  # loopback only, not every private range
    with pytest.raises(RefusedError):
        check_url("http://127.0.0.1:9000/x", PUBLIC)
    assert check_url("http://127.0.0.1:9000/x", Policy(allow_loopback=True)).port == 9000


def test_a_name_with_one_private_answer_is_refused() -> None:
    answers = {"rebind.partner.example": ["93.184.216.34", "10.0.0.8"], "ok.partner.example": ["93.184.216.34"]}

    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError("NXDOMAIN")
        return answers[host]

    guard = Guard(VPC, resolve)
    assert asyncio.run(guard.addresses("ok.partner.example")) == ["93.184.216.34"]
    with pytest.raises(RefusedError, match="may not go to"):
        asyncio.run(guard.addresses("rebind.partner.example"))
    with pytest.raises(RefusedError, match="does not resolve"):
        asyncio.run(guard.addresses("missing.partner.example"))


def test_the_client_connects_to_the_address_the_guard_checked() -> None:
    """`receiver.partner.example` does not exist in any DNS: the request reaches the loopback receiver only because
    the connector used the guard's answer; and when the answer is private, no connection is made at all."""
    answers = {"receiver.partner.example": ["127.0.0.1"]}
    asked: list[str] = []

    async def resolve(host: str) -> list[str]:
        asked.append(host)
        return answers[host]

    async def fetch(port: int) -> int:
        guard = Guard(Policy(allow_loopback=True), resolve)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard), use_dns_cache=False)
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            session.post(f"http://receiver.partner.example:{port}/in", data=b"{}", allow_redirects=False) as response,
        ):
            return response.status

    with Receiver() as receiver:
        assert asyncio.run(fetch(receiver.port)) == 204
        assert receiver.received[0].headers["host"] == f"receiver.partner.example:{receiver.port}"
        answers["receiver.partner.example"] = ["10.0.0.9"]
        with pytest.raises(aiohttp.ClientConnectorDNSError):
            asyncio.run(fetch(receiver.port))
        assert len(receiver.received) == 1
    assert asked == ["receiver.partner.example", "receiver.partner.example"]
