"""The version page's timeline: bars placed by what is known of each build's time, an axis of even
ticks on round instants, everything inside the picture, and the facts in a table as well."""

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from history.models import HeldTag
from history.timeline import (
    CHAR_WIDTH,
    LABEL_WIDTH,
    MAX_TICKS,
    MIN_TICKS,
    PLOT_WIDTH,
    TAG_FONT,
    TICK_FONT,
    Known,
    TimelineBuild,
    layout,
)
from tests.history.factories import Image

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PLOT_END = LABEL_WIDTH + PLOT_WIDTH
EPSILON = 0.01


def build(pk, *held, built_at=None, created=None, current=False) -> TimelineBuild:
    return TimelineBuild(pk, f"sha256:{pk:064x}", built_at, created, current, list(held))


def bars_of(timeline, tag):
    return next(row for row in timeline.rows if row.tag == tag).bars


def spans_of(timeline, tag):
    return [span for span in timeline.spans if span.tag == tag]


def test_a_first_import_places_each_build_at_its_claimed_time_not_the_import():
    imported, now = T0 + timedelta(days=10), T0 + timedelta(days=11)
    builds = [
        build(pk, HeldTag(f"3.14.4-2026110{pk}1200", imported, None), built_at=T0 + timedelta(days=pk))
        for pk in (1, 2, 3)
    ]
    builds[-1].held.append(HeldTag("3.14.4", imported, None))
    timeline = layout(builds, now=now)
    starts = [bars_of(timeline, f"3.14.4-2026110{pk}1200")[0].x for pk in (1, 2, 3)]
    assert starts == sorted(starts) and len(set(starts)) == 3, "each build starts where it was built"
    [span] = spans_of(timeline, "3.14.4")
    assert (span.start, span.known) == (T0 + timedelta(days=3), Known.BUILT)
    claimed, observed = bars_of(timeline, "3.14.4")
    assert claimed.claimed and not observed.claimed, "the claimed stretch is drawn apart"
    assert claimed.x + claimed.width == pytest.approx(observed.x)
    assert "built, per timestamp tag (claimed by the publisher)" in claimed.title


def test_the_image_config_created_time_is_used_when_there_is_no_timestamp_tag():
    imported = T0 + timedelta(days=10)
    timeline = layout([build(1, HeldTag("latest", imported, None), created=T0)], now=imported)
    [span] = timeline.spans
    assert (span.start, span.known) == (T0, Known.CREATED)
    assert "created, per image config" in span.how


@pytest.mark.parametrize(
    "claimed",
    [
        datetime(1970, 1, 1, tzinfo=UTC),  # reproducible builds: SOURCE_DATE_EPOCH=0
        datetime(1980, 1, 1, tzinfo=UTC),  # zip's epoch
        datetime(1, 1, 1, tzinfo=UTC),
        T0 + timedelta(days=20),  # after a poll saw it: a clock ahead, or a lie
        datetime(9999, 12, 31, tzinfo=UTC),
    ],
)
def test_implausible_claimed_times_are_ignored(claimed):
    imported = T0 + timedelta(days=10)
    timeline = layout([build(1, HeldTag("latest", imported, None), built_at=claimed, created=claimed)])
    [span] = timeline.spans
    assert (span.start, span.known) == (imported, Known.FIRST_SEEN)


def test_an_observed_move_ends_one_bar_where_the_next_begins():
    first, moved, now = T0, T0 + timedelta(days=2), T0 + timedelta(days=4)
    builds = [
        build(1, HeldTag("latest", first, moved), built_at=T0 - timedelta(days=1)),
        build(2, HeldTag("latest", moved, None, not_before=moved - timedelta(minutes=5)), current=True),
    ]
    timeline = layout(builds, now=now)
    old, new = spans_of(timeline, "latest")
    assert old.until == new.start == moved and new.known is Known.MOVED
    assert "moved between 2026-11-02 23:55 UTC and 2026-11-03 00:00 UTC" in new.how
    bars = bars_of(timeline, "latest")
    assert [bar.colour for bar in bars] == ["0", "0", "current"], "the current build in its own colour"
    assert bars[1].x + bars[1].width == pytest.approx(bars[2].x)
    assert bars[2].x + bars[2].width == pytest.approx(PLOT_END), "a tag still there runs to now"


def test_a_history_of_seconds_gets_an_axis_of_minutes():
    timeline = layout([build(1, HeldTag("latest", T0, None))], now=T0 + timedelta(seconds=20))
    assert MIN_TICKS <= len(timeline.ticks) <= MAX_TICKS
    assert all(tick.at.second == 0 for tick in timeline.ticks)
    assert timeline.ticks[-1].anchor == "end"


def test_a_long_tag_name_is_shortened_in_the_picture_and_whole_in_its_title_and_table():
    name = "3.14.4-slim-bookworm-with-a-very-long-suffix-" + "x" * 80
    timeline = layout([build(1, HeldTag(name, T0, None))], now=T0 + timedelta(days=1))
    [row] = timeline.rows
    assert row.tag == name and row.label.endswith("…") and name.startswith(row.label[:-1])
    assert timeline.spans[0].tag == name


def test_no_history_no_timeline():
    assert layout([build(1)]) is None


# --- properties of the layout, over any history --------------------------------------------

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
claims = st.none() | st.datetimes(timezones=st.just(UTC))  # what a publisher sends: anything
tag_names = st.text(min_size=1, max_size=140) | st.sampled_from(["latest", "3.14", "<b>&\"'"])
gaps = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400))


@st.composite
def histories(draw):
    """Builds and the tags they held, as TagEvent.held reports them: each tag a run of events at
    increasing times, its first one a first sighting, each ending at the tag's next event."""
    count = draw(st.integers(1, 8))
    builds = {
        pk: build(pk, built_at=draw(claims), created=draw(claims), current=draw(st.booleans()))
        for pk in range(1, count + 1)
    }
    now = draw(moments)
    for tag in draw(st.lists(tag_names, min_size=1, max_size=6, unique=True)):
        at = draw(moments)
        events = []
        for _ in range(draw(st.integers(1, 5))):
            events.append((draw(st.sampled_from(sorted(builds))), at))
            at += draw(gaps)
        now = max(now, at)
        for index, (pk, since) in enumerate(events):
            until = events[index + 1][1] if index + 1 < len(events) else draw(st.none() | st.just(at))
            not_before = None if index == 0 else since - draw(gaps)
            builds[pk].held.append(HeldTag(tag, since, until, not_before))
    return list(builds.values()), now


def text_width(text: str, font: int) -> float:
    return len(text) * font * CHAR_WIDTH


@given(histories())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_ticks_are_between_four_and_eight_evenly_spaced_round_instants(history):
    builds, now = history
    timeline = layout(builds, now=now)
    ticks = timeline.ticks
    assert MIN_TICKS <= len(ticks) <= MAX_TICKS
    assert ticks[0].x == pytest.approx(LABEL_WIDTH) and ticks[-1].x == pytest.approx(PLOT_END)
    assert all(tick.at.second == 0 and tick.at.microsecond == 0 for tick in ticks)
    steps = {later.at - earlier.at for earlier, later in pairwise(ticks)}
    if len(steps) == 1:  # minutes, hours, days, weeks: one length, so one distance apart
        [step] = steps
        gaps = [later.x - earlier.x for earlier, later in pairwise(ticks)]
        assert max(gaps) - min(gaps) < EPSILON
        if step >= timedelta(hours=1):
            assert all(tick.at.minute == 0 for tick in ticks)
        if step >= timedelta(days=1):
            assert all(tick.at.hour == 0 for tick in ticks)
        if step == timedelta(days=7):
            assert all(tick.at.weekday() == 0 for tick in ticks), "weeks start on Mondays"
    else:  # months and years are not of one length: they start on the first at midnight
        assert all((tick.at.day, tick.at.hour, tick.at.minute) == (1, 0, 0) for tick in ticks)
        months = {
            (later.at.year - earlier.at.year) * 12 + later.at.month - earlier.at.month
            for earlier, later in pairwise(ticks)
        }
        assert len(months) == 1
    assert all(earlier.label != later.label for earlier, later in pairwise(ticks))
    if ticks[1].at - ticks[0].at < timedelta(days=1):
        assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", ticks[0].label), "the first tick of hours says the day"


@given(histories())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_every_label_and_bar_is_inside_the_picture_and_bars_of_a_row_never_overlap(history):
    builds, now = history
    timeline = layout(builds, now=now)
    for tick in timeline.ticks:
        width = text_width(tick.label, TICK_FONT)
        left = tick.x - width if tick.anchor == "end" else tick.x - width / 2
        assert left >= 0 and left + width <= timeline.width, tick
    for earlier, later in pairwise(timeline.ticks):
        right_of_earlier = earlier.x + text_width(earlier.label, TICK_FONT) / 2
        left_of_later = later.x - text_width(later.label, TICK_FONT) / (1 if later.anchor == "end" else 2)
        assert right_of_earlier < left_of_later, "tick labels never overlap"
    for row in timeline.rows:
        assert text_width(row.label, TAG_FONT) <= LABEL_WIDTH - 8, row.label
        assert row.y + 22 <= timeline.height
        for bar in row.bars:
            assert bar.x >= LABEL_WIDTH - EPSILON and bar.x + bar.width <= PLOT_END + EPSILON, bar
        for left, right in pairwise(row.bars):
            assert left.x + left.width <= right.x + EPSILON, (left, right)


@given(histories())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_a_tags_spans_follow_each_other_and_claims_only_reach_back_before_a_first_sighting(history):
    builds, now = history
    timeline = layout(builds, now=now)
    for tag in {span.tag for span in timeline.spans}:
        spans = spans_of(timeline, tag)
        for earlier, later in pairwise(spans):
            assert earlier.until is not None and earlier.until <= later.start
        for span in spans:
            assert span.start <= span.seen
            assert span.known.claimed == (span.start < span.seen)
            assert span.known is not Known.MOVED or span.not_before is not None


def test_every_colour_has_aa_contrast_against_the_timelines_white():
    css = (Path(__file__).resolve().parents[2] / "static/css/tagledger.css").read_text()
    section = css[css.index("/* timeline") : css.index("/* end timeline")]
    colours = dict(re.findall(r"\.build-(\w+) \{ fill: (#[0-9a-f]{6})", section))
    assert set(colours) == {"current", *map(str, range(8))}
    for name, colour in colours.items():
        assert contrast(colour, "#ffffff") >= 4.5, (name, colour)


def contrast(one: str, other: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# --- the page -------------------------------------------------------------------------------


@pytest.fixture
def rebuilt(db):
    """3.14.4 imported on its third build: two older builds known only by their timestamp tags."""
    image = Image("demo/python")
    version = image.version("3.14.4")
    imported = timezone.now() - timedelta(hours=1)
    builds = []
    for day in (1, 2, 3):
        made = image.build(version, at=imported, built_at=imported - timedelta(days=4 - day))
        image.tag(f"3.14.4-2026112{day}1200", made, at=imported)
        builds.append(made)
    image.tag("3.14.4", builds[-1], at=imported)
    image.tag("latest-" + "very-long-" * 10, builds[-1], at=imported)
    return image, version, builds


def test_the_page_draws_claimed_times_and_lists_every_bar_in_a_table(client, public, rebuilt):
    _, version, _ = rebuilt
    page = client.get(f"/versions/{version.pk}/").content.decode()
    assert 'role="group" aria-labelledby="timeline-title timeline-desc"' in page
    assert page.count('class="build-current claimed"') == 3, "the current build's three tags, claimed"
    assert "outlined: before a poll saw it" in page, "the legend explains claimed times"
    table = page[page.index("<summary>Timeline as a table") : page.index("</details>")]
    assert table.count("<tr>") == 1 + 5, "a header and one row per tag and build"
    assert "latest-" + "very-long-" * 10 in table, "long names in full"
    assert table.count("built, per timestamp tag (claimed by the publisher)") == 5
    assert "Compare the two ticked builds" in page


def test_a_hostile_tag_name_stays_text_in_the_picture_and_the_table(client, public, rebuilt):
    image, version, builds = rebuilt
    image.tag('<script>alert(1)</script>"&', builds[0], kind="other", version="3.14.4", variant="")
    page = client.get(f"/versions/{version.pk}/").content.decode()
    assert "<script>alert(1)" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;") >= 3, "row label, its title, table"


def test_one_build_has_no_compare_button(client, public, db):
    image = Image("demo/alone")
    image.release("1.0", "", "1.0")
    page = client.get(f"/versions/{image.version('1.0').pk}/").content.decode()
    assert "Compare the two ticked builds" not in page and "data-compare" not in page
