"""One tag's history: every digest it held, newest first, a keyset page at a time (Quay's tag history).

The reader behind the tag page and the API's `…/tags/{name}/history`. Each row is one event of
the tag (a TagEvent: rows grow with changes, never with polls) and lasts until the tag's next
event; a deletion or an untracking is a row with no build, so the gaps show as such.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.db.models import OuterRef, Subquery

from catalog.models import Repository, Tag
from catalog.oci.reference import is_valid_tag
from catalog.tags import Kind, classify

from .keyset import Cursor, RowAfter, RowBefore
from .models import Build, TagEvent, TagState, with_builds
from .supply_chain import signing_changes
from .versions import is_timestamp

# A row is short (a digest, two times, a version): 50 a page, as the other lists.
PAGE_SIZE = 50
MAX_PAGE = 100


@dataclass
class Period:
    """Where the tag pointed from one event until the next: `build` None while deleted or untracked."""

    event: TagEvent
    until: datetime | None  # None: it still does
    timestamp_tag: str  # "" when the build has none
    pin: str  # `registry/name:tag@digest`, the reference that pulls exactly this build; "" without one

    @property
    def build(self) -> Build | None:
        return self.event.build

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def since(self) -> datetime:
        return self.event.detected_at

    @property
    def not_before(self) -> datetime | None:
        return self.event.not_before

    @property
    def previous(self) -> Build | None:
        """The build the tag held before, when it differs from this one: what to compare with."""
        previous = self.event.previous_build
        if previous is None or self.build is None or previous.pk == self.build.pk:
            return None
        return previous

    @property
    def is_first_sighting(self) -> bool:
        return self.event.kind == TagEvent.Kind.CREATED


@dataclass
class TagHistory:
    tag: Tag
    rows: list[Period]
    next_cursor: Cursor | None  # where older events continue; None: the first sighting is shown

    @cached_property
    def kind(self) -> Kind:
        return classify(self.tag.name).kind

    @cached_property
    def state(self) -> TagState | None:
        """Where the tag points now (loaded with the tag by `find`); None: never seen."""
        try:
            return self.tag.state
        except TagState.DoesNotExist:
            return None


def find(repository: Repository | int, name: object) -> Tag | None:
    """The tag `name` of `repository` with its repository, registry and current state, or None: a
    name outside the tag grammar names nothing, and is never sent to the database."""
    if not is_valid_tag(name):
        return None
    return (
        Tag.objects.select_related("repository__registry", "state__build__version")
        .filter(repository=repository, name=name)
        .first()
    )


def tag_history(tag: Tag, cursor: Cursor | None = None, size: int = PAGE_SIZE) -> TagHistory:
    """The `size` newest events of `tag` after `cursor`, in four queries whatever `size`: the events
    with each one's end (the next event: one seek in `event_tag_timeline`, as TagEventQuerySet.held
    does), their builds with versions (with_builds), those builds' timestamp tags, and their
    signatures for each move's `signing` flag (history.supply_chain.signing_changes)."""
    later = TagEvent.objects.filter(tag=OuterRef("tag")).filter(
        RowAfter((OuterRef("detected_at"), OuterRef("pk")))
    )
    events = (
        TagEvent.objects.filter(tag=tag)
        .annotate(until=Subquery(later.order_by("detected_at", "pk").values("detected_at")[:1]))
        .order_by("-detected_at", "-pk")
    )
    if cursor is not None:
        events = events.filter(RowBefore(cursor))
    found = list(events[: size + 1])
    shown = with_builds(found[:size])
    signing = signing_changes(shown)
    for event in shown:
        event.signing = signing.get(event.pk)
    stamps = _timestamp_tags({event.build_id for event in shown if event.build_id})
    named = f"{tag.repository.reference}:{tag.name}"
    rows = [
        Period(
            event,
            event.until,
            stamps.get(event.build_id, ""),
            f"{named}@{event.build.digest}" if event.build else "",
        )
        for event in shown
    ]
    last = shown[-1] if shown else None
    return TagHistory(tag, rows, Cursor(last.detected_at, last.pk) if len(found) > size else None)


def _timestamp_tags(build_ids: set[int]) -> dict[int, str]:
    """{build id: the first (by name) of the tags that ever pointed at it that is a timestamp tag}.

    Classified here rather than read from `Tag.kind`, as the version page does, so both pages
    name the same tag for a build."""
    if not build_ids:
        return {}
    found: dict[int, str] = {}
    pairs = (
        TagEvent.objects.filter(build__in=build_ids)
        .order_by("build_id", "tag__name")
        .values_list("build_id", "tag__name")
        .distinct()
    )
    for build_id, name in pairs:
        if build_id not in found and is_timestamp(name):
            found[build_id] = name
    return found
