"""The changelog: which tag events a filter selects, newest first, one keyset page at a time.

Shared by the changelog pages and the Atom feed, so both read the same query parameters:

- `repository`, `line`, `version`: ids; `line`/`version` match an event on either side
  (a move out of 3.14.4 belongs to 3.14.4's history as much as the move into 3.14.5);
- `tag`: an exact tag name; `kind`: one of TagEvent.Kind;
- `since`, `until`: dates (YYYY-MM-DD, both inclusive, in TIME_ZONE); the JSON API passes
  instants instead (`since` inclusive, `until` exclusive);
- `q`: part of a tag name, or a digest prefix (bare hex or `sha256:…`) of either side;
- `poll`: the events one poll wrote (an import's rows: the link its collapsed row gives);
- `artifacts`: `1` to include artifact tags (cosign `sha256-….sig|.att|.sbom`, the referrers
  fallback `sha256-…`), left out otherwise: they belong on the build they sign (its page lists
  them), and one signing run would otherwise bury every real move of the day;
- `cursor`: where the previous page ended, opaque to readers.

Pages continue strictly after a (detected_at, id) position rather than skipping rows, so the
hundredth page costs what the first does and events arriving meanwhile never shift a page.

A repository's import (its first poll: a first sighting of every tag, thousands at once) is one
row on the pages, the feed and the home page: `page(collapse_imports=True)` keeps only the one
event of each import that carries `imported_tags`, a plain filter that the partial index
`event_collapsed` answers in the same (detected_at, id) order, so cursors stay the same. A view
narrowed to tags (a tag, a search, a line or version, a poll) shows each first sighting: that is
what was asked about. The JSON API keeps every row, each with its `imported` flag.

Known cost: events have no repository column, so one repository's collapsed changelog walks
`event_collapsed` through every repository's rows until it has a page of its own. A repository
whose rows are nearly all its import (many tags, few changes since) has fewer than a page, and
the walk reads the whole index: 0.16-0.39 s at 400 000 events on PostgreSQL 15, where the
uncollapsed walk stopped within its import (0.3 ms). A `repository` column on TagEvent with an
index (repository, -detected_at, -id) under the same condition would make it a seek.
"""

import re
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import Tag
from catalog.oci.reference import is_valid_tag
from catalog.tags import Kind
from catalog.text import quoted

from . import digests, params
from .keyset import Cursor, InvalidCursor, RowBefore
from .models import TagEvent, with_builds
from .supply_chain import signing_changes

PAGE_SIZE = 50
MAX_SEARCH = 135  # the longest digest we store

_SEARCH_RE = re.compile(r"[A-Za-z0-9_.:-]+")


class InvalidFilter(ValueError):
    """Some parameters name nothing valid; `errors` says which and why, one message each."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ChangelogFilter:
    """What a reader narrowed the changelog to; every field empty selects everything."""

    repository: int | None = None
    line: int | None = None
    version: int | None = None
    tag: str = ""
    kind: str = ""
    # Dates from a query (whole days in TIME_ZONE, both inclusive), or instants from the API
    # (since inclusive, until exclusive): one filter, whichever bound a door takes.
    since: date | datetime | None = None
    until: date | datetime | None = None
    q: str = ""
    poll: int | None = None
    artifacts: bool = False

    @classmethod
    def from_query(cls, params) -> "ChangelogFilter":
        """Parse a QueryDict (or any mapping of strings); raises InvalidFilter listing every bad value."""
        values, errors = {}, {}
        for field in fields(cls):
            raw = params.get(field.name, "")
            raw = raw.strip() if isinstance(raw, str) else ""
            if not raw:
                continue
            try:
                values[field.name] = _PARSERS[field.name](raw)
            except ValueError as error:
                errors[field.name] = str(error)
        if not errors and values.get("since") and values.get("until") and values["since"] > values["until"]:
            errors["until"] = "must not be before since"
        if errors:
            raise InvalidFilter(errors)
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        """The non-empty fields as query parameters: links to further pages and to the feed keep them."""
        return {
            name: _query_value(value)
            for name, value in asdict(self).items()
            if value not in (None, "") and value is not False
        }

    @property
    def collapses_imports(self) -> bool:
        """Whether an import may show as one row: not when the view is narrowed to some tags (a
        tag, a search, a line or a version: the one row of an import may be none of theirs) or
        to one poll (asked to see its rows)."""
        return not (self.tag or self.q or self.line or self.version or self.poll)

    def events(self, *, collapse_imports: bool = False) -> QuerySet:
        """The matching events, newest first, with their tags in the same query (page() adds the
        builds); `collapse_imports`: each import as its one row, where `collapses_imports`."""
        events = TagEvent.objects.newest_first()
        if collapse_imports and self.collapses_imports:
            # The index predicate of `event_collapsed`, as written there, so PostgreSQL can use it.
            events = events.filter(Q(imported=False) | Q(imported_tags__isnull=False))
        if self.repository:
            events = events.filter(tag__repository_id=self.repository)
        if self.line:
            events = events.filter(
                Q(build__version__line_id=self.line) | Q(previous_build__version__line_id=self.line)
            )
        if self.version:
            events = events.filter(
                Q(build__version_id=self.version) | Q(previous_build__version_id=self.version)
            )
        if self.tag:
            events = events.filter(tag__name=self.tag)
        if self.kind:
            events = events.filter(kind=self.kind)
        if self.since:
            events = events.filter(detected_at__gte=_from(self.since))
        if self.until:
            events = events.filter(detected_at__lt=_before(self.until))
        if self.q:
            events = events.filter(_search(self.q))
        if self.poll:
            events = events.filter(poll_id=self.poll)
        if not self.artifacts:
            events = without_artifacts(events, self.repository)
        return events


def without_artifacts(events: QuerySet, repository: int | None = None) -> QuerySet:
    """`events` less those of artifact tags; `repository` narrows the tags looked at to its own.

    A semi-join on the tags rather than a filter on the joined tag row. Artifact tags outnumber
    the others (one or more per build, kept for good), and PostgreSQL, estimating from tag rows,
    took a repository whose events are all artifacts (a cosign COSIGN_REPOSITORY) for one with
    a few to show and walked all of event_changelog to find none: 4.5 s at 3 M events, against
    8 ms for the semi-join on that repository's own real tags. Without a repository the walk of
    event_changelog stays, at one primary-key probe of the tag per event read.
    """
    tags = Tag.objects.exclude(kind=Kind.ARTIFACT)
    if repository:
        tags = tags.filter(repository_id=repository)
    return events.filter(tag__in=tags)


FIELDS = [field.name for field in fields(ChangelogFilter)] + ["cursor"]


def parse(params) -> tuple[ChangelogFilter, "Cursor | None"]:
    """The filter and the cursor `params` name; raises InvalidFilter listing every bad value of both."""
    errors = {}
    try:
        changelog = ChangelogFilter.from_query(params)
    except InvalidFilter as invalid:
        errors.update(invalid.errors)
    token = params.get("cursor", "")
    cursor = None
    if token:
        try:
            cursor = Cursor.decode(token)
        except InvalidCursor as invalid:
            errors["cursor"] = str(invalid)
    if errors:
        raise InvalidFilter(errors)
    return changelog, cursor


class Page(NamedTuple):
    events: list[TagEvent]
    next_cursor: Cursor | None  # None: this is the last page


def page(
    changelog: ChangelogFilter,
    cursor: Cursor | None = None,
    size: int = PAGE_SIZE,
    *,
    collapse_imports: bool = False,
) -> Page:
    """The `size` newest matching events after `cursor` (from the newest when None), in one query.

    `collapse_imports` (the pages, the feed, home): an import is its one row, whose
    `import_size` is the number of tags it imported (None on every other row, and on every row
    of a page that does not collapse). Each row's `signing` flags a move from a signed build to
    an unsigned one, or to another signer (history.supply_chain.signing_changes: one query more
    when the page has a move)."""
    collapsed = collapse_imports and changelog.collapses_imports
    events = changelog.events(collapse_imports=collapsed)
    if cursor is not None:
        events = events.filter(RowBefore(cursor))
    rows = list(events[: size + 1])
    more = len(rows) > size
    rows = with_builds(rows[:size])
    # Read now, not stored on the event: signatures often come after the push.
    signing = signing_changes(rows)
    for row in rows:
        row.signing = signing.get(row.pk)
        row.import_size = row.imported_tags if collapsed else None
        if row.import_size is not None:
            row.import_query = urlencode(imported_rows(row).as_query())
    return Page(rows, Cursor(rows[-1].detected_at, rows[-1].pk) if more else None)


def imported_rows(event: TagEvent) -> ChangelogFilter:
    """The filter that lists every row of the import `event` stands for: what its poll wrote,
    artifact tags included, since its count includes them. (A poll row deleted since: the
    repository's changelog, the nearest that is left.)"""
    if event.poll_id is None:
        return ChangelogFilter(repository=event.tag.repository_id)
    return ChangelogFilter(repository=event.tag.repository_id, poll=event.poll_id, artifacts=True)


# --- parsing ------------------------------------------------------------------------------------


def _tag(raw: str) -> str:
    if not is_valid_tag(raw):
        raise ValueError(
            f"{quoted(raw)} is not a tag name (up to 128 letters, digits, _ . -, not starting with . or -)"
        )
    return raw


def _kind(raw: str) -> str:
    if raw not in TagEvent.Kind.values:
        raise ValueError(f"{quoted(raw)} is not an event kind ({', '.join(TagEvent.Kind.values)})")
    return raw


def _search_text(raw: str) -> str:
    if len(raw) > MAX_SEARCH or not _SEARCH_RE.fullmatch(raw):
        raise ValueError(
            f"{quoted(raw)}: search for part of a tag name or a digest prefix "
            f"(up to {MAX_SEARCH} letters, digits and _ . : -)"
        )
    _digest_matcher(raw)  # `sha256:xyz` is a bad digest here as in search: say so rather than find nothing
    return raw


_PARSERS = {
    "repository": params.positive_id,
    "line": params.positive_id,
    "version": params.positive_id,
    "tag": _tag,
    "kind": _kind,
    "since": params.day,
    "until": params.day,
    "q": _search_text,
    "poll": params.positive_id,
    "artifacts": params.flag,
}


def _query_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value.isoformat() if isinstance(value, date) else str(value)


def _search(text: str) -> Q:
    """A tag name containing `text`, or the build on either side named by it as search names a
    build by its own digest: that digest, or a prefix of it (history.digests; never an infix)."""
    condition = Q(tag__name__icontains=text)
    if matcher := _digest_matcher(text):
        condition |= matcher.builds_in(digests.BUILD, field="build")
        condition |= matcher.builds_in(digests.BUILD, field="previous_build")
    return condition


def _digest_matcher(text: str) -> digests.Exact | None:
    """The digest or prefix `text` names; None when it can only be part of a tag name. Bare hex too
    short or too long for a digest is that (`beef`, `abc`), but `sha256:…` is a digest or an error."""
    try:
        fragment = digests.parse(text)
    except digests.InvalidDigest:
        if ":" in text:  # an algorithm: tag names hold no colon, so it is meant as a digest
            raise
        return None
    return fragment.matcher() if fragment else None


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _from(bound: date | datetime) -> datetime:
    """Where `since` starts: the start of its day, or the instant itself."""
    return bound if isinstance(bound, datetime) else _start_of(bound)


def _before(bound: date | datetime) -> datetime:
    """Where `until` ends (exclusive): the end of its day, or the instant itself."""
    return bound if isinstance(bound, datetime) else _start_of(bound + timedelta(days=1))
