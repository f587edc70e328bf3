"""Keyset pages: a page ends at a row's position, and the next page starts strictly after it.

Pages continue from a position rather than skipping rows, so the hundredth page costs what the
first does and rows arriving meanwhile never shift a page. Positions travel in links as opaque
tokens; a token that encode() did not produce is InvalidCursor, never a 500.
"""

import base64
import binascii
import re
from datetime import datetime
from typing import NamedTuple

from django.db.models import BooleanField, F, Func, Value

from catalog.oci.reference import is_valid_tag

from . import params

MAX_TOKEN = 200
BAD_CURSOR = "this page link is damaged or was edited: start again from the first page"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")


class InvalidCursor(ValueError):
    """Any token encode() did not produce; one message for every list."""

    def __init__(self):
        super().__init__(BAD_CURSOR)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(token: object) -> str:
    if not isinstance(token, str) or len(token) > MAX_TOKEN or not _TOKEN_RE.fullmatch(token):
        raise InvalidCursor
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise InvalidCursor from None


class Cursor(NamedTuple):
    """The last row of a page in a (moment, id) order: events by detected_at, builds by when built."""

    at: datetime
    id: int

    def encode(self) -> str:
        return _encode(f"{self.at.isoformat()}|{self.id}")

    @classmethod
    def decode(cls, token: object) -> "Cursor":
        """The position `token` names; raises InvalidCursor for anything encode() did not produce."""
        try:
            moment, pk = _decode(token).split("|")
            # In UTC: PostgreSQL refuses the offsets beyond ±15:59 that isoformat() reads.
            return cls(params.instant(moment, naive_is_utc=False), params.positive_id(pk))
        except ValueError:  # InvalidParameter and a missing "|" are ValueErrors too
            raise InvalidCursor from None


class NameCursor(NamedTuple):
    """The last tag of a page of tags by name: the next page starts strictly after the name."""

    name: str

    def encode(self) -> str:
        return _encode(self.name)

    @classmethod
    def decode(cls, token: object) -> "NameCursor":
        name = _decode(token)
        # Only a tag name can end a page (a NUL compared in SQL is PostgreSQL's DataError).
        if not is_valid_tag(name) or cls(name).encode() != token:
            raise InvalidCursor
        return cls(name)


class RowBefore(Func):
    """`(detected_at, id) < (%s, %s)`: one row comparison, which an index on those columns
    answers as a range scan starting right at the cursor; the equivalent `a < x OR (a = x AND
    b < y)` is a filter the database would check row by row from the newest row on.

    `columns` names another (moment, id) order, as the version page's pages of builds do; the
    position may also be expressions, such as OuterRefs to the row of an outer query."""

    output_field = BooleanField()
    conditional = True
    comparison = "<"

    def __init__(self, cursor: Cursor | tuple, columns: tuple = ("detected_at", "id")):
        columns = [F(column) if isinstance(column, str) else column for column in columns]
        position = [value if hasattr(value, "resolve_expression") else Value(value) for value in cursor]
        super().__init__(*columns, *position)

    def as_sql(self, compiler, connection, **extra):
        parts, params = [], []
        for expression in self.source_expressions:
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        return "({}, {}) {} ({}, {})".format(*parts[:2], self.comparison, *parts[2:]), params


class RowAfter(RowBefore):
    """`(…) > (%s, %s)`: the rows after a position, newer in a newest-first order."""

    comparison = ">"
