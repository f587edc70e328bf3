"""Who polls what, when: due repositories, the compare-and-set lease, and what dispatch enqueues.

No worker runs here: tasks are called directly, and what dispatch() enqueues is read back from
a Redis database that nothing consumes.
"""

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from catalog.models import Registry, Repository
from catalog.oci.client import RegistryClient
from history import polling
from history.models import PollRun, TagEvent
from history.slots import Slots
from history.tasks import POLL_EXPIRES, POLL_LEASE, dispatch, poll_repository, run_poll
from tagledger.celery import app as celery_app
from tests.history.factories import watch
from tests.support.registry import free_port
from tests.support.worker import IDLE_BROKER_URL, app_using_broker, flush_redis, wait_until

NOWHERE = SimpleNamespace(host="registry.invalid")  # never contacted by these tests
HOUR = timedelta(hours=1)


class Queue:
    """The messages waiting in Celery's default queue of a Redis broker, oldest first."""

    def __init__(self, client):
        self.client = client

    def __len__(self) -> int:
        return self.client.llen("celery")

    def messages(self) -> list[dict]:
        # kombu LPUSHes and consumers BRPOP: the list's tail is the oldest message.
        return [json.loads(raw) for raw in reversed(self.client.lrange("celery", 0, -1))]

    def polls(self) -> dict[int, datetime]:
        """repository id -> the `expires` each queued poll_repository message carries."""
        polls = {}
        for message in self.messages():
            assert message["headers"]["task"] == "history.tasks.poll_repository"
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            polls[args[0]] = datetime.fromisoformat(message["headers"]["expires"])
        return polls


@pytest.fixture
def queue():
    """This process's Celery app publishing to an empty Redis database that nothing consumes."""
    client = flush_redis(IDLE_BROKER_URL)
    with app_using_broker(celery_app, IDLE_BROKER_URL):
        yield Queue(client)
    client.flushdb()


@pytest.fixture
def fast_retries(monkeypatch):
    """The client's back-off (0.5 s doubling: seconds for a refused connection) is the client
    tests' concern; here only what happens after the poll fails matters."""
    original = RegistryClient.from_docker_config.__func__

    def without_backoff(cls, *args, **options):
        return original(cls, *args, **{**options, "backoff": 0.001})

    monkeypatch.setattr(RegistryClient, "from_docker_config", classmethod(without_backoff))


def due_names(now: datetime) -> set[str]:
    return set(Repository.objects.due_for_poll(now=now).values_list("name", flat=True))


def approximately(expected: datetime, within: timedelta = timedelta(seconds=10)):
    return pytest.approx(expected.timestamp(), abs=within.total_seconds())


# --- due_for_poll -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_due_means_enabled_time_has_come_and_no_live_lease():
    now = timezone.now()
    watch(NOWHERE, "due", next_poll_at=now - HOUR)
    watch(NOWHERE, "due-this-instant", next_poll_at=now)
    watch(NOWHERE, "disabled", enabled=False, next_poll_at=now - HOUR)
    watch(NOWHERE, "not-yet-due", next_poll_at=now + timedelta(seconds=1))
    watch(NOWHERE, "leased", next_poll_at=now - HOUR, lease_until=now + timedelta(seconds=1))
    watch(NOWHERE, "lease-expired", next_poll_at=now - HOUR, lease_until=now - timedelta(seconds=1))

    assert due_names(now) == {"due", "due-this-instant", "lease-expired"}


@pytest.mark.django_db
def test_a_lease_stops_counting_the_moment_it_ends():
    now = timezone.now()
    watch(NOWHERE, "leased", next_poll_at=now - HOUR, lease_until=now + HOUR)

    assert due_names(now + HOUR) == set()  # lease_until itself is still held
    assert due_names(now + HOUR + timedelta(microseconds=1)) == {"leased"}


# --- claim --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_claim_is_compare_and_set_so_of_two_claims_one_wins():
    watch(NOWHERE, "contested", next_poll_at=timezone.now() - HOUR)
    # Two dispatchers that both read the row before either claimed it.
    first, second = Repository.objects.get(), Repository.objects.get()

    assert first.claim(lease=POLL_LEASE) is True
    assert second.claim(lease=POLL_LEASE) is False
    assert second.lease_until is None  # the loser's copy is not touched either
    assert Repository.objects.get().lease_until == first.lease_until


@pytest.mark.django_db(transaction=True)
def test_of_many_simultaneous_claims_exactly_one_wins():
    repository = watch(NOWHERE, "contested", next_poll_at=timezone.now() - HOUR)
    at_once = threading.Barrier(8)

    def claim() -> bool:
        try:
            mine = Repository.objects.get(pk=repository.pk)
            at_once.wait(timeout=10)
            return mine.claim(lease=POLL_LEASE)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [future.result() for future in [pool.submit(claim) for _ in range(8)]]

    assert sorted(outcomes) == [False] * 7 + [True]


@pytest.mark.django_db
def test_an_expired_lease_can_be_claimed_and_a_live_one_cannot():
    now = timezone.now()
    repository = watch(NOWHERE, "abandoned", next_poll_at=now - HOUR, lease_until=now - timedelta(seconds=1))

    assert repository.claim(lease=POLL_LEASE, now=now) is True
    assert Repository.objects.get().lease_until == now + POLL_LEASE
    assert repository.claim(lease=POLL_LEASE, now=now + POLL_LEASE) is False
    assert repository.claim(lease=POLL_LEASE, now=now + POLL_LEASE + timedelta(microseconds=1)) is True


# --- dispatch -----------------------------------------------------------------------------------


# transaction=True: dispatch enqueues on commit, as it does outside tests.
@pytest.mark.django_db(transaction=True)
def test_dispatch_enqueues_one_expiring_poll_per_due_repository_and_leases_it(queue):
    now = timezone.now()
    due = [watch(NOWHERE, f"due-{n}", next_poll_at=now - HOUR) for n in range(3)]
    later = watch(NOWHERE, "later", next_poll_at=now + HOUR)
    busy = watch(NOWHERE, "busy", next_poll_at=now - HOUR, lease_until=now + HOUR)

    assert dispatch() == 3

    polls = queue.polls()
    assert sorted(polls) == sorted(repository.pk for repository in due)
    for repository in due:
        # A poll that waited this long in the queue is dropped rather than run late...
        assert polls[repository.pk].timestamp() == approximately(now + timedelta(seconds=POLL_EXPIRES))
        # ...and until then nobody else may enqueue one.
        repository.refresh_from_db()
        assert repository.lease_until >= polls[repository.pk]
    assert Repository.objects.get(pk=later.pk).lease_until is None
    assert Repository.objects.get(pk=busy.pk).lease_until == now + HOUR


# transaction=True: dispatch enqueues on commit, as it does outside tests.
@pytest.mark.django_db(transaction=True)
def test_a_second_dispatch_enqueues_nothing_while_the_leases_are_held(queue):
    watch(NOWHERE, "due", next_poll_at=timezone.now() - HOUR)

    assert dispatch() == 1
    assert dispatch() == 0
    assert len(queue) == 1


# --- poll_repository and run_poll ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_poll_of_a_repository_deleted_meanwhile_is_a_quiet_return():
    repository = watch(NOWHERE, "deleted")
    repository_id = repository.pk
    repository.delete()

    assert poll_repository(repository_id) is None
    assert not PollRun.objects.exists()


@pytest.mark.django_db
def test_a_failed_poll_still_releases_the_lease_and_schedules_the_next(fast_retries):
    closed = SimpleNamespace(host=f"127.0.0.1:{free_port()}")  # nothing listens there
    repository = watch(closed, "unreachable", interval=timedelta(minutes=7))
    assert repository.claim(lease=POLL_LEASE)

    run = run_poll(repository)

    assert run.status == PollRun.Status.FAILED
    assert "Unavailable" in run.error or "refused" in run.error.lower(), run.error
    repository.refresh_from_db()
    assert repository.lease_until is None
    assert repository.next_poll_at.timestamp() == approximately(timezone.now() + timedelta(minutes=7))


@pytest.mark.django_db
def test_a_busy_registry_releases_the_lease_and_retries_within_seconds(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0")
    repository = watch(registry, repo_name)
    assert repository.claim(lease=POLL_LEASE)

    # Another poll (here: this test) holds every request slot of the registry.
    with Slots(repository.registry, repository.registry.concurrency) as held:
        assert held.count == repository.registry.concurrency
        started = timezone.now()
        with pytest.raises(polling.RegistryBusy):
            run_poll(repository)

    assert not PollRun.objects.exists()  # busy is not a poll: nothing was asked of the registry
    repository.refresh_from_db()
    assert repository.lease_until is None
    assert started + timedelta(seconds=5) <= repository.next_poll_at <= timezone.now() + timedelta(seconds=10)


def running_poll_holding_every_slot(repository: Repository) -> Slots:
    """What another worker's poll of the same registry looks like: a running PollRun, all slots held."""
    PollRun.objects.create(repository=repository, started_at=timezone.now())
    held = Slots(repository.registry, repository.registry.concurrency)
    assert held.count == repository.registry.concurrency
    return held


@pytest.mark.django_db
def test_a_poll_waits_for_the_slots_a_running_poll_of_its_registry_gives_back(
    registry, pusher, make_repo_name
):
    pusher.push(name := make_repo_name(), "1.0")
    repository = watch(registry, name)
    held = running_poll_holding_every_slot(watch(registry, make_repo_name()))
    threading.Timer(1.0, held.release).start()

    started = timezone.now()
    run = polling.poll(repository)

    assert run.status == PollRun.Status.OK and run.tags_seen == 1
    assert timezone.now() - started >= timedelta(seconds=1), "it waited for the slots instead of sharing them"


@pytest.mark.django_db
def test_a_poll_gives_up_when_a_running_poll_keeps_the_slots_past_slot_wait(
    registry, pusher, make_repo_name, monkeypatch
):
    monkeypatch.setattr(polling, "SLOT_WAIT", 1.0)
    pusher.push(name := make_repo_name(), "1.0")
    repository = watch(registry, name)
    with running_poll_holding_every_slot(watch(registry, make_repo_name())):
        started = timezone.now()
        with pytest.raises(polling.RegistryBusy):
            polling.poll(repository)
        assert timedelta(seconds=1) <= timezone.now() - started < timedelta(seconds=polling.SLOT_GRACE + 3)
    assert not PollRun.objects.filter(repository=repository).exists()


@pytest.mark.django_db
def test_the_poll_task_takes_a_busy_registry_quietly(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0")
    repository = watch(registry, repo_name)
    assert repository.claim(lease=POLL_LEASE)

    with Slots(repository.registry, repository.registry.concurrency):
        assert poll_repository(repository.pk) is None

    repository.refresh_from_db()
    assert repository.lease_until is None
    assert repository.next_poll_at <= timezone.now() + timedelta(seconds=10)
    # Once the slots are free, the rescheduled poll goes through.
    assert run_poll(repository).status == PollRun.Status.OK


# --- when the lease is not enough -------------------------------------------------------------


# transaction=True: dispatch enqueues on commit, as it does outside tests.
@pytest.mark.django_db(transaction=True)
def test_a_poll_dropped_for_waiting_too_long_lets_the_next_dispatch_enqueue_a_fresh_one(queue):
    """What tasks.POLL_EXPIRES promises: "A queued poll older than this is dropped: the next
    dispatch enqueues a fresh one" (give or take a margin for clocks). Today the repository stays
    claimed for all of POLL_LEASE, 20 minutes more, and misses a poll."""
    watch(NOWHERE, "due", next_poll_at=timezone.now() - HOUR)
    assert dispatch() == 1
    [expires] = queue.polls().values()
    queue.client.flushdb()  # past `expires` a worker discards the message without running it

    assert due_names(expires + timedelta(minutes=2)) == {"due"}


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_polls_of_one_repository_record_a_new_tag_once(registry, pusher, repo_name, settings):
    """The lease keeps polls of one repository apart until one outlives it (POLL_LEASE) or a poll
    runs beside the dispatcher's; then the database must still make a duplicate event impossible.

    Writes to tag states are held back (a table lock) until both polls are at that point, so the
    interleaving is certain rather than lucky.
    """
    pusher.push(repo_name, "1.0")
    Registry.objects.create(host=registry.host, concurrency=16)
    settings.TAGLEDGER_POLL_THREADS = 8  # slots for both polls: one may otherwise take all 16
    repository = watch(registry, repo_name)

    def poll() -> PollRun:
        try:
            return polling.poll(Repository.objects.select_related("registry").get(pk=repository.pk))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE history_tagstate IN SHARE MODE")
            runs = [pool.submit(poll), pool.submit(poll)]
            wait_until(
                lambda: _sessions_waiting_for_a_lock(cursor) == 2,
                timeout=20,
                what="both polls to wait for the tag-state lock",
            )
        runs = [run.result(timeout=20) for run in runs]

    assert [run.status for run in runs] == ["ok", "ok"]
    events = TagEvent.objects.filter(tag__repository=repository)
    assert list(events.values_list("tag__name", "kind")) == [("1.0", "created")]


def _sessions_waiting_for_a_lock(cursor) -> int:
    cursor.execute(
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid IN"
        " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
    )
    return cursor.fetchone()[0]
