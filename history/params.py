"""Values from query strings, paths and forms, read one way by the pages, the feed and the API.

Each parser takes raw text and either returns a value the database takes as it is, or raises
InvalidParameter with a message fit to show (the value quoted, cut, control characters escaped).
They accept ASCII only and a bounded length, because what slips past a looser check fails later,
as a 500, in the database or in `int()`:

- `str.isdigit()` is true for '²', which `int()` refuses; `int()` takes '٣' and fullwidth digits;
- a number past BIGINT is psycopg's NumericValueOutOfRange and SQLite's OverflowError;
- PostgreSQL refuses NUL in text parameters (DataError), and offsets beyond ±15:59 in times;
- `datetime.fromisoformat()` ignores what follows a NUL, and takes `2026-W01` and `20260101`.
"""

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from catalog.text import quoted

MAX_ID = 2**63 - 1  # BigAutoField's range, and SQLite's INTEGER's
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(9998, 12, 31)
MAX_INSTANT = 40  # `2026-11-26T12:00:00.000000+00:00` is 32

_DIGITS_RE = re.compile(r"-?[0-9]{1,19}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The ISO 8601 calendar forms people and `isoformat()` write; `T` or a space between date and time.
_INSTANT_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class InvalidParameter(ValueError):
    """A value names nothing valid; the message says why and quotes it safely."""


def number(raw: str) -> int:
    """A whole number in BIGINT's range, in ASCII digits with an optional minus sign."""
    if not isinstance(raw, str) or not _DIGITS_RE.fullmatch(raw) or not -MAX_ID - 1 <= int(raw) <= MAX_ID:
        raise InvalidParameter(f"{quoted(raw)} is not a whole number")
    return int(raw)


def positive_id(raw: str) -> int:
    """A row id: 1 to MAX_ID, in ASCII digits."""
    if not isinstance(raw, str) or not _DIGITS_RE.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        raise InvalidParameter(f"{quoted(raw)} is not an id (a positive whole number)")
    return int(raw)


def ids(values: Iterable[str], limit: int) -> list[int]:
    """`positive_id` of each of `values`; more than `limit` of them is refused, unread."""
    values = list(values)
    if len(values) > limit:
        raise InvalidParameter(f"at most {limit} ids, not {len(values)}")
    return [positive_id(value) for value in values]


def day(raw: str) -> date:
    """A date, YYYY-MM-DD, between MIN_DATE and MAX_DATE."""
    try:
        if not isinstance(raw, str) or not _DATE_RE.fullmatch(raw):
            raise ValueError
        value = date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"{quoted(raw)} is not a date (YYYY-MM-DD)") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidParameter(f"{raw} is out of range ({MIN_DATE} to {MAX_DATE})")
    return value


def instant(raw: str, *, naive_is_utc: bool = True) -> datetime:
    """An ISO 8601 date and time, in UTC, within MIN_DATE and MAX_DATE.

    A time without an offset is UTC with `naive_is_utc`, refused without. UTC because PostgreSQL
    refuses offsets beyond ±15:59, which `fromisoformat()` takes up to ±23:59."""
    message = f"{quoted(raw)} is not an ISO 8601 date and time, such as 2026-11-26T12:00:00Z"
    if not isinstance(raw, str) or len(raw) > MAX_INSTANT or not _INSTANT_RE.fullmatch(raw):
        raise InvalidParameter(message)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:  # 2026-02-30, 25:00, +24:00
        raise InvalidParameter(message) from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise InvalidParameter(f"{quoted(raw)} needs an offset, such as Z or +01:00")
        moment = moment.replace(tzinfo=UTC)
    # Within a day of the range before moving to UTC: astimezone() overflows past year 9999.
    if not MIN_DATE - timedelta(days=1) <= moment.date() <= MAX_DATE + timedelta(days=1):
        raise InvalidParameter(f"{quoted(raw)} is out of range ({MIN_DATE} to {MAX_DATE})")
    moment = moment.astimezone(UTC)
    if not MIN_DATE <= moment.date() <= MAX_DATE:
        raise InvalidParameter(f"{quoted(raw)} is out of range ({MIN_DATE} to {MAX_DATE})")
    return moment


def flag(raw: str) -> bool:
    """`1` or `0`."""
    if raw not in ("0", "1"):
        raise InvalidParameter(f"{quoted(raw)} is not 1 (include) or 0 (leave out)")
    return raw == "1"


def bounded(raw: str, *, max_length: int, what: str = "the text", empty: str = "") -> str:
    """`raw` stripped (a paste's newline included), if it is a string of at most `max_length`
    characters: what a reader of anything may check before looking at the characters. `empty`:
    the error for a blank one, if blank is not allowed."""
    if not isinstance(raw, str):
        raise InvalidParameter(f"{what} is text, not {type(raw).__name__}")
    if len(raw) > max_length:
        raise InvalidParameter(f"{what} is too long ({len(raw)} characters; at most {max_length})")
    if empty and not raw.strip():
        raise InvalidParameter(empty)
    return raw.strip()


def text(raw: str, *, max_length: int, what: str = "the text") -> str:
    """Free text: bounded(), and no control character (NUL among them)."""
    stripped = bounded(raw, max_length=max_length, what=what)
    if _CONTROL_RE.search(stripped):
        raise InvalidParameter(f"{what} {quoted(stripped)} holds a control character")
    return stripped
