"""Geometry of the version page's SVG timeline: which tag pointed to which build, over time.

Each bar starts at the best-known moment a tag began pointing to a build: a move a poll saw
(observed), else, for a tag already there when first polled, the time its publisher claims for
the build (its timestamp tag, else its image config's `created`), else when a poll first saw it.
It ends where that tag's next event begins, so a tag's consecutive builds touch and never overlap.
"""

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property

from django.utils import timezone

from .models import HeldTag

LABEL_WIDTH = 170  # room for tag names left of the bars
PLOT_WIDTH = 760
RIGHT_PAD = 10
ROW_HEIGHT = 22
AXIS_HEIGHT = 28
# Older builds cycle through .build-0 … .build-7 in the stylesheet; current builds are .build-current.
COLOURS = 8
TAG_FONT = 11  # px, monospace: the stylesheet's .tag-label
TICK_FONT = 10  # px: the stylesheet's .tick-label
CHAR_WIDTH = 0.62  # a monospace glyph's advance, in ems (a little over Menlo's and DejaVu Sans Mono's 0.60)
TAG_CHARS = int((LABEL_WIDTH - 8 - 4) / (TAG_FONT * CHAR_WIDTH))  # what fits left of the plot
MIN_TICKS, MAX_TICKS = 4, 8
# Reproducible builds set `created` to the epoch (1970) or to zip's epoch (1980): a claim that
# says nothing, and one such build would stretch the axis over half a century.
PLAUSIBLE_SINCE = datetime(1980, 1, 2, tzinfo=UTC)


class Known(StrEnum):
    """How a bar's start is known. Only MOVED and FIRST_SEEN were observed by tagledger."""

    MOVED = "moved"  # a poll saw the tag move here, between not_before and detected_at
    BUILT = "built"  # the build's timestamp tag says so: the publisher's claim
    CREATED = "created"  # the image config's `created` says so: the publisher's claim
    FIRST_SEEN = "first seen"  # the tag was already here when a poll first looked

    @property
    def claimed(self) -> bool:
        return self in (Known.BUILT, Known.CREATED)

    @property
    def source(self) -> str:
        return {
            Known.MOVED: "moved, observed by a poll",
            Known.BUILT: "built, per timestamp tag (claimed by the publisher)",
            Known.CREATED: "created, per image config (claimed by the publisher)",
            Known.FIRST_SEEN: "first seen by a poll (it was there before)",
        }[self]


@dataclass(frozen=True)
class TimelineBuild:
    """What the timeline needs of one build: its times as the publisher claims them, and the
    tags it held (HeldTag, with `not_before` None for a tag's first sighting)."""

    build_id: int
    digest: str
    built_at: datetime | None
    created: datetime | None
    current: bool  # a tag other than its own timestamp tag points to it now
    held: list[HeldTag]


@dataclass(frozen=True)
class Span:
    """One tag's hold on one build, as the table lists it and the bars draw it."""

    tag: str
    build_id: int
    digest: str
    start: datetime
    known: Known
    seen: datetime  # when a poll saw it there: the end of a claimed stretch
    not_before: datetime | None  # for a move: the last poll that saw the tag elsewhere
    until: datetime | None  # None: the tag still points there
    current: bool  # the tag points there now, and the build is current

    @cached_property  # asked by the bar's title and by the table
    def how(self) -> str:
        """How the start is known, in words, for the bar's title and the table."""
        if self.known is Known.MOVED and self.not_before:
            return f"moved between {_minute(self.not_before)} and {_minute(self.start)}, observed by polls"
        if self.known.claimed:
            return f"{self.known.source}; first seen by a poll {_minute(self.seen)}"
        return self.known.source


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    colour: str  # a stylesheet class suffix: "current" or 0 … COLOURS-1
    build_id: int
    title: str
    claimed: bool = False  # the publisher's stretch, before a poll saw the tag there


@dataclass(frozen=True)
class Row:
    tag: str
    label: str  # `tag`, shortened to fit left of the plot; the full name is in a <title>
    y: float
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    at: datetime
    anchor: str = "middle"  # the last tick's label ends at it, so it is never clipped


@dataclass(frozen=True)
class Timeline:
    rows: list[Row]
    ticks: list[Tick]
    spans: list[Span]  # every bar's facts, for the accessible table: tag, then start
    start: datetime
    end: datetime
    width: int
    height: int
    label_width: int = LABEL_WIDTH

    @property
    def period(self) -> str:
        return f"{_minute(self.start)[:16]} to {_minute(self.end)}"

    @property
    def has_claimed(self) -> bool:
        return any(span.known.claimed for span in self.spans)

    @property
    def has_current(self) -> bool:
        return any(span.current for span in self.spans)


def spans_of(builds: list[TimelineBuild]) -> list[Span]:
    """Every (tag, build) hold placed by what is known of its start (see the module docstring)."""
    spans = []
    for build in builds:
        for held in build.held:
            start, known = _start(held, build)
            spans.append(
                Span(
                    held.tag, build.build_id, build.digest, start, known, held.since,
                    held.not_before, held.until, build.current and held.until is None,
                )
            )  # fmt: skip
    return sorted(spans, key=lambda span: (span.tag, span.start, span.build_id))


def _start(held: HeldTag, build: TimelineBuild) -> tuple[datetime, Known]:
    if held.not_before is not None:
        return held.since, Known.MOVED
    # The tag was there before the first poll: the publisher's time is the best guess, as long as
    # it is plausible and not later than a poll saw the tag there (a clock ahead, or a lie).
    for claimed, known in ((build.built_at, Known.BUILT), (build.created, Known.CREATED)):
        if claimed is not None and PLAUSIBLE_SINCE <= claimed < held.since:
            return claimed, known
    return held.since, Known.FIRST_SEEN


def layout(builds: list[TimelineBuild], now: datetime | None = None) -> Timeline | None:
    """Bars for every tag each build held, `builds` oldest first (older builds take the palette
    in that order); a bar whose tag points there now is drawn in the current colour, unless only
    its own timestamp tag still points to that build."""
    now = now or timezone.now()
    spans = spans_of(builds)
    if not spans:
        return None
    start = min(span.start for span in spans)
    end = max(min(span.until or now, now) for span in spans)
    end = max(end, start)
    step, first, last = _axis(start, end)
    total = (last - first).total_seconds()

    def x(moment: datetime) -> float:
        seconds = (min(max(moment, first), last) - first).total_seconds()
        return LABEL_WIDTH + PLOT_WIDTH * seconds / total

    colour = {build.build_id: index % COLOURS for index, build in enumerate(builds)}
    bars: dict[str, list[Bar]] = defaultdict(list)
    for span in spans:
        until = min(span.until or now, now)
        fill = "current" if span.current else str(colour[span.build_id])
        title = (
            f"{span.tag} → {span.digest[:19]}: from {_minute(span.start)} ({span.how}) "
            f"until {'now' if span.until is None else _minute(span.until)}"
        )
        left, right = x(span.start), x(max(until, span.start))
        if span.known.claimed:
            seen = x(min(span.seen, until))
            bars[span.tag].append(Bar(left, max(seen - left, 1.0), fill, span.build_id, title, claimed=True))
            left = seen
        if right - left >= 0.5 or not span.known.claimed:
            bars[span.tag].append(Bar(left, max(right - left, 1.0), fill, span.build_id, title))
    rows = [
        Row(tag, _label(tag), AXIS_HEIGHT + index * ROW_HEIGHT, _no_overlap(bars[tag]))
        for index, tag in enumerate(sorted(bars))
    ]
    ticks = [
        Tick(x(moment), _tick_label(moment, step, index == 0), moment)
        for index, moment in enumerate(_instants(first, last, step))
    ]
    ticks[-1] = Tick(ticks[-1].x, ticks[-1].label, ticks[-1].at, "end")
    return Timeline(
        rows,
        ticks,
        spans,
        first,
        last,
        width=LABEL_WIDTH + PLOT_WIDTH + RIGHT_PAD,
        height=AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 6,
    )


def _no_overlap(bars: list[Bar]) -> list[Bar]:
    """Bars are at least a pixel wide so a short hold stays visible; that pixel may not cover the
    next bar of the row, which starts where it ends."""
    bars = sorted(bars, key=lambda bar: (bar.x, not bar.claimed))
    fitted = []
    for bar, following in zip(bars, [*bars[1:], None], strict=True):
        if following is not None and bar.x + bar.width > following.x:
            bar = Bar(bar.x, max(following.x - bar.x, 0.0), bar.colour, bar.build_id, bar.title, bar.claimed)
        fitted.append(bar)
    return fitted


def _label(tag: str) -> str:
    return tag if len(tag) <= TAG_CHARS else tag[: TAG_CHARS - 1] + "…"


def _minute(moment: datetime) -> str:
    # isoformat and a slice: a page writes ~300 of these, and strftime took five times as long.
    return f"{moment.astimezone(UTC).isoformat(' ', 'minutes')[:16]} UTC"


# --- the axis: even steps on round instants ------------------------------------------------

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
# (seconds, months): fixed steps are whole minutes, hours or days counted from the Unix epoch in
# UTC (so they fall on midnights and whole hours); month steps fall on the first of a month.
# Each step is at most 2.5 times the one before, which is what keeps 4 to 8 ticks on any span.
STEPS = [
    (s, 0)
    for s in (
        _MINUTE, 2 * _MINUTE, 5 * _MINUTE, 10 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE,
        _HOUR, 2 * _HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR,
        _DAY, 2 * _DAY, 3 * _DAY, 7 * _DAY, 14 * _DAY,
    )
] + [(0, m) for m in (1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000)]  # fmt: skip
_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: 7-day steps fall on Mondays


def _axis(start: datetime, end: datetime) -> tuple[tuple[int, int], datetime, datetime]:
    """The finest step that puts at most MAX_TICKS ticks on [start, end] widened to whole steps,
    and that widened span; widened further back when even a minute gives fewer than MIN_TICKS."""
    for step in STEPS:
        first, last = _floor(start, step), _ceil(end, step)
        count = _count(first, last, step)
        if count <= MAX_TICKS:
            break
    while count < MIN_TICKS:
        first = _floor(first - timedelta(seconds=1), step)
        count += 1
    return step, first, last


def _floor(moment: datetime, step: tuple[int, int]) -> datetime:
    seconds, months = step
    moment = moment.astimezone(UTC)
    if seconds:
        offset = (moment - _EPOCH) // timedelta(seconds=seconds)
        return _EPOCH + timedelta(seconds=seconds * offset)
    index = moment.year * 12 + moment.month - 1
    index -= index % months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _ceil(moment: datetime, step: tuple[int, int]) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else _advance(floor, step)


def _advance(moment: datetime, step: tuple[int, int]) -> datetime:
    seconds, months = step
    if seconds:
        return moment + timedelta(seconds=seconds)
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _count(first: datetime, last: datetime, step: tuple[int, int]) -> int:
    """How many ticks from `first` to `last`, both on the step, without walking them."""
    seconds, months = step
    if seconds:
        return (last - first) // timedelta(seconds=seconds) + 1
    return ((last.year - first.year) * 12 + last.month - first.month) // months + 1


def _instants(first: datetime, last: datetime, step: tuple[int, int]) -> list[datetime]:
    instants = [first]
    while instants[-1] < last and len(instants) <= MAX_TICKS * 100:
        instants.append(_advance(instants[-1], step))
    return instants


def _tick_label(moment: datetime, step: tuple[int, int], first: bool) -> str:
    seconds, months = step
    if months >= 12:
        return f"{moment.year}"
    if months:
        return f"{calendar.month_abbr[moment.month]} {moment.year}"
    if seconds >= _DAY:
        return moment.strftime("%Y-%m-%d")
    if first:
        return moment.strftime("%m-%d %H:%M")  # hours need a day: the first tick gives it
    if moment.hour == 0 and moment.minute == 0:
        return moment.strftime("%m-%d")  # midnight: the day, which the hours after it belong to
    return moment.strftime("%H:%M")
