"""Endpoint choice, rate-limit headers and Retry-After parsing."""

import email.utils
import time

import pytest

from catalog.oci.client import RateLimit, endpoint, parse_rate_limit, parse_retry_after


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
