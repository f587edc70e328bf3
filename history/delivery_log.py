"""The delivery log and the subscriptions list: one reader each, for the staff pages and the API.

A webhook URL is a credential in its own right (Slack's and Mattermost's carry the key in the path),
so after creation every door shows it masked (`masked_url`); the secret is never shown again.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from catalog.models import Line, Repository, Version

from .keyset import Cursor, RowBefore
from .models import Delivery, Subscription

PAGE, MAX_PAGE = 50, 200
MAX_ERROR = 300  # characters of a failed attempt's reason shown in a list; a receiver's text is unbounded
STATUSES = tuple(Delivery.Status.values)
FORMAT_WORDS = {
    Subscription.Format.JSON: "tagledger JSON",
    Subscription.Format.SLACK: "Slack or Mattermost",
    Subscription.Format.CLOUDEVENTS: "CloudEvents",
}
STATUS_WORDS = {
    Delivery.Status.PENDING: "pending",
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.FAILED: "failed",
}


class InvalidLogFilter(ValueError):
    """A filter of the log that names nothing: an unknown status; the text says which."""


def masked_url(url: str) -> str:
    """`https://hooks.slack.com/…/WXYZ`: scheme and host (the where), the last four characters of the
    rest (enough to tell two apart), never the path in between (for Slack, the key)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a stored URL is checked when subscribing; an odd one is still shown safely
        return "…"
    if parts.username or parts.password:
        host = f"…@{host}"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    rest = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    if not rest:
        return f"{parts.scheme}://{host}{port}/"
    return (
        f"{parts.scheme}://{host}{port}/…/{rest[-4:]}"
        if len(rest) > 4
        else f"{parts.scheme}://{host}{port}/…"
    )


def label(subscription: Subscription) -> str:
    """What to call a subscription in a message or a button: its name, else its masked URL (its
    `str()` is the URL itself, which must not be shown)."""
    return subscription.name or masked_url(subscription.url)


def describe(subscription: Subscription) -> str:
    """What a subscription hears, in words: "moved, deleted in registry.example/app, tags matching ^3\\.".
    Reads repository, line, version and pin list: load them with `subscriptions()`'s select_related."""
    parts = [", ".join(subscription.kinds) if subscription.kinds else "every event"]
    if subscription.repository_id:
        parts.append(f"in {subscription.repository.reference}")
    if subscription.line_id:
        parts.append(f"line {subscription.line.name}{_variant(subscription.line.variant)}")
    if subscription.version_id:
        parts.append(f"version {subscription.version.name}{_variant(subscription.version.variant)}")
    if subscription.tag_pattern:
        parts.append(f"tags matching {subscription.tag_pattern}")
    if subscription.pin_list_id:
        parts.append(f"pins of {subscription.pin_list.name}")
    return " · ".join(parts)


def _variant(variant: str) -> str:
    return f" ({variant})" if variant else ""


def subscriptions() -> QuerySet[Subscription]:
    """Every subscription, oldest first, with what `describe` reads and its newest delivery's status
    (`last_status`, None before the first): two queries whatever the count (the subquery walks the
    delivery_subscription_log index to one row)."""
    newest = Delivery.objects.filter(subscription=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        Subscription.objects.select_related("repository__registry", "line", "version", "pin_list")
        .annotate(last_status=Subquery(newest.values("status")[:1]))
        .order_by("pk")
    )


def named(model: type[Line] | type[Version], repository: Repository, shown: str) -> Line | Version | None:
    """The line or version of `repository` shown as `shown` (`3.14`, or `3.14-slim` for a variant's,
    as their str() writes them), or None: how a person names one when subscribing."""
    for cut in [len(shown), *(i for i, character in enumerate(shown) if character == "-")]:
        found = model.objects.filter(
            repository=repository, name=shown[:cut], variant=shown[cut + 1 :]
        ).first()
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Page:
    deliveries: list[Delivery]  # each with `events_count` and its subscription loaded
    next_cursor: Cursor | None


def page(
    *,
    subscription: Subscription | int | None = None,
    status: str | None = None,
    after: Cursor | None = None,
    limit: int = PAGE,
) -> Page:
    """Deliveries newest first, `limit` (at most MAX_PAGE) a page, after the position `after` of a
    previous page; of one subscription and one status when given (InvalidLogFilter for an unknown
    status). One query per page, whatever its size: the subscription is joined, the events counted."""
    if status and status not in STATUSES:
        raise InvalidLogFilter(f"status: one of {', '.join(STATUSES)}")
    limit = max(1, min(limit, MAX_PAGE))
    rows = _entries()
    if subscription is not None:
        rows = rows.filter(subscription=subscription)
    if status:
        rows = rows.filter(status=status)
    if after is not None:
        rows = rows.filter(RowBefore(after, ("created_at", "id")))
    found = list(rows.order_by("-created_at", "-id")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return Page(found, Cursor(found[-1].created_at, found[-1].pk) if more else None)


def entry(pk: int) -> Delivery:
    """One delivery as the log shows it (Delivery.DoesNotExist if none)."""
    return _entries().get(pk=pk)


def _entries() -> QuerySet[Delivery]:
    # Counted per row by a subquery (the through table's unique index answers it), not by joining
    # and grouping: a GROUP BY over the log sorts every delivery before the LIMIT (1.1 s at 500 000
    # deliveries, against 6 ms).
    events = (
        Delivery.events.through.objects.filter(delivery=OuterRef("pk"))
        .order_by()
        .values("delivery")
        .annotate(count=Count("*"))
        .values("count")
    )
    return Delivery.objects.select_related("subscription").annotate(
        events_count=Coalesce(Subquery(events), 0)
    )


def short_error(delivery: Delivery) -> str:
    """A failed attempt's reason, cut to MAX_ERROR characters for a list."""
    error = delivery.error
    return error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"


# --- one JSON shape for the API (the pages show the same fields) -----------------------------------


def subscription_data(subscription: Subscription) -> dict:
    """A subscription without its secret and with its URL masked; `describe`'s loading applies."""
    return {
        "id": subscription.pk,
        "name": subscription.name,
        "url": masked_url(subscription.url),
        "format": subscription.format,
        "repository": subscription.repository.reference if subscription.repository_id else None,
        "repository_id": subscription.repository_id,
        "tag_pattern": subscription.tag_pattern,
        "kinds": list(subscription.kinds),
        "line": subscription.line.name if subscription.line_id else None,
        "version": subscription.version.name if subscription.version_id else None,
        "pin_list": subscription.pin_list.name if subscription.pin_list_id else None,
        "pin_list_id": subscription.pin_list_id,
        "filters": describe(subscription),
        "enabled": subscription.enabled,
        "disabled_at": subscription.disabled_at,
        "disabled_reason": subscription.disabled_reason,
        "consecutive_failures": subscription.consecutive_failures,
        "last_status": getattr(subscription, "last_status", None),
        "created_at": subscription.created_at,
    }


def delivery_data(delivery: Delivery) -> dict:
    subscription = delivery.subscription
    return {
        "id": delivery.pk,
        "key": delivery.key,
        "subscription": {
            "id": subscription.pk,
            "name": subscription.name,
            "url": masked_url(subscription.url),
        },
        "status": delivery.status,
        "test": delivery.test,
        "events": delivery.events_count,
        "attempts": delivery.attempts,
        "created_at": delivery.created_at,
        "last_attempt_at": delivery.last_attempt_at,
        "next_attempt_at": delivery.next_attempt_at,
        "delivered_at": delivery.delivered_at,
        "response_code": delivery.response_code,
        "latency_ms": delivery.latency_ms,
        "error": short_error(delivery),
    }


def page_data(found: Page) -> dict:
    return {
        "items": [delivery_data(delivery) for delivery in found.deliveries],
        "next": found.next_cursor.encode() if found.next_cursor else None,
    }
