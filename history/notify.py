"""Outbound notifications: subscribing, and turning one poll's events into batched deliveries.

A poll commits its events; `after_poll` then queues `tasks.notify_poll` (no network I/O, never an
error: telling people must not slow or fail the record). The task calls `fan_out`, which matches
the poll's events against every enabled subscription in one pass, renders one payload per batch
(history.payloads) and stores the deliveries; history.deliveries sends them. Delivery is at least
once: every event carries its id, and a delivery's key (sent as X-Tagledger-Delivery) is the same
whenever the same events are fanned out to the same subscription again.
"""

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from catalog import patterns
from catalog.models import Line, Repository, Version

from . import deliveries, outbound, payloads, pin_lists, serializers
from .models import Delivery, PinList, PollRun, Subscription, TagEvent, with_builds
from .supply_chain import signing_changes

log = logging.getLogger(__name__)

# What a subscription can choose to hear, in the order pages and help list them.
KINDS: dict[str, str] = {
    "created": "a tag appeared",
    "moved": "a tag now points to another build",
    "deleted": "a tag disappeared",
    "restored": "a deleted tag came back",
    "immutable_moved": "a tag that must never move did (a security event)",
    "unsigned": "a tag moved from a signed build to an unsigned one",
    "signer_changed": "a tag moved to a build no signer of the previous one signed",
    "pin_behind": "a pin of the subscription's pin list fell further behind its tag",
}
# TagEvent kinds sent as they are; `untracked` (the repository's patterns stopped matching a tag)
# is bookkeeping, not news, and imported events (a repository's first poll) would bury the rest.
EVENT_KINDS = frozenset(("created", "moved", "deleted", "restored", "immutable_moved"))
SIGNING_KINDS = frozenset(("unsigned", "signer_changed"))

MAX_NAME = 100
MAX_URL = 2048
MIN_SECRET, MAX_SECRET = 16, 256
# Tags listed per build in a payload: a build of a busy repository may have held hundreds.
MAX_HELD_TAGS = 50
DEFAULT_BATCH = 100
# catch_up fans out again the polls whose events are this recent, once the ordinary path has had
# CATCH_UP_GRACE to do it.
CATCH_UP_WINDOW = timedelta(hours=1)
CATCH_UP_GRACE = timedelta(minutes=2)


class SubscriptionError(ValueError):
    """A subscription cannot be made as asked; the text says why, for a form, the API or the CLI."""


# --- subscribing ----------------------------------------------------------------------------------


def subscribe(
    *,
    url: str,
    format: str = Subscription.Format.JSON,
    secret: str | None = None,
    repository: Repository | str | None = None,
    tag_pattern: str = "",
    kinds: Iterable[str] = (),
    line: Line | None = None,
    version: Version | None = None,
    pin_list: PinList | None = None,
    name: str = "",
    created_by=None,
) -> tuple[Subscription, str]:
    """A new enabled subscription and its signing secret (generated when None; shown only now).

    `repository` is a Repository or its reference (`registry/name`); a line or version alone implies
    its repository. Everything is checked before anything is stored: SubscriptionError says what.
    """
    url = clean_url(url)
    if format not in Subscription.Format.values:
        raise SubscriptionError(
            f"unknown format {_shown(format)}: use one of {', '.join(Subscription.Format.values)}"
        )
    secret = clean_secret(secret)
    if isinstance(repository, str):
        repository = find_repository(repository) if repository.strip() else None
    repository = _scope(repository, line, version)
    tag_pattern = clean_pattern(tag_pattern)
    kinds = clean_kinds(kinds)
    if "pin_behind" in kinds and pin_list is None:
        raise SubscriptionError("the kind pin_behind needs a pin list to watch")
    subscription = Subscription.objects.create(
        name=clean_name(name), url=url, format=format, secret=secret, repository=repository,
        tag_pattern=tag_pattern, kinds=kinds, line=line, version=version, pin_list=pin_list,
        created_by=created_by,
    )  # fmt: skip
    return subscription, secret


def clean_url(url) -> str:
    if not isinstance(url, str) or not url.strip():
        raise SubscriptionError("give the URL to send to")
    url = url.strip()
    if len(url) > MAX_URL:
        raise SubscriptionError(f"the URL is longer than {MAX_URL} characters")
    if any(not character.isprintable() or character.isspace() for character in url):
        raise SubscriptionError("the URL holds spaces or control characters")
    try:
        outbound.check_url(url)
    except outbound.UnsafeURL as refused:
        raise SubscriptionError(str(refused)) from None
    return url


def clean_secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    if not isinstance(secret, str):
        raise SubscriptionError("the secret is text")
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isascii() or not secret.isprintable():
        raise SubscriptionError(
            f"the secret must be {MIN_SECRET} to {MAX_SECRET} printable ASCII characters "
            "(leave it out to have one made)"
        )
    if secret.strip() != secret:
        raise SubscriptionError("the secret must not begin or end with a space")
    return secret


def clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else None
    if name is None:
        raise SubscriptionError("the name is text")
    if len(name) > MAX_NAME:
        raise SubscriptionError(f"the name is longer than {MAX_NAME} characters")
    if not name.isprintable():
        raise SubscriptionError("the name holds control characters")
    return name


def clean_pattern(pattern) -> str:
    if pattern is None:
        return ""
    try:
        patterns.check(pattern)
    except patterns.InvalidPattern as refused:
        raise SubscriptionError(f"tag pattern: {refused}") from None
    return pattern


def clean_kinds(kinds: Iterable[str]) -> list[str]:
    if isinstance(kinds, str):
        kinds = [kinds]
    wanted = set()
    for kind in kinds:
        if kind not in KINDS:
            raise SubscriptionError(f"unknown kind {_shown(kind)}: choose from {', '.join(KINDS)}")
        wanted.add(kind)
    return [kind for kind in KINDS if kind in wanted]


def find_repository(reference: str) -> Repository:
    """The watched repository `reference` names (`registry/name`, as `manage.py watch` printed it)."""
    if not reference.strip().isprintable():
        raise SubscriptionError("a repository reference is registry/name, without control characters")
    try:
        found = Repository.objects.named(reference)
    except ValueError as error:
        raise SubscriptionError(f"{_shown(reference)} is no repository reference: {error}") from None
    if found is None:
        raise SubscriptionError(f"no watched repository {_shown(reference)}: give it as registry/name")
    return found


def _scope(repository: Repository | None, line: Line | None, version: Version | None) -> Repository | None:
    """The repository a subscription chooses; a line or version must be of it (and of each other)."""
    if version is not None and line is not None and version.line_id != line.pk:
        raise SubscriptionError(f"the version {version} is not of the line {line}")
    chosen = version or line
    if chosen is None:
        return repository
    if repository is not None and chosen.repository_id != repository.pk:
        raise SubscriptionError(f"{'the version' if version else 'the line'} {chosen} is not of {repository}")
    return repository or Repository.objects.select_related("registry").get(pk=chosen.repository_id)


def _shown(value, limit: int = 60) -> str:
    """A value from the caller, quoted for a message: printable and bounded."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def enable(subscription: Subscription) -> None:
    """Deliver to it again (after it was disabled by hand or for failing), counting failures anew."""
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=True, disabled_at=None, disabled_reason="", consecutive_failures=0
    )
    subscription.enabled, subscription.disabled_at, subscription.disabled_reason = True, None, ""
    subscription.consecutive_failures = 0


def disable(subscription: Subscription, reason: str) -> None:
    """Stop matching it; its pending deliveries are left for history.deliveries to give up on."""
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=False, disabled_at=now, disabled_reason=reason
    )
    subscription.enabled, subscription.disabled_at, subscription.disabled_reason = False, now, reason


def send_test(subscription: Subscription) -> Delivery:
    """A test delivery (an example event, marked as a test) attempted now, so one sees at once
    whether the receiver answers; recorded in the delivery log like any other."""
    key = "test-" + secrets.token_hex(16)
    body = payloads.render(subscription.format, [example_item(key)], test=True)
    delivery = Delivery.objects.create(subscription=subscription, key=key, test=True, body=body.decode())
    return deliveries.attempt(delivery)


def example_item(id: str = "test") -> dict:
    """What a test delivery says: an event's shape with values that name no real build."""
    now = timezone.now().isoformat()
    return {
        "id": id,
        "tag": "latest",
        "kind": "moved",
        "digest": "sha256:" + "1" * 64,
        "previous_digest": "sha256:" + "0" * 64,
        "detected_at": now,
        "not_before": now,
        "signing": None,
        "repository": "registry.example/tagledger/test",
        "version": None,
        "tags": ["latest"],
        "previous_tags": [],
        "links": {},
    }


# --- after a poll ---------------------------------------------------------------------------------


def after_poll(run: PollRun | None) -> None:
    """Queue the fan-out of a poll that recorded changes, once its transaction commits. Never
    raises and never waits on the network: a broker that is down costs a log line, not the poll."""
    try:
        if run is None or not run.changes or run.status not in (PollRun.Status.OK, PollRun.Status.PARTIAL):
            return
        if not Subscription.objects.filter(enabled=True).exists():
            return
        transaction.on_commit(lambda: _queue(run.pk))
    except Exception:
        log.exception("poll %s: notifications not queued", getattr(run, "pk", None))


def _queue(poll_id: int) -> None:
    from .tasks import notify_poll  # tasks imports this module

    try:
        # retry=False: with the broker down, publishing would retry while the poll's worker waits.
        notify_poll.apply_async((poll_id,), retry=False)
    except Exception as error:
        log.warning("poll %s: notifications not queued: the broker refused (%s)", poll_id, error)


# --- fan-out --------------------------------------------------------------------------------------


@dataclass
class Batch:
    subscription: Subscription
    poll_id: int
    events: list[TagEvent] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return delivery_key(
            self.subscription, [event.pk for event in self.events], poll_id=self.poll_id,
            item_ids=[item["id"] for item in self.items],
        )  # fmt: skip


def fan_out(poll_id: int, *, pins: bool = True) -> list[Delivery]:
    """The deliveries of one poll's events, made once: run again, it makes none (and returns []).

    A fixed number of queries whatever the number of events or subscriptions (plus each pin
    list's own check, unless `pins` is False): the subscriptions, the events with their builds,
    signing and held tags, the deliveries made before, the new ones and their events.
    """
    run = PollRun.objects.select_related("repository__registry").filter(pk=poll_id).first()
    if run is None:
        return []
    subscriptions = list(
        Subscription.objects.filter(enabled=True)
        .filter(Q(repository__isnull=True) | Q(repository=run.repository_id))
        .select_related("pin_list")
    )
    if not subscriptions:
        return []
    events = list(
        TagEvent.objects.filter(poll=run, imported=False, kind__in=EVENT_KINDS)
        .select_related("tag")
        .order_by("detected_at", "pk")
    )
    with transaction.atomic():
        batches = _batches(run, subscriptions, events, pins=pins)
        return _store(batches)


def catch_up(now=None) -> list[Delivery]:
    """Fan out again the finished polls of the last CATCH_UP_WINDOW: one whose fan-out was lost (the
    broker was down as the poll ended, or the worker died) gets its deliveries now; one fanned out
    before makes none. Pins are left to the ordinary path: they are checked once per poll."""
    now = now or timezone.now()
    if not Subscription.objects.filter(enabled=True).exists():
        return []
    polls = (
        # the `event_changelog` index: an hour of events, not every poll ever run
        TagEvent.objects.filter(detected_at__gte=now - CATCH_UP_WINDOW, detected_at__lt=now - CATCH_UP_GRACE)
        .filter(imported=False, poll__status__in=(PollRun.Status.OK, PollRun.Status.PARTIAL))
        .order_by()
        .values_list("poll_id", flat=True)
        .distinct()
    )
    return [delivery for poll_id in sorted(polls) for delivery in fan_out(poll_id, pins=False)]


def _batches(
    run: PollRun, subscriptions: list[Subscription], events: list[TagEvent], *, pins: bool = True
) -> list[Batch]:
    with_builds(events)
    flags = signing_changes(events)
    builds = {build.pk: build for event in events for build in (event.build, event.previous_build) if build}
    held = TagEvent.objects.held(builds.values()) if builds else {}
    items = {event.pk: event_item(event, run.repository, held, flags.get(event.pk)) for event in events}
    checked: dict[int, list[dict]] = {}  # per pin list: checked once per poll, whoever asks
    size = getattr(settings, "TAGLEDGER_NOTIFY_BATCH", DEFAULT_BATCH)
    batches = []
    for subscription in subscriptions:
        chosen = [event for event in events if matches(subscription, event, flags.get(event.pk))]
        pin_items = []
        if pins and subscription.pin_list_id and wants(subscription, "pin_behind"):
            if subscription.pin_list_id not in checked:
                checked[subscription.pin_list_id] = pin_items_of(subscription.pin_list, run)
            pin_items = checked[subscription.pin_list_id]
        # Events first, pins after: the events' batches (and so their keys) are the same when a
        # fan-out runs again, and finds no pins fallen further behind the second time.
        everything = [(event, items[event.pk]) for event in chosen] + [(None, item) for item in pin_items]
        for start in range(0, len(everything), size):
            chunk = everything[start : start + size]
            batches.append(Batch(subscription, run.pk, [e for e, _ in chunk if e], [i for _, i in chunk]))
    return batches


def wants(subscription: Subscription, kind: str) -> bool:
    return not subscription.kinds or kind in subscription.kinds


def matches(subscription: Subscription, event: TagEvent, signing: str | None = None) -> bool:
    """Does `subscription` choose `event` (of a repository it already chose)? Its builds must be
    filled in (with_builds). An empty choice takes everything; a signing flag is a kind of its own,
    so `unsigned` alone hears only the moves that lose their signature."""
    if event.detected_at < subscription.created_at:  # (catch_up) what happened before it was made
        return False
    if subscription.kinds and not (
        event.kind in subscription.kinds or (signing and signing in subscription.kinds)
    ):
        return False
    if subscription.version_id or subscription.line_id:
        versions = [build.version for build in (event.build, event.previous_build) if build and build.version]
        if subscription.version_id and not any(v.pk == subscription.version_id for v in versions):
            return False
        if subscription.line_id and not any(v.line_id == subscription.line_id for v in versions):
            return False
    if subscription.tag_pattern:
        try:
            return patterns.search(subscription.tag_pattern, event.tag.name)
        except patterns.PatternError as error:
            log.warning("subscription %s: %s", subscription.pk, error)
            return False
    return True


def event_item(event: TagEvent, repository: Repository, held: dict, signing: str | None) -> dict:
    """An event as a payload lists it: the API's event (history.serializers.event, so an event reads
    the same in both) with its id, repository, version, the tags of both builds and links."""
    build, previous = event.build, event.previous_build
    reference = repository.reference
    links = {}
    if build:
        links["build"] = absolute(reverse("history:build", args=[build.pk]))
    if previous:
        links["previous_build"] = absolute(reverse("history:build", args=[previous.pk]))
    if build and previous and build.digest != previous.digest:
        query = urlencode({"a": f"{reference}@{previous.digest}", "b": f"{reference}@{build.digest}"})
        links["compare"] = absolute(f"{reverse('history:compare')}?{query}")
    links["changelog"] = absolute(reverse("history:repository_changelog", args=[repository.pk]))
    with contextlib.suppress(NoReverseMatch):  # a tag name the poll let through but a URL cannot hold
        links["tag"] = absolute(reverse("history:tag", args=[repository.pk, event.tag.name]))
    event.signing = signing
    shown = serializers.event(event)
    del shown["imported"]  # imported events are never sent
    return {
        "id": str(event.pk),
        **shown,
        "detected_at": event.detected_at.isoformat(),
        "not_before": event.not_before.isoformat() if event.not_before else None,
        "repository": reference,
        "version": str(build.version) if build and build.version else None,
        "tags": _tag_names(held.get(build.pk, [])) if build else [],
        "previous_tags": _tag_names(held.get(previous.pk, [])) if previous else [],
        "links": links,
    }


def _tag_names(held: Sequence) -> list[str]:
    """The tags that pointed to a build, each once, oldest first (bounded)."""
    return list(dict.fromkeys(h.tag for h in held))[:MAX_HELD_TAGS]


def pin_items_of(pin_list: PinList, run: PollRun) -> list[dict]:
    """The pins of `pin_list` that fell further behind, as payload items; [] when the check fails
    (a pin list's trouble must not cost the events their delivery)."""
    try:
        fallen = pin_lists.fallen_behind(pin_list)
    except Exception:
        log.exception("pin list %s: not checked after poll %s", pin_list.pk, run.pk)
        return []
    items = []
    for pin in fallen:
        compare = pin.compare_url
        items.append({
            "id": f"pin-{pin_list.pk}-{pin.line}-{run.pk}",
            "kind": "pin_behind",
            "pin_list": {"id": pin_list.pk, "name": pin_list.name},
            "line": pin.line,
            "reference": pin.reference,
            "current_reference": pin.current_reference,
            "builds_behind": pin.builds_behind,
            "detected_at": (run.finished_at or run.started_at).isoformat(),
            "links": {
                **({"compare": absolute(compare)} if compare else {}),
                "pin_list": absolute(reverse("history:pin_list", args=[pin_list.pk])),
            },
        })  # fmt: skip
    return items


def absolute(path: str) -> str:
    """A link for a receiver: under TAGLEDGER_BASE_URL when set, else the path alone."""
    base = getattr(settings, "TAGLEDGER_BASE_URL", "") or ""
    return base.rstrip("/") + path


def delivery_key(
    subscription: Subscription, event_ids: Iterable[int], *, poll_id: int, item_ids: Iterable[str] = ()
) -> str:
    """The idempotency key of a batch: the same events to the same subscription, the same key. A
    batch of pins alone (no events) is keyed by its poll and pins, as no event names it."""
    event_ids = sorted(event_ids)
    if event_ids:
        text = f"{subscription.pk}:events:{','.join(map(str, event_ids))}"
    else:
        text = f"{subscription.pk}:pins:{poll_id}:{','.join(sorted(item_ids))}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _store(batches: list[Batch]) -> list[Delivery]:
    """Delivery rows for the batches not stored before, with their events: four queries."""
    if not batches:
        return []
    keyed = {(batch.subscription.pk, batch.key): batch for batch in batches}
    made = set(
        Delivery.objects.filter(
            subscription__in={b.subscription.pk for b in batches}, key__in={key for _, key in keyed}
        ).values_list("subscription_id", "key")
    )
    new = {pair: batch for pair, batch in keyed.items() if pair not in made}
    if not new:
        return []
    now = timezone.now()
    Delivery.objects.bulk_create(
        [
            Delivery(
                subscription=batch.subscription,
                key=key,
                created_at=now,  # next_attempt_at empty: queued now; deliver_due picks it up if lost
                body=payloads.render(batch.subscription.format, batch.items).decode(),
            )
            for (_, key), batch in new.items()
        ],
        # a fan-out of the same poll running at the same moment (a redelivered task) made it first
        ignore_conflicts=True,
    )
    stored = [
        delivery
        for delivery in Delivery.objects.filter(
            subscription__in={pk for pk, _ in new}, key__in={key for _, key in new}, created_at=now
        ).order_by("pk")
        if (delivery.subscription_id, delivery.key) in new
    ]
    Through = Delivery.events.through
    Through.objects.bulk_create(
        [
            Through(delivery_id=delivery.pk, tagevent_id=event.pk)
            for delivery in stored
            for event in new[delivery.subscription_id, delivery.key].events
        ],
        ignore_conflicts=True,
    )
    return stored
