"""A version's digest history: every build, newest first, with the tags it held and when."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch
from django.db.models.functions import Coalesce

from catalog.models import Version
from catalog.tags import Kind, classify

from .models import Build, Platform
from .search import HeldTag, held_tags_of
from .timeline import Timeline, layout

NEWEST_FIRST = (Coalesce("built_at", "first_seen_at").desc(), F("pk").desc())


@dataclass
class BuildRow:
    build: Build
    held: list[HeldTag]
    previous: Build | None  # the build before it in this version's history

    @property
    def timestamp_tag(self) -> str:
        return next((held.tag for held in self.held if classify(held.tag).kind is Kind.TIMESTAMP), "")

    @property
    def last_held(self) -> datetime | None:
        """None while a tag still points at it; otherwise when the last one moved away.

        Its own timestamp tag holds a build forever by design, so it only counts when it is all there is.
        """
        held = [h for h in self.held if classify(h.tag).kind is not Kind.TIMESTAMP] or self.held
        if not held or any(h.until is None for h in held):
            return None
        return max(h.until for h in held)

    @property
    def platforms(self) -> list[Platform]:
        return list(self.build.platforms.all())

    @property
    def size(self) -> int | None:
        """The linux/amd64 image's size, else the first platform's: what `docker pull` would fetch."""
        platforms = self.platforms
        preferred = [p for p in platforms if (p.os, p.architecture) == ("linux", "amd64")] or platforms
        return preferred[0].size if preferred else None


def ordered_builds(version: Version):
    return (
        Build.objects.filter(version=version)
        .prefetch_related(
            Prefetch("platforms", queryset=Platform.objects.order_by("os", "architecture", "variant"))
        )
        .order_by(*NEWEST_FIRST)
    )


def digest_history(version: Version) -> tuple[list[BuildRow], Timeline | None]:
    """Three queries: the builds, their platforms, and the tags they held."""
    builds = list(ordered_builds(version))
    held = held_tags_of(builds)
    rows = [
        BuildRow(build, held[build.pk], builds[index + 1] if index + 1 < len(builds) else None)
        for index, build in enumerate(builds)
    ]
    return rows, layout(held, [build.pk for build in reversed(builds)])
