"""Two polls of one repository at once, on two real worker processes, behind a slow proxy: the
slower one's older answer must never undo what the faster one recorded.

Each poll records a tag at the time its own request went out and its answer arrived; the one
writer refuses an answer asked before the request that confirmed the current state. Also here:
what a poll holds (lease, slots) it renews while it runs and loses when it dies.
"""

import time
from datetime import timedelta

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from catalog.models import Repository
from history import slots
from history.heartbeat import Heartbeat
from history.models import PollRun, TagEvent, TagState
from history.polling import poll
from history.tasks import dispatch, poll_repository
from tagledger.celery import app as celery_app
from tests.history.factories import short, watch
from tests.support.faultproxy import Action, Context, Reply
from tests.support.worker import (
    WORKER_BROKER_URL,
    app_using_broker,
    celery_environment,
    database_url,
    flush_redis,
    running,
    wait_until,
    worker,
)

SLOW = 4.0  # seconds the proxy holds the first poll's answer after reading it from the registry


class SlowAnswer(Action):
    """Read the registry's answer now, deliver it `seconds` later: an answer that is old on arrival."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.read_body()
        time.sleep(self.seconds)
        return reply


@pytest.fixture(scope="module")
def workers(django_db_setup, tmp_path_factory):
    """Two worker processes of one poll at a time each, and this process enqueuing onto their queue."""
    env = celery_environment(
        database_url=database_url(connection.settings_dict),
        broker_url=WORKER_BROKER_URL,
        data_dir=tmp_path_factory.mktemp("celery-overlap"),
        TAGLEDGER_POLL_THREADS="1",
    )
    broker: redis.Redis = flush_redis(WORKER_BROKER_URL)
    logs = tmp_path_factory.mktemp("celery-overlap-logs")
    with (
        running(worker(env, logs, name="a", concurrency=1), worker(env, logs, name="b", concurrency=1)) as ps,
        app_using_broker(celery_app, WORKER_BROKER_URL),
    ):
        yield ps
    broker.flushdb()


@pytest.mark.django_db(transaction=True)
def test_a_slow_poll_never_undoes_what_a_later_one_recorded(workers, fault_proxy, pusher, repo_name):
    repository = watch(fault_proxy, repo_name)
    repository.registry.concurrency = 4  # room for both polls
    repository.registry.save()
    old = pusher.push(repo_name, "latest", "oci", seed="old")
    pusher.push(repo_name, "1.0", "oci", seed="one")
    assert poll(repository).status == PollRun.Status.OK
    fault_proxy.add_rule([SlowAnswer(SLOW)], method="HEAD", path=r"/manifests/latest$", times=1)

    poll_repository.delay(repository.pk)  # the slow one: it reads `old`, delivered SLOW s later
    wait_until(
        lambda: fault_proxy.count("HEAD", r"/manifests/latest$") == 1, timeout=20, what="the slow HEAD",
        logs_of=workers,
    )  # fmt: skip
    time.sleep(SLOW / 2)  # the proxy has read `old` from the registry by now, and holds it
    new = pusher.push(repo_name, "latest", "oci", seed="new")
    poll_repository.delay(repository.pk)  # the fast one, on the other worker: it reads `new`
    wait_until(
        lambda: PollRun.objects.filter(repository=repository).exclude(status="running").count() == 3,
        timeout=60, what="both polls to finish", logs_of=workers,
    )  # fmt: skip

    runs = list(PollRun.objects.filter(repository=repository).order_by("started_at"))
    assert [run.status for run in runs] == ["ok"] * 3, [run.error for run in runs]
    assert runs[1].started_at < runs[2].started_at < runs[1].finished_at  # they overlapped
    latest = TagState.objects.get(tag__repository=repository, tag__name="latest")
    assert short(latest.build.digest) == short(new.digest)  # what the registry says now
    moves = TagEvent.objects.filter(tag=latest.tag).exclude(kind="created")
    assert [(short(e.previous_build.digest), short(e.build.digest)) for e in moves] == [
        (short(old.digest), short(new.digest))
    ]
    for event in TagEvent.objects.filter(tag__repository=repository):
        assert event.not_before is None or event.not_before < event.detected_at


@pytest.mark.django_db(transaction=True)
def test_a_running_poll_renews_its_lease_and_slots(registry, repo_name, monkeypatch):
    """Lease and slots both outlive their own length while the heartbeat beats; stopped, they expire."""
    monkeypatch.setattr(slots, "SLOT_LEASE_SECONDS", 1)
    repository = watch(registry, repo_name)
    assert repository.claim(lease=timedelta(seconds=1))
    taken = slots.Slots(repository.registry, 2)
    try:
        with Heartbeat(repository, taken, lease=timedelta(seconds=1), every=0.2):
            time.sleep(2.5)
            assert all(cache.get(key) == taken.token for key in taken.keys)
            held = Repository.objects.get(pk=repository.pk).lease_until
            assert held > timezone.now()
        time.sleep(1.5)
        assert [cache.get(key) for key in taken.keys] == [None, None]  # a dead poll's slots free up
        assert slots.Slots(repository.registry, 2).count == 2
        assert Repository.objects.get(pk=repository.pk).lease_until < timezone.now()
    finally:
        taken.release()


class FlakyCache:
    """The cache as a database that is locked for a moment: the first `failures` deletes fail."""

    def __init__(self, failures: int):
        self.failures = failures

    def __getattr__(self, name):
        return getattr(cache, name)

    def delete(self, key):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database is locked")
        return cache.delete(key)


@pytest.mark.django_db
def test_slots_are_given_back_after_a_moment_of_cache_failure(registry, repo_name, monkeypatch):
    repository = watch(registry, repo_name)
    taken = slots.Slots(repository.registry, 3)
    monkeypatch.setattr(slots, "cache", FlakyCache(failures=2))
    monkeypatch.setattr(time, "sleep", lambda seconds: None)

    taken.release()

    assert slots.Slots(repository.registry, 8).count == repository.registry.concurrency


@pytest.mark.django_db
def test_polls_that_died_running_are_swept_to_failed(registry, repo_name):
    """A live poll renews its repository's lease: older than a lease, with none held, it died;
    long past its deadline it died whatever the lease says."""
    unleased, leased = watch(registry, repo_name), watch(registry, repo_name + "-leased")
    assert leased.claim(lease=timedelta(minutes=5))
    now = timezone.now()

    def running(repository, minutes_ago):
        return PollRun.objects.create(repository=repository, started_at=now - timedelta(minutes=minutes_ago))

    dead = [running(unleased, 10), running(leased, 180)]
    alive = [running(unleased, 1), running(leased, 10)]

    dispatch()

    assert [PollRun.objects.get(pk=run.pk).status for run in dead] == ["failed", "failed"]
    assert [PollRun.objects.get(pk=run.pk).status for run in alive] == ["running", "running"]
    swept = PollRun.objects.get(pk=dead[0].pk)
    assert "interrupted" in swept.error and swept.finished_at is not None


def test_heartbeat_errors_are_logged_not_raised(caplog):
    class Broken:
        def renew(self):
            raise ConnectionError("cache down")

        def renew_lease(self, **kwargs):
            raise ConnectionError("database down")

        def __str__(self):
            return "broken"

    beat = Heartbeat(Broken(), Broken(), lease=timedelta(seconds=1), every=60)
    beat.beat()

    assert "could not renew the request slots" in caplog.text
    assert "could not renew the polling lease" in caplog.text


def test_a_heartbeat_thread_stops_with_its_poll():
    class Quiet:
        def renew(self): ...
        def renew_lease(self, **kwargs): ...

    with Heartbeat(Quiet(), Quiet(), lease=timedelta(seconds=1), every=0.01) as beating:
        time.sleep(0.05)
    assert not beating._thread.is_alive()
