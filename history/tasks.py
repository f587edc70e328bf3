"""Thin Celery tasks: ids in, one domain call, declarative retries."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from catalog.models import Repository

from . import notify, polling, triggers
from .models import PollRun

log = logging.getLogger(__name__)

# A poll holds its repository this long, renewed while it runs (history.heartbeat).
POLL_LEASE = polling.POLL_LEASE
# A queued poll older than this is dropped: the next dispatch enqueues a fresh one.
POLL_EXPIRES = 10 * 60
# An attempt deliver_due queued that has waited this long is dropped: the next run queues it again.
DELIVER_DUE_EXPIRES = 14
# What dispatch claims: the queue wait only, so a dropped poll frees the repository a minute later.
QUEUED_LEASE = timedelta(seconds=POLL_EXPIRES + 60)


@shared_task(ignore_result=True)
def dispatch() -> int:
    """Beat runs this every 15 s: end polls that died with their worker, then claim each due
    repository and enqueue its poll."""
    polling.sweep_stale_polls(PollRun.objects.all())
    return sum(enqueue(repository) for repository in Repository.objects.due_for_poll())


def enqueue(repository: Repository) -> bool:
    """Claim the repository and queue its poll; False when a poll is already queued or running."""
    if not repository.claim(lease=QUEUED_LEASE):
        return False
    poll_repository.apply_async_on_commit((repository.pk,), expires=POLL_EXPIRES)
    return True


# No autoretry: a poll records its own failure (PollRun) and the schedule is the retry; a worker
# that dies mid-poll leaves a lease that expires, after which the dispatcher claims it again.
@shared_task(ignore_result=True, acks_late=True)
def poll_repository(repository_id: int) -> None:
    """Poll one claimed repository and schedule its next poll; a vanished repository is a quiet return."""
    repository = Repository.objects.select_related("registry").filter(pk=repository_id).first()
    if repository is None:
        return
    # Started within its queued lease (an expired message never runs): now hold it for the poll.
    repository.extend_lease(lease=POLL_LEASE)
    try:
        run_poll(repository)
    except polling.RegistryBusy as busy:
        log.info("%s: %s; rescheduled", repository, busy)
        return
    # Released by now: a push that came while this poll was queued or running polls once more.
    triggers.after_poll(repository)


@shared_task(ignore_result=True)
def poll_after_push(repository_id: int) -> None:
    """Pushes came within the gap after a poll they caused: poll once more (history.triggers)."""
    repository = Repository.objects.select_related("registry").filter(pk=repository_id, enabled=True).first()
    if repository is not None:
        triggers.follow_up(repository)


# No autoretry: a failed attempt records itself and schedules its retry (next_attempt_at), which
# deliver_due queues; an attempt is claimed first, so a duplicate message sends nothing.
@shared_task(ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> None:
    """One attempt at one notification delivery; a vanished delivery is a quiet return."""
    from . import deliveries  # history.deliveries imports these tasks

    deliveries.attempt_by_id(delivery_id)


@shared_task(ignore_result=True)
def deliver_due() -> int:
    """Beat runs this every 15 s: queue an attempt for each delivery whose retry is due (each its
    own task, so a slow receiver holds one worker thread, not the others' retries)."""
    from . import deliveries

    due = deliveries.due()
    for delivery_id in due:
        deliver.apply_async((delivery_id,), expires=DELIVER_DUE_EXPIRES)
    return len(due)


def run_poll(repository: Repository, progress=None, *, supply_chain: bool = False):
    """Poll and release the lease with the next due time; used by the task and the CLI alike."""
    next_poll_at = None
    try:
        run = polling.poll(repository, progress=progress, supply_chain=supply_chain)
        next_poll_at = timezone.now() + repository.interval
        # Tell subscribers once the events are committed; never raises, never waits on the network.
        notify.after_poll(run)
        return run
    except polling.RegistryBusy as busy:
        # Not a failure: another poll holds the registry's slots, or its rate limit paused it.
        next_poll_at = timezone.now() + timedelta(seconds=busy.retry_after + random.uniform(0, 5))  # noqa: S311
        raise
    finally:
        # A crash still frees the repository, retried after one interval rather than hammered.
        repository.release(next_poll_at=next_poll_at or timezone.now() + repository.interval)


# Fan-out is idempotent (history.notify), so a redelivered or retried task makes no second delivery.
@shared_task(
    ignore_result=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=5, max_retries=5
)
def notify_poll(poll_id: int) -> None:
    """Match a poll's events to subscriptions and queue the deliveries; a vanished poll: a quiet return."""
    made = notify.fan_out(poll_id)
    if made:
        from . import deliveries  # history.deliveries imports these tasks

        deliveries.enqueue(made)


@shared_task(ignore_result=True)
def notify_catch_up() -> int:
    """Beat runs this every 5 minutes: the deliveries of recent polls whose fan-out was lost."""
    made = notify.catch_up()
    if made:
        from . import deliveries

        deliveries.enqueue(made)
    return len(made)
