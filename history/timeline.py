"""Geometry of the version page's SVG timeline: which tag pointed to which build, over time."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from .models import HeldTag

LABEL_WIDTH = 170  # room for tag names left of the bars
PLOT_WIDTH = 760
ROW_HEIGHT = 22
AXIS_HEIGHT = 28
COLOURS = 8  # bar colours cycle through .build-0 … .build-7 in the stylesheet


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    colour: int
    build_id: int
    title: str


@dataclass(frozen=True)
class Row:
    tag: str
    y: float
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    rows: list[Row]
    ticks: list[Tick]
    width: int
    height: int
    label_width: int = LABEL_WIDTH


def layout(
    held: dict[int, list[HeldTag]], build_order: list[int], now: datetime | None = None
) -> Timeline | None:
    """Bars for every (tag, build, from, until) in `held`; builds coloured by their `build_order` index."""
    now = now or timezone.now()
    spans = [
        (tag.tag, build_id, tag.since, tag.until or now) for build_id, tags in held.items() for tag in tags
    ]
    if not spans:
        return None
    start = min(since for _, _, since, _ in spans)
    total = max((now - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        return LABEL_WIDTH + PLOT_WIDTH * (moment - start).total_seconds() / total

    colour = {build_id: index % COLOURS for index, build_id in enumerate(build_order)}
    bars: dict[str, list[Bar]] = defaultdict(list)
    for tag, build_id, since, until in spans:
        bars[tag].append(
            Bar(x(since), max(x(until) - x(since), 2.0), colour.get(build_id, 0), build_id,
                f"{tag}: {since:%Y-%m-%d %H:%M} → {'now' if until == now else f'{until:%Y-%m-%d %H:%M}'}")
        )  # fmt: skip
    rows = [Row(tag, AXIS_HEIGHT + index * ROW_HEIGHT, bars[tag]) for index, tag in enumerate(sorted(bars))]
    return Timeline(
        rows,
        _ticks(start, now, x),
        LABEL_WIDTH + PLOT_WIDTH + 10,
        AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 6,
    )


def _ticks(start: datetime, end: datetime, x) -> list[Tick]:
    """Five evenly spaced labels, as precise as the span needs."""
    span = end - start
    fmt = (
        "%Y-%m-%d" if span > timedelta(days=3) else "%m-%d %H:%M" if span > timedelta(hours=1) else "%H:%M:%S"
    )
    return [Tick(x(start + span * step / 4), (start + span * step / 4).strftime(fmt)) for step in range(5)]
