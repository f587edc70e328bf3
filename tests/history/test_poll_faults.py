"""Polls through a failing registry: nothing is invented, and the next healthy poll catches up.

Every test starts from `baseline`: a repository polled once, healthily, through a fault proxy.
The registry then changes while a fault is injected; the faulty poll must leave history as it
was, and the healthy poll after it must record the change with `not_before` = the start of the
last poll that confirmed the old state (the baseline: the faulty poll confirmed nothing about it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from django.core.cache import cache

from catalog.models import Repository
from catalog.oci.client import RegistryClient
from history import slots
from history.models import Build, PollRun, TagEvent, TagState
from history.polling import RegistryBusy, poll
from tests.history.factories import during, events_of, short, watch
from tests.support.faultproxy import (
    Action,
    AddHeaders,
    Context,
    Delay,
    FaultProxy,
    Paginate,
    Reply,
    Reset,
    Respond,
    TamperBody,
    registry_error,
)
from tests.support.hostile import HostileImages, to_json
from tests.support.pusher import OCI_INDEX, OCI_MANIFEST, Pusher, PushResult

pytestmark = pytest.mark.django_db

TAGS = r"/tags/list$"
MANIFESTS = r"/manifests/"


def history(repository: Repository) -> tuple:
    """Everything tagledger knows about the repository's tags, to show a poll changed nothing."""
    states = TagState.objects.filter(tag__repository=repository).order_by("tag__name")
    return (
        list(states.values_list("tag__name", "build_id", "present", "since", "confirmed_at")),
        TagEvent.objects.filter(tag__repository=repository).count(),
        Build.objects.filter(repository=repository).count(),
    )


def state_of(repository: Repository, tag: str) -> TagState:
    return TagState.objects.select_related("build").get(tag__repository=repository, tag__name=tag)


def faulty_poll(repository: Repository) -> PollRun:
    """poll() with a client whose retries are quick: the faults here outlast any retry budget."""
    with RegistryClient(
        repository.registry.host, backoff=0.01, max_backoff=1.0, max_attempts=3, timeout=10.0
    ) as client:
        return poll(repository, client=client)


def resume(repository: Repository) -> None:
    """As if the registry's pause had run out."""
    cache.delete(slots._pause_key(repository.registry))


def healthy_poll(repository: Repository, proxy: FaultProxy) -> PollRun:
    proxy.clear_rules()
    resume(repository)
    run = faulty_poll(repository)
    assert (run.status, run.error) == (PollRun.Status.OK, "")
    return run


def unchecked(run: PollRun) -> int:
    """How many tags a partial poll could not check, from its error (`N tags not checked: ...`)."""
    count, _, rest = run.error.partition(" ")
    assert "not checked" in rest, run.error
    return int(count)


def not_befores(run: PollRun) -> set:
    return {event.not_before for event in run.events.exclude(kind=TagEvent.Kind.CREATED)}


@dataclass
class Baseline:
    repository: Repository
    run: PollRun  # the last poll that saw everything as it was
    name: str
    release: PushResult  # 1.0.0, latest, stable
    main: PushResult
    old: PushResult
    pusher: Pusher

    def rebuild(self, *tags: str) -> PushResult:
        """A new build 2.0.0, and `tags` moved to it."""
        pushed = self.pusher.push(self.name, "2.0.0", "oci", seed="2.0.0")
        for tag in tags:
            self.pusher.tag(self.name, "2.0.0", tag)
        return pushed


@pytest.fixture
def baseline(pusher, fault_proxy, repo_name) -> Baseline:
    """Five tags — 1.0.0, latest, stable (one build), main, old (a build each) — polled once."""
    release = pusher.push(repo_name, "1.0.0", "oci-index", seed="1.0.0")
    pusher.tag(repo_name, "1.0.0", "latest")
    pusher.tag(repo_name, "1.0.0", "stable")
    main = pusher.push(repo_name, "main", "oci", seed="main")
    old = pusher.push(repo_name, "old", "docker", seed="old")
    repository = watch(fault_proxy, repo_name)
    run = faulty_poll(repository)
    assert (run.status, run.changes) == (PollRun.Status.OK, 5)
    fault_proxy.reset()
    yield Baseline(repository, run, repo_name, release, main, old, pusher)
    resume(repository)  # leave no pause behind in the shared cache


# --- the tag list -----------------------------------------------------------------------------


def test_tag_list_failing_records_nothing(baseline, fault_proxy):
    new = baseline.rebuild("latest")
    before = history(baseline.repository)
    fault_proxy.add_rule(Respond(500, body=registry_error("UNKNOWN", "boom")), method="GET", path=TAGS)

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.FAILED
    assert "HTTP 500" in run.error
    assert (run.changes, run.heads, run.gets) == (0, 0, 0)
    assert fault_proxy.count("HEAD") == 0
    assert history(baseline.repository) == before  # not even a confirmation moved

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert events_of(caught_up) == [
        ("2.0.0", "created", short(new.digest), None),
        ("latest", "moved", short(new.digest), short(baseline.release.digest)),
    ]
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


def test_a_failing_second_page_deletes_nothing(baseline, fault_proxy):
    baseline.pusher.delete(baseline.name, "old")
    before = history(baseline.repository)
    # sorted tags 1.0.0 latest | main old | stable: page 2 fails, page 3 is never read
    fault_proxy.add_rule(Paginate(page_size=2, fail_page=2, fail_status=500))

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.FAILED
    assert "HTTP 500" in run.error
    assert fault_proxy.count("GET", TAGS, status=200) == 1  # page 1 was read, and not trusted
    assert fault_proxy.count("HEAD") == 0
    assert history(baseline.repository) == before
    assert state_of(baseline.repository, "stable").present  # on the unread page 3: not deleted

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert events_of(caught_up) == [("old", "deleted", None, short(baseline.old.digest))]
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


def test_a_complete_paginated_list_is_as_good_as_one_page(baseline, fault_proxy):
    fault_proxy.add_rule(Paginate(page_size=2))

    run = faulty_poll(baseline.repository)

    assert (run.status, run.tags_seen, run.changes) == (PollRun.Status.OK, 5, 0)
    assert fault_proxy.count("GET", TAGS) == 3


# --- one tag's HEAD ---------------------------------------------------------------------------


def test_a_tag_whose_head_keeps_failing_is_left_alone(baseline, fault_proxy):
    new = baseline.rebuild("latest", "stable")
    fault_proxy.add_rule(Respond(503), method="HEAD", path=r"/manifests/latest$")

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.PARTIAL
    assert unchecked(run) == 1 and "HTTP 503" in run.error
    assert fault_proxy.count("HEAD", r"/manifests/latest$") == 3  # every attempt, then gave up
    assert events_of(run) == [
        ("2.0.0", "created", short(new.digest), None),
        ("stable", "moved", short(new.digest), short(baseline.release.digest)),
    ]
    latest = state_of(baseline.repository, "latest")
    assert latest.build.digest == baseline.release.digest and during(baseline.run, latest.confirmed_at)
    confirmed = state_of(baseline.repository, "main").confirmed_at
    assert during(run, confirmed)  # the others were checked

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert events_of(caught_up) == [("latest", "moved", short(new.digest), short(baseline.release.digest))]
    # the partial poll never saw latest, so it says nothing about when latest moved
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


def test_connection_resets_on_a_few_heads_are_retried(baseline, fault_proxy):
    new = baseline.rebuild("latest")
    fault_proxy.add_rule(Reset(), method="HEAD", path=MANIFESTS, times=3)

    run = faulty_poll(baseline.repository)

    assert (run.status, run.error) == (PollRun.Status.OK, "")
    assert [r.status for r in fault_proxy.find("HEAD", MANIFESTS) if r.rule is not None] == [None] * 3
    assert run.heads == fault_proxy.count("HEAD", MANIFESTS) == 6 + 3
    assert events_of(run) == [
        ("2.0.0", "created", short(new.digest), None),
        ("latest", "moved", short(new.digest), short(baseline.release.digest)),
    ]


# --- rate limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "status"),
    [
        pytest.param(("GET", TAGS), PollRun.Status.FAILED, id="tag-list"),
        pytest.param(("HEAD", r"/manifests/latest$"), PollRun.Status.PARTIAL, id="one-head"),
    ],
)
def test_429_with_retry_after_pauses_the_registry(baseline, fault_proxy, where, status):
    new = baseline.rebuild("latest")
    method, path = where
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": "3600"}, registry_error("TOOMANYREQUESTS", "slow down")),
        method=method, path=path,
    )  # fmt: skip

    run = faulty_poll(baseline.repository)

    assert run.status == status
    assert "RateLimited" in run.error or "HTTP 429" in run.error
    assert fault_proxy.count(method, path) == 1  # a Retry-After that long is not slept through
    assert state_of(baseline.repository, "latest").build.digest == baseline.release.digest
    assert slots.paused_until(baseline.repository.registry) > time.time() + 3500

    fault_proxy.reset()
    polls = PollRun.objects.count()
    with pytest.raises(RegistryBusy) as busy:
        poll(baseline.repository)
    assert busy.value.retry_after > 3500
    assert fault_proxy.records == []  # not a single request
    assert PollRun.objects.count() == polls

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert ("latest", "moved", short(new.digest), short(baseline.release.digest)) in events_of(caught_up)
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


def test_after_a_429_the_poll_sends_nothing_more(baseline, fault_proxy, settings):
    """The registry said "wait an hour": asking it about the other tags anyway only burns more of
    the quota (and on Docker Hub, goodwill). The rest of the poll is skipped, like at the floor."""
    settings.TAGLEDGER_POLL_THREADS = 1
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": "3600"}, registry_error("TOOMANYREQUESTS", "slow down")),
        method="HEAD", path=MANIFESTS,
    )  # fmt: skip

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.FAILED, "not one tag could be checked"
    assert unchecked(run) == 5
    assert fault_proxy.count("HEAD") == 1


def test_rate_limit_headers_near_the_floor_stop_the_heads(baseline, fault_proxy, settings):
    settings.TAGLEDGER_POLL_THREADS = 1  # HEADs in tag order, so "the rest" is well defined
    new = baseline.rebuild("latest")
    fault_proxy.add_rule(
        AddHeaders({"ratelimit-remaining": "5;w=21600", "ratelimit-limit": "100;w=21600"}),
        method="HEAD", path=r"/manifests/1\.0\.0$",
    )  # fmt: skip

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.PARTIAL
    assert run.rate_limit_remaining == 5
    # tags in order: 1.0.0 2.0.0 latest main old stable — only the first was asked for
    assert run.heads == fault_proxy.count("HEAD") == 1
    assert unchecked(run) == 5 and "rate limit" in run.error
    assert events_of(run) == []
    assert during(baseline.run, state_of(baseline.repository, "latest").confirmed_at)
    assert slots.paused_until(baseline.repository.registry) > time.time() + 21000
    with pytest.raises(RegistryBusy):
        poll(baseline.repository)

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert events_of(caught_up) == [
        ("2.0.0", "created", short(new.digest), None),
        ("latest", "moved", short(new.digest), short(baseline.release.digest)),
    ]
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


# --- lies -------------------------------------------------------------------------------------


def test_a_manifest_that_does_not_match_its_digest_is_not_stored(baseline, fault_proxy):
    new = baseline.rebuild("latest")
    fault_proxy.add_rule(TamperBody(), method="GET", path=rf"/manifests/{new.digest}$")

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.PARTIAL
    assert "DigestMismatch" in run.error
    assert unchecked(run) == 2  # 2.0.0 and latest point to it
    assert not Build.objects.filter(digest=new.digest).exists()
    assert events_of(run) == []
    assert during(baseline.run, state_of(baseline.repository, "latest").confirmed_at)

    caught_up = healthy_poll(baseline.repository, fault_proxy)

    assert events_of(caught_up) == [
        ("2.0.0", "created", short(new.digest), None),
        ("latest", "moved", short(new.digest), short(baseline.release.digest)),
    ]
    assert all(during(baseline.run, at) for at in not_befores(caught_up))


@dataclass
class HideTags(Action):
    """Leave `names` out of the tag list (a stale or eventually consistent listing)."""

    names: frozenset[str]

    def after(self, ctx: Context, reply: Reply) -> Reply:
        if reply.status == 200:
            document = json.loads(reply.read_body())
            document["tags"] = [tag for tag in document["tags"] if tag not in self.names]
            reply.body = json.dumps(document).encode()
        return reply


def test_a_tag_missing_from_the_list_that_still_answers_is_not_deleted(baseline, fault_proxy):
    fault_proxy.add_rule(HideTags(frozenset({"old"})), method="GET", path=TAGS)

    run = faulty_poll(baseline.repository)

    assert (run.status, run.tags_seen, run.heads) == (PollRun.Status.OK, 4, 5)  # one to verify
    assert fault_proxy.count("HEAD", r"/manifests/old$") == 1
    assert events_of(run) == []
    old = state_of(baseline.repository, "old")
    assert old.present and during(run, old.confirmed_at)


def test_a_tag_missing_from_the_list_and_unknown_to_head_is_deleted(baseline, fault_proxy):
    baseline.pusher.delete(baseline.name, "old")

    run = faulty_poll(baseline.repository)

    assert (run.status, run.tags_seen, run.heads) == (PollRun.Status.OK, 4, 5)
    assert fault_proxy.count("HEAD", r"/manifests/old$", status=404) == 1
    assert events_of(run) == [("old", "deleted", None, short(baseline.old.digest))]
    assert all(during(baseline.run, at) for at in not_befores(run))

    again = faulty_poll(baseline.repository)

    assert (again.status, again.heads, events_of(again)) == (PollRun.Status.OK, 4, [])
    assert during(again, state_of(baseline.repository, "old").confirmed_at)  # still gone


def test_a_listed_tag_whose_head_says_404_is_not_deleted(baseline, fault_proxy):
    """The complete tag list names `main`, yet its HEAD (full Accept) answers 404: a registry
    whose Accept handling is broken, or an inconsistent replica. The two answers contradict each
    other, so neither is recorded: the tag is not checked (partial), and nothing is invented.

    What the poll does today instead: it trusts the 404 and records `main` deleted, and the next
    healthy poll records it `restored` — two events for a tag that never changed.
    """
    fault_proxy.add_rule(
        Respond(404, body=registry_error("MANIFEST_UNKNOWN", "manifest unknown")),
        method="HEAD", path=r"/manifests/main$",
    )  # fmt: skip

    run = faulty_poll(baseline.repository)

    assert events_of(run) == []
    assert run.status == PollRun.Status.PARTIAL
    assert "404" in run.error
    main = state_of(baseline.repository, "main")
    assert main.present and during(baseline.run, main.confirmed_at)

    assert events_of(healthy_poll(baseline.repository, fault_proxy)) == []


# --- the poll's own deadline ------------------------------------------------------------------


def test_a_poll_past_its_deadline_asks_nothing_more_and_the_next_one_carries_on(
    baseline, fault_proxy, settings
):
    """A registry that answers slowly cannot hold a worker past TAGLEDGER_POLL_DEADLINE: the tags
    not reached are reported unchecked, nothing is recorded for them, the next poll checks them."""
    settings.TAGLEDGER_POLL_THREADS = 1  # one HEAD at a time, in name order: 1.0.0 first
    settings.TAGLEDGER_POLL_DEADLINE = 1
    new = baseline.rebuild("latest", "stable")
    fault_proxy.add_rule(Delay(1.5), method="HEAD", path=r"/manifests/1\.0\.0$", times=1)

    run = faulty_poll(baseline.repository)

    assert run.status == PollRun.Status.PARTIAL
    assert unchecked(run) == 5 and "skipped: the poll reached its 1 s deadline" in run.error
    assert fault_proxy.count("HEAD", r"/manifests/(latest|stable)$") == 0
    assert events_of(run) == []
    settings.TAGLEDGER_POLL_DEADLINE = 60
    caught_up = faulty_poll(baseline.repository)
    assert ("stable", "moved", short(new.digest), short(baseline.release.digest)) in events_of(caught_up)


# --- indexes too large to read ------------------------------------------------------------------


def test_an_index_of_thousands_of_images_fails_its_tag_without_a_get_each(pusher, fault_proxy, repo_name):
    """A hostile index lists 5 000 images in its 8 MiB: reading them would spend the poll's deadline
    on one tag. It fails alone, before any of them is asked for; the other tags are recorded."""
    images = HostileImages(pusher, fault_proxy, repo_name)
    good = pusher.push(repo_name, "1.0", "oci", seed="good")
    entries = [
        {"mediaType": OCI_MANIFEST, "digest": f"sha256:{n:064x}", "size": 100,
         "platform": {"os": "linux", "architecture": f"arch{n}"}}
        for n in range(5000)
    ]  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    images.put("huge", to_json(index), OCI_INDEX, serve=True)
    repository = watch(fault_proxy, repo_name)

    run = faulty_poll(repository)

    assert run.status == PollRun.Status.PARTIAL
    assert "the index lists 5000 images; at most 128 are read (1 tag: huge)" in run.error
    assert fault_proxy.count("GET", r"/manifests/sha256:0{60}") == 0
    assert events_of(run) == [("1.0", "created", short(good.digest), None)]


def test_an_image_listed_twice_in_an_index_is_one_platform(pusher, fault_proxy, repo_name):
    images = HostileImages(pusher, fault_proxy, repo_name)
    child = pusher.push_image(repo_name, None, seed="twice")
    entry = {"mediaType": child.media_type, "digest": child.digest, "size": len(child.manifest),
             "platform": {"os": "linux", "architecture": "amd64"}}  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] * 2}
    digest = images.put("twice", to_json(index), OCI_INDEX, serve=False)
    repository = watch(fault_proxy, repo_name)

    run = faulty_poll(repository)

    assert (run.status, run.error) == (PollRun.Status.OK, "")
    assert [str(p) for p in Build.objects.get(digest=digest).platforms.all()] == ["linux/amd64"]
