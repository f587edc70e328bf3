"""The parsers of query, path and form values: whatever text comes in, a value the database takes
as it is or InvalidParameter, never another exception; and the API reads numbers as the pages do.
"""

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from hypothesis import example, given
from hypothesis import strategies as st

from catalog.oci.reference import is_valid_tag
from history import params
from history.keyset import Cursor, InvalidCursor, NameCursor
from history.templatetags.tagledger import when
from tests.history.factories import Image

# Text as hostile as a query string can carry: any code point but surrogates, digits of every
# script, numbers past every range, and the characters the parsers' grammars are made of.
TEXT = st.one_of(
    st.text(),
    st.text(alphabet="0123456789-+:.TZ _ \x00²٣\uff11"),  # \uff11: fullwidth 1
    st.integers().map(str),
    st.integers(min_value=2**62, max_value=2**66).map(str),
)
# UTC offsets as far as Python takes them (±23:59): PostgreSQL takes ±15:59.
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
INSTANTS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=OFFSETS)


@given(TEXT)
def test_an_id_is_ascii_digits_within_bigint_or_refused(raw):
    try:
        value = params.positive_id(raw)
    except params.InvalidParameter:
        return
    assert raw.isascii() and raw.isdigit()
    assert 1 <= value <= params.MAX_ID


@given(st.integers())
def test_every_id_in_range_is_read_and_no_other(number):
    if 1 <= number <= params.MAX_ID:
        assert params.positive_id(str(number)) == number
    else:
        with pytest.raises(params.InvalidParameter):
            params.positive_id(str(number))


@pytest.mark.parametrize("raw", ["²", "٣", "\uff11\uff12", " 1", "1 ", "+1", "1_000", "1.0", "0x1", "1\x00"])
def test_what_int_or_isdigit_would_take_is_not_an_id(raw):
    with pytest.raises(params.InvalidParameter, match="is not an id"):
        params.positive_id(raw)


@given(st.lists(TEXT, max_size=5))
def test_ids_are_all_ids_or_refused(values):
    try:
        found = params.ids(values, limit=3)
    except params.InvalidParameter:
        return
    assert len(found) == len(values) <= 3


@given(TEXT)
def test_an_instant_is_aware_utc_within_range_or_refused(raw):
    try:
        moment = params.instant(raw)
    except params.InvalidParameter:
        return
    assert moment.tzinfo is UTC
    assert params.MIN_DATE <= moment.date() <= params.MAX_DATE


@given(INSTANTS)
def test_an_instant_at_any_offset_is_the_same_instant_in_utc(moment):
    assert params.instant(moment.isoformat()) == moment
    assert params.instant(moment.isoformat()).tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        "2026-01-01T00:00:00\x00garbage",  # fromisoformat() stops at the NUL
        "20260101",
        "2026-W01",
        "\u0662\u0660\u0662\u0666-01-01",  # Arabic-Indic digits
        "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00+24:00",
    ],
)
def test_what_fromisoformat_alone_would_take_or_overflow_on_is_refused(raw):
    with pytest.raises(params.InvalidParameter):
        params.instant(raw)


@given(TEXT)
def test_a_day_is_a_date_within_range_or_refused(raw):
    try:
        day = params.day(raw)
    except params.InvalidParameter:
        return
    assert params.MIN_DATE <= day <= params.MAX_DATE


@given(TEXT, st.integers(min_value=0, max_value=50))
def test_free_text_is_bounded_and_holds_no_control_character(raw, limit):
    try:
        text = params.text(raw, max_length=limit)
    except params.InvalidParameter:
        return
    assert len(text) <= limit
    assert not _controls(text)


@given(st.one_of(TEXT, st.binary().map(lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="))))
def test_a_changelog_cursor_names_a_position_the_database_takes_or_is_refused(token):
    try:
        cursor = Cursor.decode(token)
    except InvalidCursor:
        return
    assert cursor.at.tzinfo is UTC
    assert 1 <= cursor.id <= params.MAX_ID


@given(INSTANTS, st.integers(min_value=1, max_value=params.MAX_ID))
def test_a_changelog_cursor_at_any_offset_keeps_its_position_in_utc(moment, pk):
    """PostgreSQL refuses `+23:59` in a row comparison: a cursor carries the instant in UTC."""
    cursor = Cursor.decode(Cursor(moment, pk).encode())
    assert cursor == (moment, pk)
    assert cursor.at.tzinfo is UTC


TAG_NAMES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@given(st.text(min_size=1, max_size=128) | TAG_NAMES)
def test_a_tag_cursor_names_a_tag_or_nothing(name):
    """A page of tags ends at a tag name; anything else (a NUL compared in SQL is PostgreSQL's
    DataError) is a damaged cursor."""
    try:
        cursor = NameCursor.decode(NameCursor(name).encode())
    except InvalidCursor:
        assert not is_valid_tag(name)
        return
    assert cursor.name == name and is_valid_tag(name)


ZONES = ["Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12"]  # far from UTC either way


@given(st.datetimes(timezones=st.just(UTC)), st.sampled_from(ZONES))
@example(datetime.min.replace(tzinfo=UTC), "Etc/GMT+12")
@example(datetime.max.replace(tzinfo=UTC), "Asia/Tokyo")
def test_a_time_shows_in_every_zone_even_at_the_ends_of_the_calendar(moment, zone):
    with django_timezone.override(zone):
        assert moment.isoformat() in when(moment)


def _controls(text: str) -> bool:
    return any(ord(character) < 0x20 or ord(character) == 0x7F for character in text)


# --- the API reads numbers as the pages do --------------------------------------------------------


@pytest.fixture
def repository(db, public):
    return Image("app").repository


@pytest.mark.parametrize("raw", ["²", "٣", "\uff11", " 1", "1_0", "1.0", "+1", "0", "9223372036854775808"])
def test_the_api_reads_ids_and_limits_as_ascii_digits_only(client, repository, raw):
    assert client.get(f"/api/v1/repositories/{raw}/versions").status_code in (400, 404)
    response = client.get(f"/api/v1/repositories/{repository.pk}/events", {"limit": raw})
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("limit: ")


@pytest.mark.parametrize("since", ["20260101", "2026-W01", "2026-01-01T00:00:00\x00", "1700000000"])
def test_the_api_reads_times_as_the_documented_iso_8601_only(client, repository, since):
    response = client.get(f"/api/v1/repositories/{repository.pk}/events", {"since": since})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("since: ")
