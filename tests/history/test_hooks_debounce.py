"""A stream of push events gives few polls (history.triggers): a burst of any size one poll at
once and at most one more, none lost while a poll is queued or running, and a forged stream no
more than about one poll per TAGLEDGER_HOOK_MIN_INTERVAL.

No worker runs: what is enqueued is read back from a Redis database that nothing consumes, and
the tasks are called directly, as a worker would call them.
"""

import base64
import json

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository
from history import triggers
from history.tasks import QUEUED_LEASE, enqueue, poll_after_push, poll_repository
from tagledger.celery import app as celery_app
from tests.history.factories import watch
from tests.support.worker import IDLE_BROKER_URL, app_using_broker, flush_redis

# Every test here enqueues on commit, as the endpoint and the tasks do outside tests.
pytestmark = pytest.mark.django_db(transaction=True)
GAP = 2


class Queue:
    """Celery's default queue on a Redis database nothing consumes: (task name, args, countdown?)."""

    def __init__(self, client):
        self.client = client

    def tasks(self) -> list[tuple[str, int, bool]]:
        found = []
        for raw in reversed(self.client.lrange("celery", 0, -1)):
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append((message["headers"]["task"], args[0], message["headers"]["eta"] is not None))
        return found

    def polls(self) -> int:
        return sum(name == "history.tasks.poll_repository" for name, _, _ in self.tasks())

    def follow_ups(self) -> int:
        return sum(name == "history.tasks.poll_after_push" for name, _, _ in self.tasks())

    def clear(self) -> None:
        self.client.delete("celery")


@pytest.fixture
def queue(settings):
    settings.TAGLEDGER_HOOK_MIN_INTERVAL = GAP
    client = flush_redis(IDLE_BROKER_URL)
    with app_using_broker(celery_app, IDLE_BROKER_URL):
        yield Queue(client)
    client.flushdb()


@pytest.fixture
def repository() -> Repository:
    registry, _ = Registry.objects.get_or_create(host="registry.invalid")  # never contacted here
    return Repository.objects.create(registry=registry, name="team/app")


def poll_ends(repository: Repository) -> None:
    """What the end of history.tasks.poll_repository does, without a registry to poll."""
    repository.release(next_poll_at=timezone.now() + repository.interval)
    triggers.after_poll(repository)


def test_a_burst_of_100_pushes_gives_one_poll_at_once_and_one_follow_up(queue, repository):
    enqueued_now = [triggers.trigger(repository) for _ in range(100)]

    assert enqueued_now == [True] + [False] * 99
    assert queue.tasks() == [
        ("history.tasks.poll_repository", repository.pk, False),
        ("history.tasks.poll_after_push", repository.pk, True),  # at the end of the gap
    ]

    poll_ends(repository)  # the first poll: nothing asked it for more
    assert queue.polls() == 1
    poll_after_push(repository.pk)  # the follow-up, once its countdown ran out
    assert queue.polls() == 2
    poll_ends(repository)
    assert (queue.polls(), queue.follow_ups()) == (2, 1)


def test_the_follow_up_waits_for_a_poll_still_running_and_runs_once_after_it(queue, repository):
    for _ in range(100):
        triggers.trigger(repository)
    queue.clear()

    poll_after_push(repository.pk)  # the first poll is still running: it must not be lost...
    assert queue.polls() == 0
    poll_ends(repository)  # ...so the first poll's end enqueues it
    assert queue.polls() == 1
    poll_ends(repository)
    assert queue.polls() == 1


def test_a_push_while_a_scheduled_poll_runs_polls_once_more_after_it(queue, repository):
    assert repository.claim(lease=QUEUED_LEASE)  # the dispatcher's poll, which read the tags already

    assert triggers.trigger(repository) is False
    assert queue.polls() == 0
    poll_ends(repository)
    assert queue.polls() == 1


def test_a_poll_that_ends_without_a_push_asks_for_nothing(queue, repository):
    poll_ends(repository)
    assert queue.tasks() == []


def test_within_the_gap_a_forged_stream_causes_no_poll_beyond_the_follow_up(queue, repository):
    triggers.trigger(repository)
    poll_ends(repository)
    queue.clear()

    # The poll ended at once: the lease is free, yet pushes within the gap wait for its end.
    assert [triggers.trigger(repository) for _ in range(50)] == [False] * 50
    assert (queue.polls(), queue.follow_ups()) == (0, 1)


def test_the_gap_is_per_repository(queue, repository):
    other = Repository.objects.create(registry=repository.registry, name="team/other")
    assert triggers.trigger(repository) and triggers.trigger(other)
    assert queue.polls() == 2


def test_a_follow_up_of_a_repository_unwatched_meanwhile_is_a_quiet_return(queue, repository):
    triggers.trigger(repository)
    triggers.trigger(repository)
    Repository.objects.filter(pk=repository.pk).update(enabled=False)
    queue.clear()

    poll_after_push(repository.pk)
    poll_after_push(10**9)  # deleted
    assert queue.tasks() == []


def test_the_poll_task_itself_enqueues_the_poll_a_push_asked_for_while_it_ran(
    queue, registry, pusher, repo_name
):
    pusher.push(repo_name, "1.0")
    repository = watch(registry, repo_name)
    assert repository.claim(lease=QUEUED_LEASE)  # queued: a push now cannot know what it will read
    triggers.trigger(repository)
    assert queue.polls() == 0

    poll_repository(repository.pk)

    assert queue.polls() == 1
    repository.refresh_from_db()
    assert repository.lease_until is not None  # claimed for the poll just enqueued


ACTIONS = st.lists(st.sampled_from(["push", "start", "end", "follow_up", "scheduled"]), max_size=40)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=ACTIONS)
@example(actions=["scheduled", "start", "push"])  # a push while the dispatcher's poll runs
@example(actions=["push", "start", "push", "follow_up"])  # the follow-up while the first poll runs
@example(actions=["push", "push", "start", "end", "follow_up", "start", "push"])  # a push after a follow-up
def test_no_push_is_lost_whatever_the_order_of_pushes_polls_and_follow_ups(queue, repository, actions):
    """Any interleaving of pushes, a worker starting and ending the queued poll, the follow-up task
    running (early: no time passes here, so every push after the first is inside the gap) and the
    dispatcher's own polls: never two polls queued or running at once, never two follow-ups queued,
    and once everything queued has run, a poll started after the last push."""
    from django.core.cache import cache

    cache.clear()
    queue.client.flushdb()
    repository.release(next_poll_at=timezone.now())
    clock, running, last_push, last_start = 0, False, None, None

    def take(task: str) -> bool:
        for raw in queue.client.lrange("celery", 0, -1):
            if json.loads(raw)["headers"]["task"] == task:
                return queue.client.lrem("celery", 1, raw) == 1
        return False

    def step(action: str) -> None:
        nonlocal clock, running, last_push, last_start
        clock += 1
        if action == "push":
            triggers.trigger(repository)
            last_push = clock
        elif action == "scheduled":
            enqueue(repository)
        elif action == "start" and not running and take("history.tasks.poll_repository"):
            running, last_start = True, clock
        elif action == "end" and running:
            running = False
            poll_ends(repository)
        elif action == "follow_up" and take("history.tasks.poll_after_push"):
            poll_after_push(repository.pk)
        assert queue.polls() + running <= 1
        assert queue.follow_ups() <= 1

    for action in actions:
        step(action)
    for _ in range(20):  # drain: the queue's work runs to its end, in any order that can happen
        if queue.tasks() == [] and not running:
            break
        for action in ("end", "follow_up", "start"):
            step(action)
    assert queue.tasks() == [] and not running
    if last_push is not None:
        assert last_start is not None and last_start > last_push
