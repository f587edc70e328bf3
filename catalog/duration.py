"""Poll intervals as people write them ("90s", "30m", "1h30m", "2d") and back."""

import re
from datetime import timedelta

MIN_INTERVAL = timedelta(minutes=1)
# Longer than a week and a moved tag is found too late to be worth recording when.
MAX_INTERVAL = timedelta(days=7)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = r"(\d{1,6})([smhdw])"
_DURATION_RE = re.compile(rf"(?:{_PART})+")


def parse_interval(text: str) -> timedelta:
    """A poll interval within MIN_INTERVAL..MAX_INTERVAL; ValueError says what is wrong."""
    duration = parse_duration(text)
    if duration < MIN_INTERVAL:
        raise ValueError(f"interval {text!r} is too short: at least {format_duration(MIN_INTERVAL)}")
    if duration > MAX_INTERVAL:
        raise ValueError(f"interval {text!r} is too long: at most {format_duration(MAX_INTERVAL)}")
    return duration


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h30m`, `2d`, `1w`: whole numbers, each followed by a unit."""
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    if len(cleaned) > 40 or not _DURATION_RE.fullmatch(cleaned):
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:40] + "..."
        raise ValueError(
            f"not a duration: {shown}; write a number and a unit s, m, h, d or w, e.g. 90s, 30m, 1h30m, 2d"
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in re.findall(_PART, cleaned))
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """The shortest form parse_duration reads back: 1800s → `30m`, 5400s → `1h30m`."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
