"""RegistryClient against a misbehaving registry: retries, lies, hostile bodies and broken pagination.

Images are pushed straight to the real registry; the client reads them through a fault proxy
that answers, delays, resets or rewrites individual requests.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import socket
import time
from collections.abc import Iterator

import pytest

from catalog.oci import mediatypes
from catalog.oci.client import MAX_ERROR_BYTES, MAX_MANIFEST_BYTES, RateLimit, RegistryClient
from catalog.oci.errors import (
    AccessDenied,
    BadResponse,
    DigestMismatch,
    RateLimited,
    RegistryError,
    RepositoryNotFound,
    TagNotFound,
    Unavailable,
)
from tests.support.faultproxy import (
    AddHeaders,
    Delay,
    DropHeader,
    FaultProxy,
    Paginate,
    Reset,
    Respond,
    SetHeader,
    TamperBody,
    Truncate,
    registry_error,
)
from tests.support.oracle import skopeo_digest
from tests.support.pusher import Pusher, PushResult

PING = r"^/v2/$"
MANIFEST = r"/manifests/"
TAGS = r"/tags/list$"
ATTEMPTS = 4


def client_for(proxy: FaultProxy, **options) -> RegistryClient:
    """A client reading through `proxy`, with backoff small enough for a fast suite."""
    settings = {"backoff": 0.01, "max_backoff": 2.0, "max_attempts": ATTEMPTS, "timeout": 10.0}
    return RegistryClient(proxy.host, **(settings | options))


@pytest.fixture
def client(fault_proxy: FaultProxy) -> Iterator[RegistryClient]:
    with client_for(fault_proxy) as c:
        yield c


@pytest.fixture
def pushed(pusher: Pusher, repo_name: str) -> PushResult:
    """One OCI image, tagged v1, pushed directly to the registry (not through the proxy)."""
    return pusher.push(repo_name, "v1", "oci")


@pytest.fixture
def tagged(pusher: Pusher, repo_name: str) -> tuple[str, list[str]]:
    """A repository with seven tags (so pages of three make three pages)."""
    tags = ["v1", "v2", "beta", "latest", "1.0", "2.0", "edge"]
    pusher.push(repo_name, tags[0], "oci")
    for tag in tags[1:]:
        pusher.tag(repo_name, tags[0], tag)
    return repo_name, sorted(tags)


def heads(proxy: FaultProxy) -> int:
    return proxy.count("HEAD", MANIFEST)


def gets(proxy: FaultProxy) -> int:
    return proxy.count("GET", MANIFEST)


# --- retries ---------------------------------------------------------------------------------


def test_503_twice_is_retried_and_the_third_head_answers(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(503), method="HEAD", path=MANIFEST, times=2)

    head = client.head_manifest(pushed.repository, "v1")

    assert head.digest == pushed.digest
    assert client.stats["retries"] == 2
    assert client.stats["manifest_heads"] == 3
    assert heads(fault_proxy) == 3
    assert gets(fault_proxy) == 0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_forever_raises_unavailable_after_exactly_max_attempts(fault_proxy, client, pushed, status):
    fault_proxy.add_rule(Respond(status), path=MANIFEST)

    with pytest.raises(Unavailable, match=str(status)):
        client.head_manifest(pushed.repository, "v1")

    assert heads(fault_proxy) == ATTEMPTS
    assert gets(fault_proxy) == 0
    assert client.stats["retries"] == ATTEMPTS - 1


def test_408_is_retried_like_a_5xx(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(408), method="HEAD", path=MANIFEST, times=1)

    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert heads(fault_proxy) == 2


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(429, {"Retry-After": "1"}), method="HEAD", path=MANIFEST, times=1)

    started = time.monotonic()
    head = client.head_manifest(pushed.repository, "v1")
    elapsed = time.monotonic() - started

    assert head.digest == pushed.digest
    assert elapsed >= 0.9
    assert heads(fault_proxy) == 2


def test_429_with_retry_after_http_date_waits_until_then(fault_proxy, pushed):
    # HTTP dates have one-second resolution: two seconds ahead means a wait of more than one.
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    fault_proxy.add_rule(Respond(429, {"Retry-After": when}), method="HEAD", path=MANIFEST, times=1)

    with client_for(fault_proxy, max_backoff=5.0) as client:
        started = time.monotonic()
        head = client.head_manifest(pushed.repository, "v1")
        elapsed = time.monotonic() - started

    assert head.digest == pushed.digest
    assert elapsed >= 0.9
    assert heads(fault_proxy) == 2


def test_retry_after_longer_than_max_backoff_raises_rate_limited_at_once(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(429, {"Retry-After": "3600"}), method="HEAD", path=MANIFEST)

    started = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        client.head_manifest(pushed.repository, "v1")

    assert time.monotonic() - started < 1.0
    assert raised.value.retry_after == pytest.approx(3600, abs=1)
    assert raised.value.transient
    assert heads(fault_proxy) == 1
    assert client.stats["retries"] == 0


def test_429_forever_without_retry_after_raises_rate_limited_after_the_retries(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(429), method="HEAD", path=MANIFEST)

    with pytest.raises(RateLimited) as raised:
        client.head_manifest(pushed.repository, "v1")

    assert raised.value.retry_after is None
    assert heads(fault_proxy) == ATTEMPTS


def test_retry_after_on_a_503_is_honoured_too(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(503, {"Retry-After": "1"}), method="HEAD", path=MANIFEST, times=1)

    started = time.monotonic()
    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert time.monotonic() - started >= 0.9


def test_a_slow_answer_times_out_and_is_retried(fault_proxy, pushed):
    fault_proxy.add_rule(Delay(1.5), method="HEAD", path=MANIFEST, times=1)

    with client_for(fault_proxy, timeout=0.3) as client:
        started = time.monotonic()
        assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest

    assert time.monotonic() - started < 1.4
    assert heads(fault_proxy) == 2


def test_connection_reset_on_head_is_retried(fault_proxy, client, pushed):
    fault_proxy.add_rule(Reset(), method="HEAD", path=MANIFEST, times=1)

    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert heads(fault_proxy) == 2
    assert client.stats["retries"] == 1


def test_connection_reset_on_manifest_get_is_retried(fault_proxy, client, pushed):
    fault_proxy.add_rule(Reset(), method="GET", path=MANIFEST, times=1)

    manifest = client.get_manifest(pushed.repository, "v1")

    assert manifest.digest == pushed.digest
    assert manifest.body == pushed.manifest
    assert gets(fault_proxy) == 2


def test_connection_reset_forever_raises_unavailable(fault_proxy, client, pushed):
    fault_proxy.add_rule(Reset(), method="HEAD", path=MANIFEST)

    with pytest.raises(Unavailable):
        client.head_manifest(pushed.repository, "v1")

    assert heads(fault_proxy) == ATTEMPTS


def test_truncated_manifest_body_is_retried_then_read_whole(fault_proxy, client, pushed):
    fault_proxy.add_rule(Truncate(keep=20), method="GET", path=MANIFEST, times=1)

    manifest = client.get_manifest(pushed.repository, "v1")

    assert manifest.digest == pushed.digest
    assert manifest.body == pushed.manifest
    assert gets(fault_proxy) == 2


def test_manifest_body_always_truncated_raises_unavailable(fault_proxy, client, pushed):
    fault_proxy.add_rule(Truncate(keep=20), method="GET", path=MANIFEST)

    with pytest.raises(Unavailable):
        client.get_manifest(pushed.repository, "v1")

    assert gets(fault_proxy) == ATTEMPTS


# --- digests: the body is the truth ------------------------------------------------------------


def test_tampered_manifest_body_raises_digest_mismatch(fault_proxy, client, pushed):
    fault_proxy.add_rule(TamperBody(), method="GET", path=MANIFEST)

    with pytest.raises(DigestMismatch) as raised:
        client.get_manifest(pushed.repository, "v1")

    assert raised.value.expected == pushed.digest
    assert raised.value.actual != pushed.digest


def test_a_digest_mismatch_is_not_retried_into_a_wrong_digest(fault_proxy, client, pushed):
    fault_proxy.add_rule(TamperBody(), method="GET", path=MANIFEST, times=1)

    with pytest.raises(DigestMismatch):
        client.get_manifest(pushed.repository, "v1")
    assert gets(fault_proxy) == 1
    # The next read gets honest bytes again and the right digest, not a "repaired" one.
    assert client.get_manifest(pushed.repository, "v1").digest == pushed.digest


def test_tampered_body_fetched_by_digest_raises_digest_mismatch_even_without_the_header(
    fault_proxy, client, pushed
):
    fault_proxy.add_rule([TamperBody(), DropHeader("Docker-Content-Digest")], method="GET", path=MANIFEST)

    with pytest.raises(DigestMismatch) as raised:
        client.get_manifest(pushed.repository, pushed.digest)

    assert raised.value.expected == pushed.digest


def test_wrong_digest_header_on_get_raises_digest_mismatch(fault_proxy, client, pushed):
    liar = "sha256:" + "0" * 64
    fault_proxy.add_rule(SetHeader("Docker-Content-Digest", liar), method="GET", path=MANIFEST)

    with pytest.raises(DigestMismatch) as raised:
        client.get_manifest(pushed.repository, "v1")

    assert raised.value.expected == liar
    assert raised.value.actual == pushed.digest


def test_wrong_digest_header_on_head_by_digest_raises_digest_mismatch(fault_proxy, client, pushed):
    fault_proxy.add_rule(SetHeader("Docker-Content-Digest", "sha256:" + "0" * 64), method="HEAD")

    with pytest.raises(DigestMismatch):
        client.head_manifest(pushed.repository, pushed.digest)


def test_head_without_digest_header_falls_back_to_get_and_matches_skopeo(
    registry, fault_proxy, client, pushed
):
    fault_proxy.add_rule(DropHeader("Docker-Content-Digest"), method="HEAD", path=MANIFEST)

    head = client.head_manifest(pushed.repository, "v1")

    assert (heads(fault_proxy), gets(fault_proxy)) == (1, 1)
    assert head.digest == skopeo_digest(registry.host, pushed.repository, "v1")
    assert head.media_type == mediatypes.OCI_MANIFEST


@pytest.mark.parametrize(
    "bad_digest",
    ["", "sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "<script>", "sha256:" + "0" * 65],
)
def test_head_with_a_malformed_digest_header_falls_back_to_get(fault_proxy, client, pushed, bad_digest):
    fault_proxy.add_rule(SetHeader("Docker-Content-Digest", bad_digest), method="HEAD", path=MANIFEST)

    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert (heads(fault_proxy), gets(fault_proxy)) == (1, 1)


@pytest.mark.parametrize("status", [400, 405, 501])
def test_head_refused_falls_back_to_get(fault_proxy, client, pushed, status):
    fault_proxy.add_rule(Respond(status), method="HEAD", path=MANIFEST)

    head = client.head_manifest(pushed.repository, "v1")

    assert head.digest == pushed.digest
    assert head.size == len(pushed.manifest)
    assert (heads(fault_proxy), gets(fault_proxy)) == (1, 1)


def test_head_with_an_unknown_content_type_falls_back_to_get(fault_proxy, client, pushed):
    fault_proxy.add_rule(SetHeader("Content-Type", "text/html"), method="HEAD", path=MANIFEST)

    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert gets(fault_proxy) == 1


def test_content_type_disagreeing_with_the_body_media_type_is_a_bad_response(fault_proxy, client, pushed):
    fault_proxy.add_rule(SetHeader("Content-Type", mediatypes.DOCKER_MANIFEST), method="GET", path=MANIFEST)

    with pytest.raises(BadResponse, match="does not match"):
        client.get_manifest(pushed.repository, "v1")


def test_manifest_over_the_size_cap_is_refused_without_reading_it(fault_proxy, client, pushed):
    huge = b"{" + b" " * (9 * 1024 * 1024) + b"}"
    fault_proxy.add_rule(
        Respond(200, {"Content-Type": mediatypes.OCI_MANIFEST}, huge), method="GET", path=MANIFEST
    )

    started = time.monotonic()
    with pytest.raises(BadResponse, match="cap"):
        client.get_manifest(pushed.repository, "v1")

    assert time.monotonic() - started < 5
    assert len(huge) > MAX_MANIFEST_BYTES
    assert gets(fault_proxy) == 1  # a protocol violation is not retried


def test_body_cut_short_with_a_matching_length_is_a_digest_mismatch(fault_proxy, client, pushed):
    fault_proxy.add_rule(Truncate(keep=50, fix_length=True), method="GET", path=MANIFEST)

    with pytest.raises(DigestMismatch):
        client.get_manifest(pushed.repository, "v1")


def test_gzip_transfer_encoding_is_undone_before_digesting(fault_proxy, client, pushed):
    fault_proxy.add_rule(
        [TamperBody(gzip.compress), SetHeader("Content-Encoding", "gzip")], method="GET", path=MANIFEST
    )

    manifest = client.get_manifest(pushed.repository, "v1")

    assert manifest.digest == pushed.digest
    assert manifest.body == pushed.manifest


def test_gzip_bomb_is_cut_off_at_the_cap_whatever_the_declared_length(fault_proxy, client, pushed):
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024))  # 64 MiB that travels as ~64 KiB
    fault_proxy.add_rule(
        Respond(200, {"Content-Type": mediatypes.OCI_MANIFEST, "Content-Encoding": "gzip"}, bomb),
        method="GET",
        path=MANIFEST,
    )

    started = time.monotonic()
    with pytest.raises(BadResponse, match="cap"):
        client.get_manifest(pushed.repository, "v1")

    assert len(bomb) < MAX_MANIFEST_BYTES
    assert time.monotonic() - started < 5


# --- tag lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["relative", "absolute"])
def test_paginated_tag_list_is_complete_sorted_and_counts_pages(fault_proxy, client, tagged, link):
    repo, tags = tagged
    fault_proxy.add_rule(Paginate(3, link=link), path=TAGS)

    listed = client.list_tags(repo)

    assert listed.tags == tuple(tags)
    assert listed.rejected == ()
    assert listed.pages == 3
    assert fault_proxy.count("GET", TAGS) == 3


def test_tags_repeated_across_pages_are_listed_once(fault_proxy, client, repo_name):
    pages = [
        Respond(200, {"Link": f'</v2/{repo_name}/tags/list?n=2&last=b>; rel="next"'},
                json.dumps({"name": repo_name, "tags": ["b", "a"]}).encode()),
        Respond(200, body=json.dumps({"name": repo_name, "tags": ["b", "c", "a"]}).encode()),
    ]  # fmt: skip
    for page in pages:
        fault_proxy.add_rule(page, method="GET", path=TAGS, times=1)

    listed = client.list_tags(repo_name)

    assert listed.tags == ("a", "b", "c")
    assert listed.pages == 2


@contextlib.contextmanager
def foreign_listener() -> Iterator[socket.socket]:
    """A listening socket on another loopback address: the 'foreign host' a link points to."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def test_next_link_to_another_host_is_refused_without_contacting_it(fault_proxy, client, tagged):
    repo, _ = tagged
    with foreign_listener() as foreign:
        host, port = foreign.getsockname()
        fault_proxy.add_rule(Paginate(3, link="foreign", foreign_base=f"http://{host}:{port}"), path=TAGS)

        with pytest.raises(BadResponse, match="another host"):
            client.list_tags(repo)

        with pytest.raises(BlockingIOError):
            foreign.accept()  # nobody connected
    assert fault_proxy.count("GET", TAGS) == 1


def test_next_link_to_the_same_host_on_another_port_or_scheme_is_refused(fault_proxy, client, repo_name):
    port = fault_proxy.port
    for target in (
        f"http://127.0.0.1:{port + 1}/v2/x",
        f"https://127.0.0.1:{port}/v2/x",
        f"ftp://127.0.0.1:{port}/x",
    ):
        fault_proxy.add_rule(
            Respond(200, {"Link": f'<{target}>; rel="next"'}, b'{"tags": ["a"]}'), path=TAGS, times=1
        )
        with pytest.raises(BadResponse):
            client.list_tags(repo_name)


def test_next_links_that_loop_are_refused(fault_proxy, client, tagged):
    repo, _ = tagged
    fault_proxy.add_rule(Paginate(3, link="loop"), path=TAGS)

    with pytest.raises(BadResponse, match="already read"):
        client.list_tags(repo)

    assert fault_proxy.count("GET", TAGS) < 10


def test_a_page_failing_with_500_raises_unavailable_never_a_partial_list(fault_proxy, client, tagged):
    repo, _ = tagged
    fault_proxy.add_rule(Paginate(3, fail_page=2, fail_status=500), path=TAGS)

    with pytest.raises(Unavailable):
        client.list_tags(repo)

    assert fault_proxy.count("GET", TAGS, status=200) == 1
    assert fault_proxy.count("GET", TAGS, status=500) == ATTEMPTS


def test_a_page_answering_404_raises_never_a_partial_list(fault_proxy, client, tagged):
    repo, _ = tagged
    fault_proxy.add_rule(Paginate(3, fail_page=2, fail_status=404), path=TAGS)

    with pytest.raises(RegistryError):
        client.list_tags(repo)

    assert fault_proxy.count("GET", TAGS, status=404) == 1


def test_hostile_tag_names_are_rejected_not_passed_on(fault_proxy, client, repo_name):
    names = ["<script>", "../x", "a" * 200, "ok-tag", "-dash", ".dot", "has space", "é", "a" * 128, ""]
    body = json.dumps({"name": repo_name, "tags": [*names, 7, None, {"x": 1}]}).encode()
    fault_proxy.add_rule(Respond(200, body=body), method="GET", path=TAGS)

    listed = client.list_tags(repo_name)

    assert listed.tags == ("a" * 128, "ok-tag")
    assert set(listed.rejected) == set(names) - {"ok-tag", "a" * 128}


@pytest.mark.parametrize(
    "body", [b"<html>oops</html>", b'["v1"]', b'{"tags": "v1"}', b'{"tags": {"a": 1}}', b"\xff\xfe"]
)
def test_tag_list_that_is_not_a_tag_list_is_a_bad_response(fault_proxy, client, repo_name, body):
    fault_proxy.add_rule(Respond(200, body=body), method="GET", path=TAGS)

    with pytest.raises(BadResponse):
        client.list_tags(repo_name)


def test_repository_with_no_tags_lists_none(fault_proxy, client, repo_name):
    fault_proxy.add_rule(Respond(200, body=b'{"name": "x", "tags": null}'), method="GET", path=TAGS)

    assert client.list_tags(repo_name).tags == ()


# --- not found, rate-limit headers, connections, hostile errors -----------------------------------


def test_head_of_a_missing_tag_raises_tag_not_found(fault_proxy, client, pushed):
    with pytest.raises(TagNotFound):
        client.head_manifest(pushed.repository, "no-such-tag")

    assert heads(fault_proxy) == 1
    assert gets(fault_proxy) == 0


def test_tag_list_of_a_missing_repository_raises_repository_not_found(fault_proxy, client, repo_name):
    with pytest.raises(RepositoryNotFound):
        client.list_tags(repo_name)

    assert fault_proxy.count("GET", TAGS) == 1


def test_rate_limit_headers_are_exposed_on_the_client(fault_proxy, client, pushed):
    assert client.rate_limit is None
    fault_proxy.add_rule(
        AddHeaders({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}),
        method="HEAD",
        path=MANIFEST,
        times=1,
    )
    fault_proxy.add_rule(AddHeaders({"RateLimit-Remaining": "75;w=21600"}), method="HEAD", path=MANIFEST)

    client.head_manifest(pushed.repository, "v1")
    assert client.rate_limit == RateLimit(100, 76, 21600)

    client.head_manifest(pushed.repository, "v1")
    assert client.rate_limit == RateLimit(None, 75, 21600)


def test_rate_limit_headers_on_a_429_are_recorded_too(fault_proxy, client, pushed):
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": "3600", "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0"}),
        method="HEAD",
    )

    with pytest.raises(RateLimited):
        client.head_manifest(pushed.repository, "v1")

    assert client.rate_limit == RateLimit(100, 0, 21600)


def test_sequential_heads_reuse_one_connection(fault_proxy, client, pushed):
    for _ in range(20):
        assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest

    connections = {record.conn_id for record in fault_proxy.records}
    assert heads(fault_proxy) == 20
    assert len(connections) <= 2


def test_sequential_gets_reuse_one_connection(fault_proxy, client, pushed):
    for _ in range(10):
        client.get_manifest(pushed.repository, "v1")

    assert len({record.conn_id for record in fault_proxy.records}) <= 2


def test_retried_errors_with_bodies_keep_the_connection(fault_proxy, client, pushed):
    fault_proxy.add_rule(
        Respond(503, body=registry_error("UNAVAILABLE", "busy")), path=MANIFEST, times=ATTEMPTS - 1
    )

    for _ in range(3):
        client.get_manifest(pushed.repository, "v1")

    assert len({record.conn_id for record in fault_proxy.records}) <= 2


HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "body",
    [
        registry_error(HOSTILE, HOSTILE, HOSTILE * 1000),
        json.dumps({"errors": [{"code": HOSTILE * 50}] * 100}).encode(),
        b"<html><body>" + HOSTILE.encode() * 10_000 + b"</body></html>",
        b"\x00\xff" * 100_000,
    ],
    ids=["json-code", "many-codes", "html", "binary"],
)
def test_hostile_error_bodies_do_not_reach_the_message(fault_proxy, client, pushed, body):
    fault_proxy.add_rule(Respond(500, {"Content-Type": "text/html"}, body), method="GET", path=MANIFEST)

    with pytest.raises(Unavailable) as raised:
        client.get_manifest(pushed.repository, "v1")

    message = str(raised.value)
    assert "<script>" not in message
    assert "alert" not in message
    assert len(message) < 300


def test_hostile_error_codes_on_a_404_do_not_reach_the_message(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(404, body=registry_error(HOSTILE, HOSTILE)), method="GET", path=MANIFEST)

    with pytest.raises(TagNotFound) as raised:
        client.get_manifest(pushed.repository, "v1")

    assert "<script>" not in str(raised.value)
    assert len(str(raised.value)) < 300


def test_error_codes_the_spec_defines_are_kept_in_the_message(fault_proxy, client, pushed):
    fault_proxy.add_rule(Respond(403, body=registry_error("DENIED", "no")), method="GET", path=MANIFEST)

    with pytest.raises(RegistryError, match="DENIED"):
        client.get_manifest(pushed.repository, "v1")


def test_blob_reads_are_verified_against_their_digest(fault_proxy, client, pushed):
    fault_proxy.add_rule(TamperBody(lambda body: body + b" "), method="GET", path=r"/blobs/")

    with pytest.raises(DigestMismatch):
        client.get_config(pushed.repository, pushed.config_digest)


# --- redirects, auth and the /v2/ ping ---------------------------------------------------------


def test_a_redirect_loop_is_a_bad_response(fault_proxy, client, pushed):
    here = f"/v2/{pushed.repository}/manifests/v1"
    fault_proxy.add_rule(Respond(307, {"Location": here}), method="HEAD", path=MANIFEST)

    with pytest.raises(BadResponse, match="redirects"):
        client.head_manifest(pushed.repository, "v1")

    assert heads(fault_proxy) == 6  # the first answer and five redirects followed


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1/x"])
def test_a_redirect_to_a_non_http_location_is_refused(fault_proxy, client, pushed, location):
    fault_proxy.add_rule(Respond(302, {"Location": location}), method="GET", path=MANIFEST)

    with pytest.raises(BadResponse, match="non-HTTP"):
        client.get_manifest(pushed.repository, "v1")


@pytest.mark.parametrize("status", [401, 403])
def test_an_open_registry_that_suddenly_refuses_raises_access_denied(fault_proxy, client, pushed, status):
    fault_proxy.add_rule(Respond(status, body=registry_error("DENIED", "no")), method="HEAD", path=MANIFEST)

    with pytest.raises(AccessDenied):
        client.head_manifest(pushed.repository, "v1")


def test_a_v2_endpoint_answering_404_is_not_a_missing_tag(fault_proxy, client, pushed):
    # Not a registry (a web server, a wrong port): a tag must never be reported gone for that.
    fault_proxy.add_rule(Respond(404), method="GET", path=PING)

    with pytest.raises(RegistryError) as raised:
        client.head_manifest(pushed.repository, "v1")

    assert not isinstance(raised.value, TagNotFound | RepositoryNotFound)
    assert isinstance(raised.value, BadResponse)


def test_a_5xx_page_larger_than_the_error_cap_is_still_retried_as_unavailable(fault_proxy, client, pushed):
    # Load balancers answer outages with big HTML pages; their size must not make an outage permanent.
    page = b"<html>" + b"x" * (2 * MAX_ERROR_BYTES) + b"</html>"
    fault_proxy.add_rule(Respond(503, {"Content-Type": "text/html"}, page), method="GET", path=PING, times=1)

    assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest
    assert fault_proxy.count("GET", PING) == 2
