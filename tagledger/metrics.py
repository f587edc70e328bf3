"""/metrics: what the database records about polls and tag history, in the Prometheus text format.

Celery workers poll and the web process serves, so a counter kept in one process is invisible to
the other: every value is read from the database when Prometheus scrapes, by a fixed handful of
queries that each seek an index (never a count over the whole event or poll table)."""

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from catalog.models import Repository
from catalog.oci.errors import RegistryError
from history import hook_counts
from history.models import Delivery, PollRun, Subscription, TagEvent
from tagledger.tokens.auth import bearer_token
from tagledger.tokens.models import ApiToken, TokenRefused

# The window of every "recent" metric. Its values slide with it and may fall: they are gauges, to
# be graphed or compared, not rate()d as counters.
WINDOW = timedelta(hours=24)
# Poll durations, in seconds: an unchanged repository takes about one round trip per tag, a first
# poll of a big one minutes, and TAGLEDGER_POLL_DEADLINE (20 min by default) ends every poll.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600)
# A webhook's answer time, in seconds: chat services answer in a fraction of a second, and
# TAGLEDGER_NOTIFY_TIMEOUT (10 s by default) ends every attempt.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A poll counts as good when it checked tags and recorded what it saw: `partial` too, since one
# tag that always fails (a registry's fault) would otherwise keep the "no good poll" alert firing.
GOOD = (PollRun.Status.OK, PollRun.Status.PARTIAL)


def _error_kinds(base: type = RegistryError) -> list[str]:
    kinds = []
    for kind in base.__subclasses__():
        kinds += [kind.__name__, *_error_kinds(kind)]
    return kinds


# What a PollRun's error names, by the words the poll writes: `<RegistryError kind>: …` for the
# poll and for each failed tag (history.polling `_failure`, `_failures`), `internal error: …` for
# a bug, `interrupted: …` for a poll whose worker died (PollRunQuerySet.sweep_stale). Registry
# kinds' names cannot occur in a tag name (no `:` there); a registry's message could name one.
ERROR_KINDS = {
    **{kind: f"{kind}: " for kind in sorted(set(_error_kinds()))},
    "internal": "internal error: ",
    "interrupted": "interrupted: ",
}


@dataclass
class Snapshot:
    """What one scrape read: the watched repositories, each one's last finished poll and last good
    one, and the window's polls, durations, errors and events."""

    now: datetime
    repositories: list[Repository]
    latest: dict[int, PollRun]
    polls: dict[str, int]
    durations: list[int]  # cumulative counts per DURATION_BUCKETS entry, then +Inf
    duration_sum: float
    errors: dict[str, int]
    events: dict[str, int]
    deliveries: dict[str, int]
    latencies: list[int]  # cumulative counts per LATENCY_BUCKETS entry, then +Inf
    latency_sum: float
    subscriptions: dict[str, int]

    @classmethod
    def read(cls, now: datetime | None = None) -> "Snapshot":
        """Six queries whatever the data size (four when nothing is watched)."""
        now = now or timezone.now()
        since = now - WINDOW
        # Each subquery is one seek in `poll_latest` (repository, -started_at).
        polls = PollRun.objects.filter(repository=OuterRef("pk")).order_by("-started_at")
        repositories = list(
            Repository.objects.select_related("registry")
            .annotate(
                latest_poll=Subquery(polls.exclude(status=PollRun.Status.RUNNING).values("pk")[:1]),
                good_at=Subquery(polls.filter(status__in=GOOD).values("finished_at")[:1]),
            )
            .order_by("registry__host", "name")
        )
        latest = PollRun.objects.in_bulk([r.latest_poll for r in repositories if r.latest_poll])
        recent = _recent_polls([r.pk for r in repositories], since)
        events = dict(
            TagEvent.objects.filter(detected_at__gte=since)  # a range of `event_changelog`
            .order_by()
            .values("kind")
            .annotate(count=Count("pk"))
            .values_list("kind", "count")
        )
        subscriptions = dict.fromkeys(("enabled", "disabled"), 0)
        for enabled, count in (
            Subscription.objects.order_by()
            .values("enabled")
            .annotate(count=Count("pk"))
            .values_list("enabled", "count")
        ):
            subscriptions["enabled" if enabled else "disabled"] = count
        return cls(
            now, repositories, latest, events=events, subscriptions=subscriptions, **recent,
            **_recent_deliveries(since),
        )  # fmt: skip


def _recent_deliveries(since: datetime) -> dict:
    """The window's notification deliveries by status, and their last attempts' latencies, in one
    query (a range of `delivery_log`)."""
    latency = Q(latency_ms__isnull=False)
    rows = (
        Delivery.objects.filter(created_at__gte=since)
        .order_by()
        .values("status")
        .annotate(
            count=Count("pk"),
            timed=Count("pk", filter=latency),
            latency=Sum("latency_ms"),
            **{
                f"le_{index}": Count("pk", filter=Q(latency_ms__lte=bound * 1000))
                for index, bound in enumerate(LATENCY_BUCKETS)
            },
        )
    )
    found = {"deliveries": {}, "latencies": [0] * (len(LATENCY_BUCKETS) + 1), "latency_sum": 0.0}
    for row in rows:
        found["deliveries"][row["status"]] = row["count"]
        cumulative = [row[f"le_{index}"] for index in range(len(LATENCY_BUCKETS))] + [row["timed"]]
        found["latencies"] = [a + b for a, b in zip(found["latencies"], cumulative, strict=True)]
        found["latency_sum"] += (row["latency"] or 0) / 1000
    return found


def _recent_polls(repository_ids: list[int], since: datetime) -> dict:
    """The window's polls by status, finished ones' durations and errors by kind, in one query.

    Filtered by the repositories as well as the time, so that PostgreSQL reads a range of
    `poll_latest` per repository: no index leads with `started_at` alone."""
    found = {
        "polls": {}, "durations": [0] * (len(DURATION_BUCKETS) + 1), "duration_sum": 0.0,
        "errors": dict.fromkeys([*ERROR_KINDS, "other"], 0),
    }  # fmt: skip
    if not repository_ids:
        return found
    finished = Q(finished_at__isnull=False)
    named = [Q(error__contains=words) for words in ERROR_KINDS.values()]
    other = ~Q(error="")
    for condition in named:
        other &= ~condition
    measures = {
        "count": Count("pk"),
        "duration": Sum(ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())),
        "finished": Count("pk", filter=finished),
        **{
            f"le_{index}": Count("pk", filter=Q(finished_at__lte=F("started_at") + timedelta(seconds=bound)))
            for index, bound in enumerate(DURATION_BUCKETS)
        },
        **{f"error_{index}": Count("pk", filter=condition) for index, condition in enumerate(named)},
        "error_other": Count("pk", filter=other),
    }
    rows = (
        PollRun.objects.filter(repository_id__in=repository_ids, started_at__gte=since)
        .order_by()
        .values("status")
        .annotate(**measures)
    )
    for row in rows:
        found["polls"][row["status"]] = row["count"]
        cumulative = [row[f"le_{index}"] for index in range(len(DURATION_BUCKETS))] + [row["finished"]]
        found["durations"] = [a + b for a, b in zip(found["durations"], cumulative, strict=True)]
        found["duration_sum"] += row["duration"].total_seconds() if row["duration"] else 0.0
        for index, kind in enumerate(ERROR_KINDS):
            found["errors"][kind] += row[f"error_{index}"]
        found["errors"]["other"] += row["error_other"]
    return found


class DatabaseCollector:
    """The metrics, computed from a Snapshot read at each scrape."""

    def collect(self):
        snapshot = Snapshot.read()
        yield from _window_metrics(snapshot)
        yield from _repository_metrics(snapshot)


def _window_metrics(snapshot: Snapshot):
    polls = GaugeMetricFamily(
        "tagledger_polls_24h", "Polls started in the last 24 hours, by status.", labels=["status"]
    )
    for status in PollRun.Status.values:
        polls.add_metric([status], snapshot.polls.get(status, 0))
    yield polls

    bounds = [floatToGoString(bound) for bound in DURATION_BUCKETS] + ["+Inf"]  # "1.0", as Histogram writes
    yield HistogramMetricFamily(
        "tagledger_poll_duration_seconds",
        "How long polls took: those started in the last 24 hours that have finished (a sliding window).",
        buckets=list(zip(bounds, snapshot.durations, strict=True)),
        sum_value=snapshot.duration_sum,
    )

    errors = GaugeMetricFamily(
        "tagledger_registry_errors_24h",
        "Polls started in the last 24 hours whose error names this kind (RegistryError kinds, internal, "
        "interrupted, other); a poll counts once for each kind it names.",
        labels=["kind"],
    )
    for kind, count in snapshot.errors.items():
        errors.add_metric([kind], count)
    yield errors

    events = GaugeMetricFamily(
        "tagledger_events_24h", "Tag events detected in the last 24 hours, by kind.", labels=["kind"]
    )
    for kind in TagEvent.Kind.values:
        events.add_metric([kind], snapshot.events.get(kind, 0))
    yield events

    deliveries = GaugeMetricFamily(
        "tagledger_deliveries_24h",
        "Notification deliveries made in the last 24 hours, by status now (pending ones may be retrying).",
        labels=["status"],
    )
    for status in Delivery.Status.values:
        deliveries.add_metric([status], snapshot.deliveries.get(status, 0))
    yield deliveries

    bounds = [floatToGoString(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
    yield HistogramMetricFamily(
        "tagledger_delivery_latency_seconds",
        "How long receivers took to answer the last attempt of each delivery made in the last 24 hours "
        "(a sliding window); one that got no answer counts with the time it waited.",
        buckets=list(zip(bounds, snapshot.latencies, strict=True)),
        sum_value=snapshot.latency_sum,
    )

    subscriptions = GaugeMetricFamily(
        "tagledger_subscriptions",
        "Notification subscriptions, enabled or disabled (by hand, or for failing).",
        labels=["state"],
    )
    for state, count in snapshot.subscriptions.items():
        subscriptions.add_metric([state], count)
    yield subscriptions


# (metric, PollRun field, what it counts) of each repository's last finished poll.
PER_POLL = (
    ("tagledger_last_poll_tags", "tags_seen", "Tags the registry listed"),
    ("tagledger_last_poll_manifest_heads", "heads", "Manifest HEAD requests"),
    ("tagledger_last_poll_manifest_gets", "gets", "Manifest GET requests"),
    ("tagledger_last_poll_blob_gets", "blob_gets", "Blob GET requests"),
    ("tagledger_last_poll_requests", "requests", "HTTP requests of any kind, retries included"),
)


def _repository_metrics(snapshot: Snapshot):
    """Per enabled repository (label `registry/name`: bounded by what is watched), and the rate
    limit per registry."""
    watched = [repository for repository in snapshot.repositories if repository.enabled]
    label = ["repository"]
    per_poll = [
        (
            GaugeMetricFamily(name, f"{what} in each enabled repository's last finished poll.", labels=label),
            field,
        )
        for name, field, what in PER_POLL
    ]
    age = GaugeMetricFamily(
        "tagledger_last_good_poll_age_seconds",
        "Seconds since each enabled repository's last good poll (ok or partial) finished; since it "
        "was added, when none has.",
        labels=label,
    )
    interval = GaugeMetricFamily(
        "tagledger_poll_interval_seconds", "Each enabled repository's poll interval.", labels=label
    )
    for repository in watched:
        reference = [repository.reference]
        run = snapshot.latest.get(repository.latest_poll)
        for family, field in per_poll:
            if run is not None:
                family.add_metric(reference, getattr(run, field))
        good_at = repository.good_at or repository.created_at
        age.add_metric(reference, max(0.0, (snapshot.now - good_at).total_seconds()))
        interval.add_metric(reference, repository.interval.total_seconds())
    yield from (family for family, _ in per_poll)
    yield age
    yield interval

    remaining = GaugeMetricFamily(
        "tagledger_rate_limit_remaining",
        "The ratelimit-remaining a registry sent in its newest finished poll that carried one.",
        labels=["registry"],
    )
    newest: dict[str, PollRun] = {}
    for repository in snapshot.repositories:
        run = snapshot.latest.get(repository.latest_poll)
        if run is None or run.rate_limit_remaining is None:
            continue
        host = repository.registry.host
        if host not in newest or run.started_at > newest[host].started_at:
            newest[host] = run
    for host, run in sorted(newest.items()):
        remaining.add_metric([host], run.rate_limit_remaining)
    yield remaining


def may_scrape(request) -> bool:
    """The API's readers (a public instance, a signed-in session, an API token), or
    `Authorization: Bearer` with TAGLEDGER_METRICS_TOKEN when that is set."""
    if settings.TAGLEDGER_PUBLIC or request.user.is_authenticated:
        return True
    header = request.headers.get("Authorization", "")
    token = settings.TAGLEDGER_METRICS_TOKEN
    scheme, _, given = header.partition(" ")
    # Bytes, so that any header compares (compare_digest refuses non-ASCII str); a lone surrogate
    # becomes bytes no UTF-8 token can equal.
    given = given.strip().encode("utf-8", "surrogatepass")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode()):
        return True
    try:
        secret = bearer_token(header)
        return secret is not None and ApiToken.objects.authenticate(secret) is not None
    except TokenRefused:
        return False


@require_GET
def metrics(request):
    if not may_scrape(request):
        return HttpResponse(
            "authentication required\n", status=401, content_type="text/plain; charset=utf-8",
            headers={"WWW-Authenticate": 'Bearer realm="tagledger metrics"'},
        )  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)  # a fresh one: nothing of the process's own
    registry.register(DatabaseCollector())
    registry.register(hook_counts.Collector())  # push-event requests: counted in the cache
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
