"""Sending a delivery: one signed attempt at a time, retried with backoff, until the receiver takes
it, its attempts run out, or its subscription is disabled for failing.

At least once: an attempt is claimed before it is sent (a compare-and-set on next_attempt_at), so
two workers never send the same attempt at once; a worker that dies after sending and before
recording sends it again later, with the same X-Tagledger-Delivery key, which is what a receiver
deduplicates on.

While a subscription is failing (consecutive_failures > 0), only its oldest pending delivery is
tried; the others wait behind it in order. A receiver that is down then sees one request per
backoff step, not one per queued message, and a short outage during a burst of events does not
add up to TAGLEDGER_NOTIFY_DISABLE_AFTER failures by itself.
"""

import hashlib
import hmac
import logging
import random
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from catalog.oci.client import parse_retry_after
from catalog.oci.transport import ends

from . import outbound, payloads
from .models import Delivery, Subscription

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tagledger-Signature"  # sha256=<hex HMAC-SHA256(secret, body)>
TIMESTAMP_HEADER = "X-Tagledger-Timestamp"  # unix seconds of this attempt
TIMESTAMP_SIGNATURE_HEADER = (
    "X-Tagledger-Timestamp-Signature"  # sha256=<hex HMAC(secret, f"{ts}.".encode()+body)>
)
DELIVERY_HEADER = "X-Tagledger-Delivery"  # Delivery.key: the same on every attempt (idempotency)

try:
    USER_AGENT = f"tagledger/{version('tagledger')}"
except PackageNotFoundError:  # a checkout that was never installed
    USER_AGENT = "tagledger"

# The longest wait between two attempts, computed or asked for by Retry-After.
MAX_BACKOFF = 3600.0
# An attempt's claim: longer than its deadline, so that it has ended (sent or not) before another
# worker may claim the delivery again; a worker that died holding it leaves it due after this. The
# margin covers what the deadline does not: resolving the host name, which no watchdog interrupts.
LEASE_MARGIN = timedelta(minutes=2)
# A new delivery is sent by the task enqueued with it; should that task be lost, deliver_due
# sends it once it is this old.
LOST_TASK_AFTER = timedelta(minutes=2)
# At most this many deliveries are queued by one deliver_due run (it runs every 15 s).
DUE_BATCH = 500
# How much of a failed answer the delivery log keeps.
ERROR_TEXT = 300


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature headers: the body's HMAC, and the HMAC of "<timestamp>." + body, which binds
    the time of the attempt so that a receiver can refuse an old message replayed."""
    key = secret.encode()
    timestamped = f"{timestamp}.".encode() + body
    return {
        SIGNATURE_HEADER: "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        TIMESTAMP_HEADER: str(timestamp),
        TIMESTAMP_SIGNATURE_HEADER: "sha256=" + hmac.new(key, timestamped, hashlib.sha256).hexdigest(),
    }


def headers(delivery: Delivery, timestamp: int) -> dict[str, str]:
    body = delivery.body.encode()
    return {
        "Content-Type": payloads.content_type(delivery.subscription.format, body),
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery.key,
        **sign(delivery.subscription.secret, body, timestamp),
    }


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: what Retry-After asked (at most
    MAX_BACKOFF), or TAGLEDGER_NOTIFY_BACKOFF doubled per attempt, capped, with equal jitter (half
    fixed, half random), so retries of many deliveries spread out but never come at once."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_BACKOFF)
    ceiling = min(MAX_BACKOFF, settings.TAGLEDGER_NOTIFY_BACKOFF * 2.0 ** min(attempts - 1, 32))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 -- spreading load, not a secret


def attempt(delivery: Delivery, *, now: datetime | None = None) -> Delivery:
    """Try `delivery` once now, if it is due and nobody else is trying it; the row as it is after.

    Not sent: a delivered or failed one, one whose subscription is disabled (it fails), one held
    behind an older pending delivery of a failing subscription, one not yet due or claimed by
    another worker. A test delivery is tried once and never counts against its subscription."""
    now = now or timezone.now()
    current = Delivery.objects.select_related("subscription").filter(pk=delivery.pk).first()
    if current is None or current.status != Delivery.Status.PENDING:
        return current or delivery
    subscription = current.subscription
    if not subscription.enabled and not current.test:  # a test may check a disabled one's receiver
        why = subscription.disabled_reason or "by hand"
        Delivery.objects.filter(pk=current.pk, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.FAILED, next_attempt_at=None,
            error=f"not sent: the subscription is disabled ({why})"[:1000],
        )  # fmt: skip
        return _reloaded(current)
    if not current.test and subscription.consecutive_failures and _held(current):
        return current
    if not _claim(current, now):
        return _reloaded(current)

    timestamp = int(now.timestamp())
    started = timezone.now()
    try:
        response = outbound.post(
            subscription.url, current.body.encode(), headers(current, timestamp),
            timeout=settings.TAGLEDGER_NOTIFY_TIMEOUT,
        )  # fmt: skip
    except outbound.UnsafeURL as refused:
        _failed(current, now, error=f"refused: {refused}", latency=None, code=None)
    except outbound.SendFailed as failure:
        latency = (timezone.now() - started).total_seconds()
        _failed(current, now, error=str(failure), latency=latency, code=None)
    else:
        if response.ok:
            _delivered(current, now, response)
        else:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            _failed(
                current, now, error=_http_error(response), latency=response.latency,
                code=response.status, retry_after=retry_after,
            )  # fmt: skip
    return _reloaded(current)


def attempt_by_id(delivery_id: int) -> Delivery | None:
    """attempt() for a task, which has an id; None when the delivery is gone."""
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    return None if delivery is None else attempt(delivery)


def _reloaded(delivery: Delivery) -> Delivery:
    """The row as it is now; the one in hand if it is gone (its subscription removed meanwhile)."""
    return Delivery.objects.select_related("subscription").filter(pk=delivery.pk).first() or delivery


def _held(delivery: Delivery) -> bool:
    """Whether an older delivery of its (failing) subscription is still pending: it goes first."""
    return Delivery.objects.filter(
        subscription_id=delivery.subscription_id,
        status=Delivery.Status.PENDING,
        test=False,
        pk__lt=delivery.pk,
    ).exists()


def _claim(delivery: Delivery, now: datetime) -> bool:
    """Take the attempt: only one worker turns a due pending delivery into a claimed one."""
    lease = timedelta(seconds=settings.TAGLEDGER_NOTIFY_TIMEOUT) + LEASE_MARGIN
    claimed = (
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + lease)
    )
    return claimed == 1


def _delivered(delivery: Delivery, now: datetime, response: outbound.Response) -> None:
    # Whatever happened meanwhile (its subscription disabled, failing it): the receiver has it.
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.DELIVERED, attempts=F("attempts") + 1, last_attempt_at=now, delivered_at=now,
        next_attempt_at=None, response_code=response.status, latency_ms=_ms(response.latency), error="",
    )  # fmt: skip
    Subscription.objects.filter(pk=delivery.subscription_id).exclude(consecutive_failures=0).update(
        consecutive_failures=0
    )


def _failed(delivery, now, *, error: str, latency: float | None, code: int | None, retry_after=None) -> None:
    """Record a failed attempt; schedule the next, or give up; disable a subscription that has
    failed TAGLEDGER_NOTIFY_DISABLE_AFTER attempts in a row."""
    attempts = delivery.attempts + 1
    error = error[:1000]
    if delivery.test or attempts >= settings.TAGLEDGER_NOTIFY_ATTEMPTS:
        status, next_attempt_at = Delivery.Status.FAILED, None
    else:
        status, next_attempt_at = (
            Delivery.Status.PENDING,
            now + timedelta(seconds=backoff(attempts, retry_after)),
        )
    record = {
        "attempts": F("attempts") + 1, "last_attempt_at": now, "response_code": code,
        "latency_ms": _ms(latency), "error": error,
    }  # fmt: skip
    updated = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(
        status=status, next_attempt_at=next_attempt_at, **record
    )
    if not updated:  # failed meanwhile by its subscription's disablement: keep what this attempt saw
        Delivery.objects.filter(pk=delivery.pk).update(**record)
    # The subscription by id: its URL may be a secret (Slack's, Mattermost's).
    log.info(
        "delivery %s to subscription %s failed (attempt %d): %s",
        delivery.key,
        delivery.subscription_id,
        attempts,
        error,
    )
    if delivery.test:
        return
    Subscription.objects.filter(pk=delivery.subscription_id).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    failures = Subscription.objects.filter(pk=delivery.subscription_id).values_list(
        "consecutive_failures", flat=True
    ).first()  # fmt: skip
    if failures is not None and failures >= settings.TAGLEDGER_NOTIFY_DISABLE_AFTER:
        disable_failing(delivery.subscription, f"{failures} consecutive failures; last: {error}", now=now)


def disable_failing(subscription: Subscription, reason: str, *, now: datetime | None = None) -> bool:
    """Disable an enabled subscription for `reason` and fail its pending deliveries; False when it
    was disabled already (by another worker's failure, or by hand)."""
    now = now or timezone.now()
    reason = reason[:1000]
    disabled = Subscription.objects.filter(pk=subscription.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason
    )
    if not disabled:
        return False
    log.warning("subscription %s disabled: %s", subscription.pk, reason)
    Delivery.objects.filter(subscription_id=subscription.pk, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED,
        next_attempt_at=None,
        error=f"not sent: the subscription was disabled ({reason})"[:1000],
    )
    return True


def _http_error(response: outbound.Response) -> str:
    """'HTTP 500: <the start of the answer>', or where a redirect pointed (never followed)."""
    if 300 <= response.status < 400:
        location = response.headers.get("Location") or "nowhere"
        return f"HTTP {response.status}: redirects are not followed (to {ends(location, 100)})"
    # Printable text in any script; controls and bidi overrides (not printable) become spaces.
    text = " ".join("".join(c if c.isprintable() else " " for c in response.text).split())
    if len(text) > ERROR_TEXT:
        text = text[: ERROR_TEXT - 3] + "..."
    return f"HTTP {response.status}" + (f": {text}" if text else "")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(0, round(seconds * 1000))


def due(now: datetime | None = None) -> list[int]:
    """Pending deliveries to try now, oldest first: retries that are due, new ones whose task was
    lost, and those of disabled subscriptions (which attempt() fails without sending). A failing
    subscription's deliveries behind its oldest pending one are left out (see the module's text)."""
    now = now or timezone.now()
    older = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"), status=Delivery.Status.PENDING, test=False,
        pk__lt=OuterRef("pk"),
    )  # fmt: skip
    waiting = Q(subscription__enabled=True, subscription__consecutive_failures__gt=0) & Exists(older)
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)  # the `delivery_due` partial index
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, created_at__lte=now - LOST_TASK_AFTER)
        )
        .exclude(waiting)
        .order_by("pk")
        .values_list("pk", flat=True)[:DUE_BATCH]
    )


def enqueue(deliveries: list[Delivery]) -> None:
    """Send each delivery from a worker once the transaction that made it commits."""
    from . import tasks  # the tasks call this module

    for delivery in deliveries:
        tasks.deliver.apply_async_on_commit((delivery.pk,))
