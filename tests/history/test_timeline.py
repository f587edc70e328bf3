"""The version page's timeline geometry: bars span the plot, coloured per build."""

from datetime import UTC, datetime, timedelta

from history.models import HeldTag
from history.timeline import LABEL_WIDTH, PLOT_WIDTH, layout

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_bars_cover_the_plot_from_first_event_to_now():
    now = T0 + timedelta(days=10)
    held = {
        1: [HeldTag("latest", T0, T0 + timedelta(days=5)), HeldTag("3.14.4", T0, T0 + timedelta(days=5))],
        2: [HeldTag("latest", T0 + timedelta(days=5), None)],
    }
    timeline = layout(held, [1, 2], now=now)
    rows = {row.tag: row for row in timeline.rows}
    assert [row.tag for row in timeline.rows] == ["3.14.4", "latest"]
    first, second = sorted(rows["latest"].bars, key=lambda bar: bar.x)
    assert first.x == LABEL_WIDTH and first.width == PLOT_WIDTH / 2
    assert second.x + second.width == LABEL_WIDTH + PLOT_WIDTH, "a current tag runs to now"
    assert (first.colour, second.colour) == (0, 1)
    assert timeline.ticks[0].label == "2026-11-01"


def test_a_history_of_seconds_still_fills_the_plot():
    now = T0 + timedelta(seconds=20)
    timeline = layout({1: [HeldTag("latest", T0, None)]}, [1], now=now)
    [bar] = timeline.rows[0].bars
    assert bar.width == PLOT_WIDTH
    assert timeline.ticks[-1].label == "00:00:20"


def test_no_history_no_timeline():
    assert layout({1: []}, [1]) is None
