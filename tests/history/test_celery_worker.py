"""Polls dispatched through a real broker run on real worker processes, each exactly once.

The workers are separate processes, so every test commits its rows (transaction=True) and waits
on the database with a deadline. Two Redis-broker workers are shared by the module; they use the
test database, which exists once pytest-django's session-scoped `django_db_setup` has run.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from django.db import connection, connections
from django.utils import timezone

from catalog.models import Registry, Repository
from history.models import PollRun, TagEvent
from history.tasks import dispatch
from tagledger.celery import app as celery_app
from tests.history.factories import watch
from tests.support.faultproxy import Delay
from tests.support.oracle import skopeo_digest
from tests.support.worker import (
    WORKER_BROKER_URL,
    CeleryProcess,
    app_using_broker,
    beat,
    celery_environment,
    database_url,
    flush_redis,
    manage,
    running,
    wait_until,
    worker,
)

# Flushed before the workers start, so no task enqueued by an earlier run is ever consumed here.
REDIS_BROKER = WORKER_BROKER_URL
POLL_TIMEOUT = 30


@pytest.fixture(scope="module")
def test_database_url(django_db_setup) -> str:
    # By now pytest-django has created `test_<name>` and pointed the connection at it.
    return database_url(connection.settings_dict)


@pytest.fixture(scope="module")
def redis_env(test_database_url, tmp_path_factory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("celery-redis")
    return celery_environment(database_url=test_database_url, broker_url=REDIS_BROKER, data_dir=data_dir)


@pytest.fixture(scope="module")
def broker() -> redis.Redis:
    return flush_redis(REDIS_BROKER)


@pytest.fixture(scope="module")
def workers(redis_env, broker, tmp_path_factory):
    """Two worker processes consuming one Redis queue, and this process enqueuing onto it."""
    logs = tmp_path_factory.mktemp("celery-logs")
    with (
        running(worker(redis_env, logs, name="w1"), worker(redis_env, logs, name="w2")) as processes,
        app_using_broker(celery_app, REDIS_BROKER),
    ):
        yield processes
    broker.flushdb()


def finished_poll(
    repository: Repository, processes: tuple[CeleryProcess, ...], timeout: float = POLL_TIMEOUT
) -> PollRun:
    """Wait until a poll of `repository` has finished and released the lease; that PollRun."""

    def finished():
        released = Repository.objects.filter(pk=repository.pk, lease_until__isnull=True).exists()
        run = PollRun.objects.filter(repository=repository).exclude(status=PollRun.Status.RUNNING).first()
        return released and run

    return wait_until(finished, timeout=timeout, what=f"a finished poll of {repository}", logs_of=processes)


def wait_until_idle(broker: redis.Redis, processes: tuple[CeleryProcess, ...]) -> None:
    """Nothing queued and nothing delivered but unacknowledged (acks_late: a task still running)."""
    wait_until(
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=POLL_TIMEOUT,
        what="the workers to drain the queue",
        logs_of=processes,
    )


def created_events(repository: Repository) -> list[tuple[str, str]]:
    events = TagEvent.objects.filter(tag__repository=repository).select_related("tag", "build")
    return sorted((event.tag.name, event.build.digest) for event in events.filter(kind="created"))


@pytest.mark.django_db(transaction=True)
def test_a_dispatched_poll_runs_on_a_worker_and_records_the_registrys_digests(
    workers, registry, pusher, repo_name
):
    pusher.push(repo_name, "1.0", "oci")
    pusher.push(repo_name, "latest", "oci-index")
    repository = watch(registry, repo_name)

    assert dispatch() == 1
    run = finished_poll(repository, workers)

    assert run.status == PollRun.Status.OK, run.error
    assert created_events(repository) == [
        ("1.0", skopeo_digest(registry.host, repo_name, "1.0")),
        ("latest", skopeo_digest(registry.host, repo_name, "latest")),
    ]
    assert TagEvent.objects.filter(tag__repository=repository).count() == 2
    repository.refresh_from_db()
    assert repository.lease_until is None
    assert abs(repository.next_poll_at - (run.finished_at + repository.interval)) < timedelta(seconds=5)
    assert abs(repository.next_poll_at - (timezone.now() + repository.interval)) < timedelta(seconds=30)


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatches_and_two_workers_poll_each_due_repository_once(
    workers, broker, registry, pusher, make_repo_name
):
    # Room for several polls: one that finds every slot taken waits for those a running poll
    # gives back (polling.SLOT_WAIT); more room only makes that rarer.
    Registry.objects.create(host=registry.host, concurrency=5 * 8)
    repositories = []
    for seed in range(5):
        name = make_repo_name()
        pusher.push(name, "1.0", "oci", seed=seed)
        pusher.push(name, "latest", "docker", seed=seed)
        repositories.append(watch(registry, name))
    at_once = threading.Barrier(2)

    def dispatch_at_once() -> int:
        try:
            at_once.wait(timeout=10)
            return dispatch()
        finally:
            connections.close_all()  # this thread's connection, before the test database is dropped

    with ThreadPoolExecutor(max_workers=2) as pool:
        enqueued = [pool.submit(dispatch_at_once) for _ in range(2)]
    assert sum(future.result() for future in enqueued) == 5

    for repository in repositories:
        finished_poll(repository, workers)
    wait_until_idle(broker, workers)
    for repository in repositories:
        assert [run.status for run in PollRun.objects.filter(repository=repository)] == ["ok"]
        events = TagEvent.objects.filter(tag__repository=repository)
        assert sorted(events.values_list("tag__name", "kind")) == [("1.0", "created"), ("latest", "created")]


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_while_a_poll_is_running_does_not_enqueue_it_again(
    workers, broker, fault_proxy, pusher, repo_name
):
    pusher.push(repo_name, "1.0")
    fault_proxy.add_rule(Delay(2), method="HEAD", path=r"/manifests/")  # a slow registry
    repository = watch(fault_proxy, repo_name)

    assert dispatch() == 1
    wait_until(
        lambda: PollRun.objects.filter(repository=repository, status=PollRun.Status.RUNNING).exists(),
        timeout=POLL_TIMEOUT,
        what="the poll to start",
        logs_of=workers,
    )
    assert dispatch() == 0

    run = finished_poll(repository, workers)
    wait_until_idle(broker, workers)
    assert run.status == PollRun.Status.OK, run.error
    assert PollRun.objects.filter(repository=repository).count() == 1
    assert fault_proxy.count("GET", r"/tags/list$") == 1


@pytest.mark.django_db(transaction=True)
def test_the_embedded_filesystem_broker_carries_polls_too(
    test_database_url, tmp_path, registry, pusher, repo_name
):
    pusher.push(repo_name, "1.0", "docker-list")
    repository = watch(registry, repo_name)
    env = celery_environment(database_url=test_database_url, broker_url="filesystem://", data_dir=tmp_path)

    with running(worker(env, tmp_path, name="embedded")) as processes:
        # Enqueued from another process with the same environment, as `make run`'s web process and
        # beat do: the settings derive the broker's folders from TAGLEDGER_DATA_DIR at import, and
        # this way both ends use that code rather than a copy of it in the test.
        enqueued = manage(
            env, "shell", "--no-imports", "-c", "from history.tasks import dispatch; print(dispatch())"
        )
        assert enqueued.strip() == "1"
        run = finished_poll(repository, processes)

    assert run.status == PollRun.Status.OK, run.error
    assert created_events(repository) == [("1.0", skopeo_digest(registry.host, repo_name, "1.0"))]
    assert not any((tmp_path / "broker" / "queue").iterdir()), "the message was not consumed"


# SLOW (~17 s, most of this file's run time): beat's first dispatch comes one full 15 s interval
# after it starts, and the schedule is fixed in tagledger/celery.py.
@pytest.mark.timeout(90)
@pytest.mark.django_db(transaction=True)
def test_beat_dispatches_due_polls_without_being_asked(
    workers, redis_env, tmp_path, registry, pusher, repo_name
):
    pusher.push(repo_name, "1.0")
    repository = watch(registry, repo_name)

    with running(beat(redis_env, tmp_path, schedule=tmp_path / "celerybeat-schedule")) as (beat_process,):
        # Beat's first dispatch comes 15 s after it starts; a loaded machine needs the rest.
        run = finished_poll(repository, (beat_process, *workers), timeout=60)

    assert run.status == PollRun.Status.OK, run.error
    assert created_events(repository) == [("1.0", skopeo_digest(registry.host, repo_name, "1.0"))]
