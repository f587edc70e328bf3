"""Push events make polls happen sooner: which watched repositories a push names, and how many
polls a stream of pushes may cause (debounced and rate-limited per repository).

The event is a trigger, never the record: history comes from the poll's own HEADs, so a forged
event can only cause a poll, about one per TAGLEDGER_HOOK_MIN_INTERVAL per repository.

State lives in the Django cache (Redis in production), shared by web processes and workers, and
`cache.add` is atomic, so the first push of a burst is told apart from the rest wherever it lands:

- the first push polls at once (history.tasks.enqueue); if a poll is queued or running it may have
  read the tags before the push, so that poll is asked to enqueue one more when it ends (`after`);
- pushes within the gap after that are not lost: the first of them schedules one follow-up at
  the end of the gap (`pending`), which does the same again.

A burst of any size thus gives one poll at once and at most one more after it.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from catalog.models import Repository

from . import tasks
from .hooks import Push

# The follow-up task runs at the end of the gap; should it be lost (a worker died), its mark
# expires this long after that and the next push schedules another.
PENDING_SLACK = 60
# How long a queued or running poll is asked to enqueue another when it ends: longer than its
# queue wait (history.tasks.POLL_EXPIRES, 10 minutes) and a long poll's run. A mark whose poll died
# costs at most one extra poll, at the end of the next.
AFTER_TIMEOUT = 60 * 60


def watched(pushes: list[Push], *, only: Repository | None = None) -> list[Repository]:
    """The enabled repositories that pushes moving a tag name: by registry host and name, or by
    name alone where the event names no host. With `only` (a repository's own token), that
    repository when a push names it, whatever host the event says (a registry known by another
    name behind a proxy)."""
    wanted = {(push.host, push.repository) for push in pushes if push.moves_a_tag}
    if only is not None:
        return [only] if only.enabled and any(name == only.name for _, name in wanted) else []
    candidates = Repository.objects.filter(enabled=True, name__in={name for _, name in wanted})
    return [
        repository
        for repository in candidates.select_related("registry").order_by("pk")
        if (repository.registry.host.lower(), repository.name) in wanted or (None, repository.name) in wanted
    ]


def trigger(repository: Repository) -> bool:
    """A push to `repository` arrived; True when it enqueued a poll now."""
    gap = settings.TAGLEDGER_HOOK_MIN_INTERVAL
    now = time.time()
    if cache.add(_key("gap", repository), now, timeout=gap):
        return _poll_now_or_after(repository)
    # Within the gap after the last poll a push caused: one follow-up at its end, for any number.
    if cache.add(_key("pending", repository), now, timeout=gap + PENDING_SLACK):
        started = cache.get(_key("gap", repository), now)
        tasks.poll_after_push.apply_async_on_commit(
            (repository.pk,), countdown=max(0.0, started + gap - now), expires=gap + PENDING_SLACK
        )
    return False


def follow_up(repository: Repository) -> bool:
    """The follow-up of pushes that arrived within the gap (history.tasks.poll_after_push)."""
    # Cleared first: a push from now on may have come after this poll read its tags.
    cache.delete(_key("pending", repository))
    cache.set(_key("gap", repository), time.time(), timeout=settings.TAGLEDGER_HOOK_MIN_INTERVAL)
    return _poll_now_or_after(repository)


def after_poll(repository: Repository) -> bool:
    """A poll of `repository` ended (lease released): enqueue one more if a push asked for it
    while this one was queued or running."""
    if not cache.delete(_key("after", repository)):
        return False
    cache.set(_key("gap", repository), time.time(), timeout=settings.TAGLEDGER_HOOK_MIN_INTERVAL)
    return tasks.enqueue(repository)


def _poll_now_or_after(repository: Repository) -> bool:
    # The mark is set before the claim is tried, and a poll releases its lease before it looks for
    # the mark (after_poll): whichever way the two interleave, one of them enqueues the poll.
    after = _key("after", repository)
    cache.set(after, 1, timeout=AFTER_TIMEOUT)
    if tasks.enqueue(repository):
        cache.delete(after)
        return True
    return False


def _key(kind: str, repository: Repository) -> str:
    return f"tagledger:hooks:{kind}:{repository.pk}"
