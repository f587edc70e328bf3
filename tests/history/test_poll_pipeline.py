"""A poll keeps its registry's request slots busy: as many in flight as the registry's concurrency
allows (which a user may raise), new builds read while HEADs are still out, and no ping on a
registry whose auth this process already knows (bench/latency.py measures what that buys)."""

import pytest
from django.core.exceptions import ValidationError

from catalog import models as catalog_models
from catalog.models import MAX_CONCURRENCY, Registry
from catalog.oci.auth import AuthMemory
from history.models import Build
from tests.history.factories import polled, watch
from tests.support.faultproxy import FaultProxy, Respond

pytestmark = pytest.mark.django_db

LATENCY = 0.1  # long enough for every free slot to fill before the first answer comes back
PING = r"^/v2/?$"


@pytest.fixture
def slow_registry(registry):
    """The session registry 100 ms away."""
    with FaultProxy(registry.url, latency=LATENCY) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def fresh_auth_memory(monkeypatch):
    """What this process learnt of other tests' registries (a port may come round again) stays out."""
    monkeypatch.setattr(catalog_models, "AUTH_MEMORY", AuthMemory())


def push_builds(pusher, name: str, count: int) -> None:
    for seed in range(count):
        pusher.push(name, f"1.0.{seed}", "oci", seed=seed)


@pytest.mark.parametrize("concurrency", [8, 12])
def test_a_poll_keeps_as_many_requests_in_flight_as_its_registry_allows(
    slow_registry, pusher, repo_name, concurrency
):
    push_builds(pusher, repo_name, 30)
    Registry.objects.create(host=slow_registry.host, concurrency=concurrency)
    repository = watch(slow_registry, repo_name)

    polled(repository)

    assert slow_registry.max_concurrent == concurrency


def test_a_registry_concurrency_is_at_least_one_and_at_most_the_cap():
    for refused in (0, MAX_CONCURRENCY + 1):
        with pytest.raises(ValidationError, match="concurrency"):
            Registry(host="registry.example", concurrency=refused).full_clean()
    Registry(host="registry.example", concurrency=MAX_CONCURRENCY).full_clean()


def test_new_builds_are_read_while_the_heads_are_still_out(slow_registry, pusher, repo_name):
    """HEADs, then GETs, one phase after the other, left slots idle while each drained: across a
    real network that was a third of a first poll. A GET of a new build now starts at once."""
    push_builds(pusher, repo_name, 30)
    repository = watch(slow_registry, repo_name)

    polled(repository)

    heads = slow_registry.find("HEAD", r"/manifests/")
    gets = slow_registry.find("GET", r"/manifests/sha256:")
    assert len(heads) == 30 and len(gets) == Build.objects.filter(repository=repository).count() == 30
    assert min(get.started for get in gets) < max(head.started for head in heads)


def test_a_second_poll_sends_no_ping_and_asks_for_no_token(token_registry, token_server, token_repo):
    """The first poll of a registry learns how it authenticates and gets a token; the next one,
    in the same process, starts from both: two round trips fewer per poll."""
    with FaultProxy(token_registry.url) as proxy:
        repository = watch(proxy, token_repo)
        polled(repository)
        assert proxy.count("GET", PING) == 1 and token_server.count() == 1
        proxy.reset()

        run = polled(repository)

        assert proxy.count("GET", PING) == 0 and token_server.count() == 1
        assert run.requests == proxy.count() == 2  # the tag list and one HEAD


def test_a_remembered_token_the_registry_refuses_is_replaced(token_registry, token_server, token_repo):
    """A token the registry no longer takes (revoked, rotated keys) costs one 401 and a new token."""
    with FaultProxy(token_registry.url) as proxy:
        repository = watch(proxy, token_repo)
        polled(repository)
        challenge = f'Bearer realm="{token_server.realm}",service="{token_server.service}"'
        proxy.add_rule(Respond(401, {"WWW-Authenticate": challenge}), path=r"/tags/list$", times=1)
        proxy.reset()

        polled(repository)

        assert token_server.count() == 2
        assert proxy.count("GET", r"/tags/list$", status=401) == 1


@pytest.fixture
def token_repo(token_registry, make_pusher, repo_name):
    """A repository of one tag on the registry that wants Bearer tokens."""
    make_pusher(token_registry).push(repo_name, "1.0", "oci")
    token_registry.token_server.requests.clear()
    return repo_name
