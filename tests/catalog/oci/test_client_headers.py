"""Numbers and links from response headers: ASCII digits only, bounded, and nothing a header
holds can raise anything but a RegistryError.

`int()` and `str.isdigit()` take '²', '٣', '+5', ' 5 ' and '1_0'; a Retry-After of '²' once
escaped the client as a ValueError and failed a whole poll. The parsers are checked over
arbitrary text with hypothesis, then the client is run against the fault proxy sending such
headers.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.oci.client import (
    MAX_CONTENT_LENGTH,
    MAX_QUOTA,
    MAX_QUOTA_WINDOW,
    MAX_RETRY_AFTER,
    RateLimit,
    RegistryClient,
    _content_length,
    header_number,
    parse_rate_limit,
    parse_retry_after,
)
from catalog.oci.errors import BadResponse, RateLimited, RegistryError, Unavailable
from tests.support.faultproxy import AddHeaders, FaultProxy, Respond, SetContentLength, SetHeader

MANIFEST = r"/manifests/"
TAGS = r"/tags/list$"
PROPERTIES = settings(max_examples=500, deadline=None, database=None)

# What a header value can be once http.client has decoded it: any latin-1 character but CR/LF.
HEADER_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF, exclude_characters="\r\n"))
NUMBERISH = st.sampled_from(
    [
        "²",
        "¹²",
        "٣",
        "+5",
        "-5",
        " 5 ",
        "\t7",
        "1_0",
        "0x10",
        "5.0",
        "1e3",
        "5,5",
        "٣٣",
        "①",
        "\U0001d7d3",
        "",
        " ",
    ]
)
# As a hostile registry sends them: the UTF-8 bytes of any text, which http.client reads as latin-1.
ON_THE_WIRE = st.one_of(HEADER_TEXT, NUMBERISH.map(lambda v: v.encode().decode("latin-1")))
ANY_TEXT = st.one_of(st.text(), HEADER_TEXT, NUMBERISH, st.integers().map(str), st.just("9" * 5000))


# --- the parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("7", 7),
        (" 7\t", 7),
        ("007", 7),
        ("0" * 100 + "7", 7),
        ("1000", 100),  # clamped
        ("9" * 5000, 100),  # clamped, and never handed to int()
        ("²", None),
        ("٣", None),
        ("①", None),
        ("+5", None),
        ("-5", None),
        ("1_0", None),
        ("5.0", None),
        ("5 5", None),
        ("5, 5", None),
        ("0x10", None),
        ("7\n", None),
        ("", None),
        (None, None),
    ],
)
def test_header_numbers_are_ascii_digits_and_bounded(value, expected):
    assert header_number(value, 100) == expected


@PROPERTIES
@given(ANY_TEXT, st.integers(min_value=0, max_value=2**64))
def test_header_number_is_a_bounded_int_or_none_for_any_text(value, maximum):
    number = header_number(value, maximum)
    assert number is None or (type(number) is int and 0 <= number <= maximum)
    ascii_digits = value.strip(" \t")
    if ascii_digits and all("0" <= c <= "9" for c in ascii_digits):
        significant = ascii_digits.lstrip("0") or "0"
        # int() refuses strings past 4300 digits; every maximum here has fewer than 21.
        assert number == (maximum if len(significant) > 30 else min(int(significant), maximum))
    else:
        assert number is None


HTTP_DATES = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Xyz", ""]),
    st.integers(0, 99),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    st.integers(-10, 10**6),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["GMT", "-0000", "+9999", "-2359", "+2400", "EST", "Z", ""]),
)


@PROPERTIES
@given(st.one_of(ANY_TEXT, HTTP_DATES))
def test_retry_after_is_a_bounded_delay_or_none_for_any_text(value):
    delay = parse_retry_after(value)
    assert delay is None or (type(delay) is float and 0.0 <= delay <= MAX_RETRY_AFTER)


@pytest.mark.parametrize("value", ["²", "٣", "+5", "1_0", "5.5", "-1", "1e400", "inf", "nan", "0x10"])
def test_retry_after_that_is_not_ascii_digits_or_a_date_is_ignored(value):
    assert parse_retry_after(value) is None


def test_retry_after_beyond_a_day_is_a_day():
    assert parse_retry_after("9" * 5000) == MAX_RETRY_AFTER
    far = email.utils.formatdate(time.time() + 10 * 365 * 86400, usegmt=True)
    assert parse_retry_after(far) == MAX_RETRY_AFTER
    assert parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT") is None


@PROPERTIES
@given(st.dictionaries(st.sampled_from(["ratelimit-limit", "ratelimit-remaining"]), ANY_TEXT))
def test_rate_limit_is_bounded_or_none_for_any_text(headers):
    rate_limit = parse_rate_limit(headers)
    if rate_limit is None:
        return
    assert isinstance(rate_limit, RateLimit)
    for number in (rate_limit.limit, rate_limit.remaining):
        assert number is None or 0 <= number <= MAX_QUOTA
    assert rate_limit.window is None or 0 < rate_limit.window <= MAX_QUOTA_WINDOW


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ratelimit-remaining": "76;w=21600"}, RateLimit(None, 76, 21600)),
        ({"ratelimit-remaining": "76 ; w=21600"}, RateLimit(None, 76, 21600)),
        ({"ratelimit-remaining": "76;w=21600, 76;w=21600"}, RateLimit(None, 76, 21600)),
        ({"ratelimit-remaining": "9" * 5000}, RateLimit(None, MAX_QUOTA, None)),
        ({"ratelimit-remaining": "5;w=" + "9" * 5000}, RateLimit(None, 5, MAX_QUOTA_WINDOW)),
        ({"ratelimit-remaining": "5;w=²"}, RateLimit(None, 5, None)),
        ({"ratelimit-remaining": "²"}, None),
        ({"ratelimit-remaining": "1_0"}, None),
        ({"ratelimit-remaining": "+5"}, None),
        ({"ratelimit-limit": "٣", "ratelimit-remaining": "-1"}, None),
    ],
)
def test_rate_limit_headers_accept_ascii_digits_only(headers, expected):
    assert parse_rate_limit(headers) == expected


@PROPERTIES
@given(ANY_TEXT)
def test_content_length_is_a_bounded_int_or_none_for_any_text(value):
    length = _content_length(SimpleNamespace(headers={"Content-Length": value}))
    assert length is None or (type(length) is int and 0 <= length <= MAX_CONTENT_LENGTH)


# --- the client against a registry sending them --------------------------------------------------


def client_for(proxy: FaultProxy, **options) -> RegistryClient:
    settings = {"backoff": 0.01, "max_backoff": 2.0, "max_attempts": 3, "timeout": 5.0}
    return RegistryClient(proxy.host, **(settings | options))


@pytest.fixture
def pushed(pusher, repo_name):
    return pusher.push(repo_name, "v1", "oci")


HOSTILE_NUMBERS = ["²", "¹²", "+5", "-1", " 5 ", "1_0", "0x10", "5.5", "1e400", "nan", "", "9" * 5000]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_a_503_with_a_hostile_retry_after_is_retried_or_reported_never_raised_raw(fault_proxy, pushed, value):
    fault_proxy.add_rule(Respond(503, {"Retry-After": value}), method="HEAD", path=MANIFEST, times=1)

    with client_for(fault_proxy) as client:
        started = time.monotonic()
        try:
            head = client.head_manifest(pushed.repository, "v1")
        except Unavailable:
            wait = parse_retry_after(value)
            assert wait is not None and wait > client.max_backoff, "only a long wait goes back to the caller"
        else:
            assert head.digest == pushed.digest
        assert time.monotonic() - started < 3, "no retry waits longer than max_backoff"


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_a_429_with_a_hostile_retry_after_is_rate_limited_with_a_bounded_wait(fault_proxy, pushed, value):
    fault_proxy.add_rule(Respond(429, {"Retry-After": value}), method="HEAD", path=MANIFEST)

    with client_for(fault_proxy, max_backoff=0.1) as client, pytest.raises(RateLimited) as raised:
        client.head_manifest(pushed.repository, "v1")

    retry_after = raised.value.retry_after
    assert retry_after is None or 0 <= retry_after <= MAX_RETRY_AFTER


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_hostile_rate_limit_headers_are_ignored_or_bounded(fault_proxy, pushed, value):
    fault_proxy.add_rule(
        AddHeaders({"ratelimit-limit": value, "ratelimit-remaining": f"{value};w={value}"}),
        method="HEAD",
        path=MANIFEST,
    )

    with client_for(fault_proxy) as client:
        assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
        rate_limit = client.rate_limit

    if value.strip(" ") in ("5", "9" * 5000):
        assert rate_limit is not None and rate_limit.remaining <= MAX_QUOTA
    else:
        assert rate_limit is None


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_a_head_with_a_hostile_content_length_still_gives_the_digest(fault_proxy, pushed, value):
    fault_proxy.add_rule(SetHeader("Content-Length", value), method="HEAD", path=MANIFEST)

    with client_for(fault_proxy) as client:
        head = client.head_manifest(pushed.repository, "v1")

    assert head.digest == pushed.digest
    assert head.size in (None, 5, MAX_CONTENT_LENGTH)


@pytest.mark.parametrize(
    "value", ["²", "٣".encode().decode("latin-1"), "+5", "1_0", "5, 5", "5, 6", "0x10", "-1"]
)
def test_a_get_with_a_content_length_that_is_not_a_number_is_a_bad_response(fault_proxy, pushed, value):
    fault_proxy.add_rule(SetContentLength(value), method="GET", path=MANIFEST)

    with client_for(fault_proxy) as client:
        started = time.monotonic()
        with pytest.raises(BadResponse):
            client.get_manifest(pushed.repository, "v1")

    assert time.monotonic() - started < 3, "the body is not waited for"
    assert fault_proxy.count("GET", MANIFEST) == 1


@pytest.mark.parametrize(
    "link",
    [
        "<http://[::1/v2/x>; rel=next",
        '<http://127.0.0.1:99999/v2/x>; rel="next"',
        "<>; rel=next",
        '<\x00>; rel="next"',
        "rel=next",
        "<<<;;;===,,,>>>",
        '<//evil.example/v2/x>; rel="next"',
    ],
)
def test_a_hostile_link_header_is_a_bad_response_or_the_end_of_the_list(fault_proxy, repo_name, link):
    body = json.dumps({"name": repo_name, "tags": ["a"]}).encode()
    fault_proxy.add_rule(Respond(200, {"Link": link}, body), method="GET", path=TAGS, times=1)
    fault_proxy.add_rule(Respond(200, body=body), method="GET", path=TAGS)

    with client_for(fault_proxy) as client:
        try:
            listed = client.list_tags(repo_name)
        except BadResponse:
            return
    assert listed.tags == ("a",)


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_body_nested_too_deep_is_still_an_error_of_its_status(fault_proxy, pushed, status):
    fault_proxy.add_rule(
        Respond(status, body=b'{"errors": ' + DEEP[:60_000] + b"}"), method="GET", path=MANIFEST
    )

    with client_for(fault_proxy, max_attempts=1) as client, pytest.raises(RegistryError) as raised:
        client.get_manifest(pushed.repository, "v1")

    assert type(raised.value).__name__ in {"TagNotFound", "Unavailable"}


def test_a_tag_list_nested_too_deep_is_a_bad_response(fault_proxy, repo_name):
    fault_proxy.add_rule(Respond(200, body=b'{"tags": ' + DEEP + b"}"), method="GET", path=TAGS)

    with client_for(fault_proxy) as client, pytest.raises(BadResponse):
        client.list_tags(repo_name)


# Fuzz the headers of real answers: whatever they hold, the client returns or raises a RegistryError.
FUZZED = [
    "Retry-After",
    "ratelimit-limit",
    "ratelimit-remaining",
    "Docker-Content-Digest",
    "Content-Type",
    "Link",
]


@settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.dictionaries(st.sampled_from([*FUZZED, "Content-Length"]), ON_THE_WIRE),
    status=st.sampled_from([200, 200, 404, 429, 503]),
)
def test_any_header_values_on_a_head_end_in_an_answer_or_a_registry_error(
    fault_proxy, pushed, headers, status
):
    fault_proxy.clear_rules()
    actions = [SetHeader(name, value.strip(" \t")) for name, value in headers.items()]
    if status != 200:
        actions = [Respond(status, dict(headers))]
    fault_proxy.add_rule(actions, method="HEAD", path=MANIFEST)

    client = client_for(fault_proxy, max_backoff=0.05, max_attempts=2)
    with client, contextlib.suppress(RegistryError):
        client.head_manifest(pushed.repository, "v1")
    assert client.rate_limit is None or (client.rate_limit.remaining or 0) <= MAX_QUOTA


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(headers=st.dictionaries(st.sampled_from(FUZZED), ON_THE_WIRE))
def test_any_header_values_on_a_tag_list_end_in_a_list_or_a_registry_error(fault_proxy, repo_name, headers):
    fault_proxy.clear_rules()
    body = json.dumps({"name": repo_name, "tags": ["a", "b"]}).encode()
    fault_proxy.add_rule(Respond(200, dict(headers), body), method="GET", path=TAGS, times=1)
    fault_proxy.add_rule(Respond(200, body=body), method="GET", path=TAGS)

    client = client_for(fault_proxy, max_backoff=0.05, max_attempts=2)
    with client, contextlib.suppress(RegistryError):
        assert client.list_tags(repo_name).tags == ("a", "b")


def test_an_error_about_a_64_kib_location_stays_short_and_keeps_its_cause(fault_proxy, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "oci")
    closed = FaultProxy(fault_proxy.upstream)
    closed.close()  # its port is free again: nothing listens there
    location = f"http://127.0.0.1:{closed.port}/" + "a" * 60_000
    fault_proxy.add_rule(Respond(307, {"Location": location}), method="GET", path=r"/blobs/")

    with client_for(fault_proxy, max_attempts=1) as client, pytest.raises(Unavailable) as raised:
        client.get_config(repo_name, pushed.config_digest)

    assert len(str(raised.value)) < 600
    assert "refused" in str(raised.value)
