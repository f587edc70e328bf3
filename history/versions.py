"""A version's digest history: every build, newest first, with the tags it held and when.

The page shows it PAGE_SIZE builds at a time, continuing from a keyset position like the
changelog: a nightly version gathers thousands of builds, and rendering 5 000 rows (and a
timeline of 5 000 timestamp tags) took seconds and showed nobody anything.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

from django.db.models import F, Prefetch
from django.db.models.functions import Coalesce

from catalog.models import Version
from catalog.tags import Kind, classify

from .keyset import Cursor, RowAfter, RowBefore
from .models import Build, HeldTag, Platform, TagEvent
from .timeline import Timeline, TimelineBuild, layout

# The order of a digest history and the keyset its pages continue from; the
# `build_version_newest` index (migration 0003) holds builds in exactly this order.
POSITION = (Coalesce("built_at", "first_seen_at"), F("pk"))
NEWEST_FIRST = tuple(column.desc() for column in POSITION)
OLDEST_FIRST = tuple(column.asc() for column in POSITION)
# Rows are tall (every tag a build held, a timeline row per timestamp tag): a page of 25 takes
# ~40 ms on the benchmark machine, 50 would pass the 50 ms target (BENCHMARKS.md, Pages).
PAGE_SIZE = 25


@lru_cache(maxsize=4096)
def is_timestamp(tag: str) -> bool:
    """Rows ask this of every tag they held, and the same floating tags recur on every row."""
    return classify(tag).kind is Kind.TIMESTAMP


@dataclass
class BuildRow:
    build: Build
    held: list[HeldTag]
    previous: Build | None  # the build before it in this version's history

    @cached_property
    def timestamp_tag(self) -> str:
        return next((held.tag for held in self.held if is_timestamp(held.tag)), "")

    @cached_property
    def last_held(self) -> datetime | None:
        """None while a tag still points at it; otherwise when the last one moved away.

        Its own timestamp tag holds a build forever by design, so it only counts when it is all there is.
        """
        held = [h for h in self.held if not is_timestamp(h.tag)] or self.held
        if not held or any(h.until is None for h in held):
            return None
        return max(h.until for h in held)

    @cached_property
    def is_current(self) -> bool:
        """A tag points to it now; its own timestamp tag, which always does, does not count."""
        return any(h.until is None and not is_timestamp(h.tag) for h in self.held)

    @property
    def platforms(self) -> list[Platform]:
        return self.build.platform_list  # prefetched by ordered_builds

    @property
    def size(self) -> int | None:
        """The linux/amd64 image's size, else the first platform's: what `docker pull` would fetch."""
        platforms = self.platforms
        preferred = [p for p in platforms if (p.os, p.architecture) == ("linux", "amd64")] or platforms
        return preferred[0].size if preferred else None


# What a row shows of a platform: names, digests and size. Not layer lists and configs (kilobytes
# of JSON each), nor the rest: at 100 rows a page, every value decoded is 200 decoded for nothing.
PLATFORM_FIELDS = ("build_id", "os", "architecture", "variant", "digest", "config_digest", "size")


def ordered_builds(version: Version):
    return (
        Build.objects.filter(version=version)
        .defer("annotations")  # JSON nobody on the page or in the API reads
        .prefetch_related(
            # A plain list: `build.platforms.all()` builds a queryset per row even when prefetched.
            Prefetch(
                "platforms",
                queryset=Platform.objects.order_by("os", "architecture", "variant").only(*PLATFORM_FIELDS),
                to_attr="platform_list",
            )
        )
        .order_by(*NEWEST_FIRST)
    )


@dataclass
class DigestHistory:
    """One page of a version's builds, newest first: the reader behind the version page and the
    API's `…/versions/{version}/builds`. What only the page shows (the timeline, the total) is
    computed when first asked for, so the API never pays for it."""

    version: Version
    rows: list[BuildRow]
    next_cursor: Cursor | None  # where older builds continue; None: the oldest is shown

    @cached_property
    def timeline(self) -> Timeline | None:
        """Which tag pointed to which build of this page, and when (history.timeline)."""
        return layout(
            [
                TimelineBuild(
                    row.build.pk,
                    row.build.digest,
                    row.build.built_at,
                    row.build.created,
                    current=row.is_current,
                    held=row.held,
                )
                for row in reversed(self.rows)  # oldest first: the palette follows the history
            ]
        )

    @cached_property
    def total(self) -> int:
        """Builds of the whole version."""
        return self.version.builds.count()

    @property
    def is_paged(self) -> bool:
        return self.total > len(self.rows)


def position(build: Build) -> Cursor:
    """Where `build` stands in NEWEST_FIRST: the next page starts strictly after it."""
    return Cursor(build.built_at or build.first_seen_at, build.pk)


def digest_history(version: Version, cursor: Cursor | None = None, size: int = PAGE_SIZE) -> DigestHistory:
    """The `size` newest builds after `cursor`, in three queries: the builds (one more, the last
    row's previous), their platforms, and the tags they held."""
    builds = ordered_builds(version)
    if cursor is not None:
        builds = builds.filter(RowBefore(cursor, POSITION))
    builds = list(builds[: size + 1])
    shown = builds[:size]
    held = TagEvent.objects.held(shown)
    rows = [
        BuildRow(build, held[build.pk], builds[index + 1] if index + 1 < len(builds) else None)
        for index, build in enumerate(shown)
    ]
    return DigestHistory(version, rows, position(shown[-1]) if len(builds) > size else None)


def neighbours(build: Build) -> tuple[Build | None, Build | None]:
    """The builds just newer and just older than `build` in its version's history, or None.

    Two index seeks (`build_version_newest`) rather than reading the whole history to find
    its place in it; only pk and digest are loaded, as the build page links them.
    """
    if build.version_id is None:
        return None, None
    siblings = Build.objects.filter(version_id=build.version_id).only("pk", "digest")
    here = position(build)
    newer = siblings.filter(RowAfter(here, POSITION)).order_by(*OLDEST_FIRST).first()
    older = siblings.filter(RowBefore(here, POSITION)).order_by(*NEWEST_FIRST).first()
    return newer, older
