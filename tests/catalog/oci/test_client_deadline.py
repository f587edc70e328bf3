"""Each attempt has a total deadline: a registry dripping bytes cannot hold a worker past it.

A read timeout alone bounds one silence, not a whole answer: a byte every fifth of a second is
never silent long enough. These tests drip through the fault proxy and time the client.
"""

from __future__ import annotations

import time

import pytest

from catalog.oci.client import RegistryClient
from catalog.oci.errors import Unavailable
from tests.support.faultproxy import Delay, Drip, FaultProxy, RewriteHeader

MANIFEST = r"/manifests/"
DEADLINE = 1.5
# What may pass beyond the deadlines themselves: the backoff, a slow CI machine.
SLACK = 1.5

# Without the deadline these would take minutes (a manifest dripped a byte every 0.2 s);
# the timeout turns that into a failure rather than a hung suite.
pytestmark = pytest.mark.timeout(60)


def client_for(proxy: FaultProxy, **options) -> RegistryClient:
    settings = {"backoff": 0.01, "max_backoff": 1.0, "max_attempts": 2, "timeout": DEADLINE}
    return RegistryClient(proxy.host, **(settings | options))


@pytest.fixture
def pushed(pusher, repo_name):
    return pusher.push(repo_name, "v1", "oci")


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_manifest_dripped_slower_than_the_deadline_fails_within_it(fault_proxy, pushed, part):
    fault_proxy.add_rule(Drip(interval=0.2, part=part), method="GET", path=MANIFEST)

    with client_for(fault_proxy) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="deadline"):
            client.get_manifest(pushed.repository, "v1")
        elapsed = time.monotonic() - started

    assert elapsed < 2 * DEADLINE + SLACK
    assert fault_proxy.count("GET", MANIFEST) == 2, "a timed-out attempt is retried like any timeout"


def test_a_head_dripping_its_headers_fails_within_the_deadline(fault_proxy, pushed):
    fault_proxy.add_rule(Drip(interval=0.2, part="headers"), method="HEAD", path=MANIFEST)

    with client_for(fault_proxy, max_attempts=1) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="deadline"):
            client.head_manifest(pushed.repository, "v1")

    assert time.monotonic() - started < DEADLINE + SLACK


def test_a_tag_list_dripped_forever_fails_within_the_deadline(fault_proxy, pusher, repo_name):
    pusher.push(repo_name, "v1", "oci")
    fault_proxy.add_rule(Drip(interval=0.2, part="body"), method="GET", path=r"/tags/list$")

    with client_for(fault_proxy, max_attempts=1) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="deadline"):
            client.list_tags(repo_name)

    assert time.monotonic() - started < DEADLINE + SLACK


def test_a_drip_once_is_retried_and_the_next_attempt_answers(fault_proxy, pushed):
    fault_proxy.add_rule(Drip(interval=0.2, part="body"), method="GET", path=MANIFEST, times=1)

    with client_for(fault_proxy) as client:
        manifest = client.get_manifest(pushed.repository, "v1")
        assert client.stats["retries"] == 1

    assert manifest.digest == pushed.digest
    assert len({record.conn_id for record in fault_proxy.find("GET", MANIFEST)}) == 2, (
        "the cut connection is not reused"
    )


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_slow_answer_that_finishes_within_the_deadline_is_read(fault_proxy, pushed, part):
    # About a second of dripping (the manifest is a few hundred bytes), under a 3 s deadline.
    size = max(len(pushed.manifest) // 10, 1)
    fault_proxy.add_rule(Drip(interval=0.1, part=part, size=size), method="GET", path=MANIFEST)

    with client_for(fault_proxy, timeout=3.0, max_attempts=1) as client:
        started = time.monotonic()
        manifest = client.get_manifest(pushed.repository, "v1")

    assert manifest.digest == pushed.digest
    assert time.monotonic() - started > 0.5, "the answer really was slow"


def test_connections_reused_after_a_deadline_are_not_cut_by_it(fault_proxy, pushed):
    # An attempt that ended in time must not have its pooled connection shut later by the watchdog.
    with client_for(fault_proxy, timeout=0.5, max_attempts=1) as client:
        for _ in range(3):
            client.head_manifest(pushed.repository, "v1")
            time.sleep(0.3)
        fault_proxy.add_rule(Delay(0.3), method="HEAD", path=MANIFEST)
        for _ in range(3):
            assert client.head_manifest(pushed.repository, "v1").digest == pushed.digest

    assert fault_proxy.count("HEAD", MANIFEST) == 6


def test_a_token_service_dripping_its_answer_fails_within_the_deadline(
    token_registry, token_server, make_pusher, repo_name
):
    """The realm is read through a second proxy that drips; the registry's challenge points there."""
    pushed = make_pusher(token_registry).push(repo_name, "v1", "oci")
    with FaultProxy(token_server.url) as tokens, FaultProxy(token_registry.url) as front:
        front.add_rule(RewriteHeader("WWW-Authenticate", token_server.realm, f"{tokens.url}/token"))
        tokens.add_rule(Drip(interval=0.2, part="body"), path="^/token$")
        with client_for(front, max_attempts=1) as client:
            started = time.monotonic()
            with pytest.raises(Unavailable, match="deadline"):
                client.head_manifest(pushed.repository, "v1")
            assert time.monotonic() - started < DEADLINE + SLACK
        assert tokens.count("GET", "^/token$") == 1
