"""How the push-event endpoint answered, counted in the shared cache for /metrics.

The web processes answer and the scrape may land on any of them, so the counts live where they all
see them (Redis in production). They are counters: a cache flush restarts them from zero, which
Prometheus' rate() reads as a reset.
"""

import contextlib

from django.core.cache import cache
from prometheus_client.core import CounterMetricFamily

OUTCOMES = {
    "polled": "202, at least one poll enqueued at once",
    "quiet": "202, no poll at once: no watched repository named, the poll left for the gap's end or "
    "for the running poll, or no push in the event",
    "refused": "400, 413 or 415: a body that is no push event",
    "denied": "404: a token that is neither the hook token nor a repository's",
}


def record(outcome: str) -> None:
    key = _key(outcome)
    cache.add(key, 0, timeout=None)
    # A flush between the two calls (ValueError): this one request goes uncounted.
    with contextlib.suppress(ValueError):
        cache.incr(key)


def counts() -> dict[str, int]:
    found = cache.get_many([_key(outcome) for outcome in OUTCOMES])
    return {outcome: int(found.get(_key(outcome)) or 0) for outcome in OUTCOMES}


def _key(outcome: str) -> str:
    assert outcome in OUTCOMES, outcome
    return f"tagledger:hooks:requests:{outcome}"


class Collector:
    """`tagledger_hook_requests_total{outcome}` for /metrics (tagledger.metrics registers it)."""

    def collect(self):
        family = CounterMetricFamily(
            "tagledger_hook_requests",
            "Requests to /hooks/registry/<token> since the cache was last flushed, by outcome.",
            labels=["outcome"],
        )
        for outcome, count in counts().items():
            family.add_metric([outcome], count)
        yield family
