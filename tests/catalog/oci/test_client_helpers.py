"""Endpoint choice, rate-limit headers, Retry-After parsing and the kinds of addresses."""

import email.utils
import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.oci.client import RateLimit, endpoint, parse_rate_limit, parse_retry_after
from catalog.oci.transport import address_kind


@pytest.mark.parametrize(
    ("registry", "insecure", "url"),
    [
        ("docker.io", False, "https://registry-1.docker.io"),
        ("index.docker.io", False, "https://registry-1.docker.io"),
        ("quay.io", False, "https://quay.io"),
        ("registry.example:5000", True, "http://registry.example:5000"),
        ("localhost:5000", False, "http://localhost:5000"),
        ("127.0.0.2:5000", False, "http://127.0.0.2:5000"),
        ("[::1]:5000", False, "http://[::1]:5000"),
        ("10.0.0.1:5000", False, "https://10.0.0.1:5000"),
    ],
)
def test_endpoint(registry, insecure, url):
    assert endpoint(registry, insecure=insecure) == url


def test_rate_limit_headers():
    headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}
    assert parse_rate_limit(headers) == RateLimit(100, 76, 21600)
    assert parse_rate_limit({"ratelimit-remaining": "5"}) == RateLimit(None, 5, None)
    assert parse_rate_limit({}) is None
    assert parse_rate_limit({"ratelimit-remaining": "lots"}) is None


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("7") == 7.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(future) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after(past) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", "public"),
        ("2606:4700::6810:84e5", "public"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT and tailnets: inside someone's network
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),  # site-local, deprecated but routed by some
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "reserved"),  # noqa: S104 - an address to classify, not to bind
        ("0.1.2.3", "reserved"),
        ("::", "reserved"),
        ("224.0.0.1", "reserved"),  # multicast, though Python calls it global
        ("ff02::1", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:93.184.216.34", "public"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible, deprecated
    ],
)
def test_address_kinds(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind


@settings(max_examples=500, deadline=None, database=None)
@given(st.ip_addresses(v=4))
def test_an_ipv4_address_in_any_ipv6_disguise_is_of_the_same_kind(address):
    kind = address_kind(address)
    disguises = [
        ipaddress.IPv6Address(f"::ffff:{address}"),
        ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80)),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address)),
    ]
    assert {address_kind(disguise) for disguise in disguises} == {kind}


@settings(max_examples=500, deadline=None, database=None)
@given(st.ip_addresses())
def test_every_address_has_one_of_five_kinds(address):
    assert address_kind(address) in {"public", "loopback", "private", "link-local", "reserved"}
