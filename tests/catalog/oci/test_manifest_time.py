"""An image config's time is read as Docker and BuildKit write it, or not at all: never an error."""

from datetime import UTC, datetime

import pytest

from catalog.oci.manifest import parse_time


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-26T12:00:00Z", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        # Go marshals time.Time with nanoseconds; a microsecond is as fine as datetime goes
        ("2026-11-26T12:00:00.123456789Z", datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26T12:00:00.5Z", datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-26T12:00:00.123456789123Z", datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26t12:00:00z", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T14:30:00+02:30", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T02:01:00-09:59", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T14:00:00+0200", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T14:00:00+02", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        # what django.utils.dateparse read too: a space, no seconds, no zone (UTC, as the poll took it)
        ("2026-11-26 12:00:00Z", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T12:00Z", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("2026-11-26T12:00:00", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("1970-01-02T00:00:00Z", datetime(1970, 1, 2, tzinfo=UTC)),
        ("1970-01-02T01:00:00+01:00", datetime(1970, 1, 2, tzinfo=UTC)),
        ("9998-12-31T23:59:59Z", datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_rfc_3339_times_are_read_in_utc(text, moment):
    parsed = parse_time(text)
    assert parsed == moment and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        # out of datetime's range once in UTC, or too near its end to be shown in every zone
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59Z",
        "9998-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+00:01",
        # "not set": Go's zero time (cosign signatures) and the epoch (SOURCE_DATE_EPOCH=0 builds)
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "1970-01-01T23:59:59.999999Z",
        "1970-01-02T00:30:00+01:00",
        # no such moment
        "2026-02-30T12:00:00Z",
        "2026-13-01T12:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T23:60:00Z",
        "2026-11-26T23:59:60Z",
        "2026-11-26T12:00:00+24:00",
        "2026-11-26T12:00:00+01:60",
        "0000-01-01T00:00:00Z",
        # no RFC 3339
        "2026-11-26",
        "26/11/2026 12:00",
        "2026-11-26T12:00:00ZZ",
        "2026-11-26T12:00:00 UTC",
        "2026-11-26T12:00:00Z\n",
        "2026-11-26T12:00:00Z\x00",
        "+2026-11-26T12:00:00Z",
        "20261-11-26T12:00:00Z",
        "２０２６-11-26T12:00:00Z",  # noqa: RUF001 (fullwidth digits: int() reads them, RFC 3339 does not)
        "2026-11-26T12:00:00.Z",
        "2026-11-26T12:00:00." + "1" * 13 + "Z",
        "",
        "2026-11-26T12:00:00Z" + " " * 100_000 + "x",
        # no text
        None,
        1764158400,
        1764158400.5,
        True,
        ["2026-11-26T12:00:00Z"],
        {"time": "2026-11-26T12:00:00Z"},
        b"2026-11-26T12:00:00Z",
    ],
)
def test_anything_else_is_no_time(value):
    assert parse_time(value) is None
