"""Small helpers for the words pages, commands, the API and polls write: counts, digests, times."""

from datetime import datetime

from django.utils import timezone

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def plural(count: int, noun: str) -> str:
    """`1 build`, `3 builds`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def short_digest(digest: str | None) -> str:
    """`sha256:e24bfc0eb1574f…` → `e24bfc0eb157`, the 12 hex docker shows; a text that is no
    digest as it is, and no digest as nothing."""
    return (digest or "").partition(":")[2][:12] or (digest or "")


def format_time(value: datetime) -> str:
    """`2026-11-26 12:00:00 UTC` in the current time zone: what the commands print."""
    return timezone.localtime(value).strftime(TIME_FORMAT)
