"""The one query language for digests: what a person may type for one, and which builds it names.

Search, compare and the changelog's `q` read a digest the same way (`pins` needs none of it: a pin
is a whole digest, checked by the reference parser and looked up by equality, many at a time):

- `sha256:<64 hex>` (or sha384, sha512) or bare hex of a whole digest's length: that digest;
- 4 or more hex after `sha256:`: a prefix of a sha256 digest (the algorithm anchors it);
- 4 or more bare hex: a prefix of the hex after the colon, whatever the algorithm (what `docker
  images` shows as IMAGE ID is 12 hex of a config digest). Search alone then looks for 8 or more
  bare hex that start no digest anywhere inside one (`Fragment.infix`), since people paste a
  piece from the middle of a log line.

A whole digest that names no manifest or config may be a layer's: `Layer` finds the builds whose
platforms list it (search only; a GIN index on PostgreSQL, migration 0012).

`parse` reads the text; its `Fragment` hands out a matcher, which says which digests match both
as SQL (a UNION of build ids over the digest columns, for the database) and in Python (which of a
found build's digests matched). `Build.objects.matching(...)` is the queryset verb over it.
"""

import json
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL

from catalog.text import quoted

from .models import Attestation, Build, Platform

MIN_FRAGMENT = 4  # fewer hex digits match a sixteenth of everything or more
MIN_INFIX = 8  # from here an infix is specific enough to mean one build
IMAGE_ID_LENGTH = 12
HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

Kind = Literal["fragment", "digest"]

_ALGORITHM_RE = re.compile(r"(?P<algorithm>sha[0-9]+):(?P<rest>.*)", re.DOTALL | re.IGNORECASE)
_HEX_RE = re.compile(r"[0-9a-fA-F]+")


class InvalidDigest(ValueError):
    """The text is digest syntax (hex, or `algorithm:`) but names no digest; the message says why."""


def image_id(config_digest: str) -> str:
    """What `docker images` shows as IMAGE ID: the first 12 hex of the config digest."""
    return config_digest.partition(":")[2][:IMAGE_ID_LENGTH]


# --- parsing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fragment:
    """A digest or a piece of one, as typed: `algorithm` None for bare hex; `hex` lowercase."""

    algorithm: str | None
    hex: str

    def matcher(self) -> "Exact":
        """A whole digest, or a prefix: with an algorithm, of that algorithm's digests; bare hex,
        a digest of the length's algorithm or a prefix under any algorithm."""
        algorithm = self.algorithm
        if algorithm is None and len(self.hex) in HEX_LENGTHS.values():
            algorithm = next(name for name, length in HEX_LENGTHS.items() if length == len(self.hex))
        if algorithm and len(self.hex) == HEX_LENGTHS[algorithm]:
            return Exact(f"{algorithm}:{self.hex}")
        if algorithm:
            return Prefix(f"{algorithm}:{self.hex}")
        return AnyPrefix(self.hex)

    def infix(self) -> "Contains | None":
        """Where a search looks next when no digest starts with this: inside digests, for bare hex
        long enough to mean one build (and short of a whole digest, which is matched exactly)."""
        if isinstance(self.matcher(), AnyPrefix) and len(self.hex) >= MIN_INFIX:
            return Contains(self.hex)
        return None


def parse(text: str) -> Fragment | None:
    """The digest or fragment `text` is; None when it is not digest syntax at all (neither bare hex
    nor `algorithm:`), so a caller may read it as something else; raises InvalidDigest when it is
    digest syntax that names no digest."""
    algorithm = None
    hex_part = text
    if prefixed := _ALGORITHM_RE.fullmatch(text):
        algorithm, hex_part = prefixed["algorithm"].lower(), prefixed["rest"]
        if algorithm not in HEX_LENGTHS:
            raise InvalidDigest(
                f"unsupported digest algorithm {quoted(algorithm)} (sha256, sha384 or sha512)"
            )
        if not hex_part:
            raise InvalidDigest(f"{quoted(text)} needs hex digits after the colon")
        if not _HEX_RE.fullmatch(hex_part):
            raise InvalidDigest(f"{quoted(text)}: after {algorithm}: only hex digits 0-9 and a-f may follow")
    elif not _HEX_RE.fullmatch(text):
        return None
    hex_part = hex_part.lower()
    longest = HEX_LENGTHS[algorithm] if algorithm else max(HEX_LENGTHS.values())
    if len(hex_part) < MIN_FRAGMENT:
        raise InvalidDigest(
            f"{quoted(text)} is too short: a digest fragment needs at least {MIN_FRAGMENT} hex digits"
        )
    if len(hex_part) > longest:
        raise InvalidDigest(f"{quoted(text)} is longer than a{' ' + algorithm if algorithm else ''} digest")
    return Fragment(algorithm, hex_part)


# --- matching -------------------------------------------------------------------------------------


class Column(NamedTuple):
    """Where a digest can match: the model, its column holding the build id, the digest column."""

    model: type[models.Model]
    build_id: str
    digest: str


# Where a digest can match; `matching()` and the matchers take these.
BUILD = Column(Build, "id", "digest")
PLATFORM = Column(Platform, "build_id", "digest")
CONFIG = Column(Platform, "build_id", "config_digest")
ATTESTATION = Column(Attestation, "build_id", "digest")
EVERYWHERE = (BUILD, PLATFORM, CONFIG, ATTESTATION)

# SQLite's infix indexes (migration 0010): FTS5 trigram tables over the digest columns, by (table,
# column), each kept by triggers named after it. Absent where SQLite has no FTS5 trigram
# tokenizer; then an infix reads every digest.
TRIGRAM_TABLES = {
    ("history_build", "digest"): "history_build_digest_trigram",
    ("history_platform", "digest"): "history_platform_digest_trigram",
    ("history_platform", "config_digest"): "history_platform_config_trigram",
}


class Exact:
    """One digest predicate, both as SQL on a column and in Python on a value."""

    kind: Kind = "digest"
    attestations = True  # whether it looks at attestation digests at all

    def __init__(self, value: str):
        self.value = value

    def sql(self, column: str) -> tuple[str, list[str]]:
        return f"{column} = %s", [self.value]

    def __call__(self, digest: str) -> bool:
        return digest == self.value

    def build_ids(self, *where: Column) -> list[int]:
        """The ids of the builds whose digest in one of the `where` columns matches.

        One UNION of build ids, each part answered by the index on its own column (migration
        0003). `digest matches OR EXISTS (a platform matches)` reads the same but leaves the
        database no index to start from: it tested every build, a second per lookup at 1 M builds.

        Hand-written and run first, because every lookup runs it: as a queryset (three subqueries
        inside the builds query) Django took 2.5 ms to compile it and PostgreSQL 1 ms to plan it,
        a fifth of a lookup (BENCHMARKS.md, Search).
        """
        with connection.cursor() as cursor:
            cursor.execute(*self._union(where))
            return [build_id for (build_id,) in cursor.fetchall()]

    def builds_in(self, *where: Column, field: str = "pk") -> Q:
        """build_ids as a subquery of the query it filters (on `field`, a build id; every digest
        column when `where` names none): one query fewer, for callers that count queries rather
        than milliseconds."""
        union = self._union(where or EVERYWHERE)
        return Q(**{f"{field}__in": RawSQL(*union)})  # noqa: S611 - values are parameters

    def _union(self, where: tuple[Column, ...]) -> tuple[str, list[str]]:
        parts = [self._part(column) for column in where if self.attestations or column != ATTESTATION]
        return " UNION ".join(sql for sql, _ in parts), [value for _, values in parts for value in values]

    def _part(self, column: Column) -> tuple[str, list[str]]:
        where, values = self.sql(_quoted(column.digest))
        table = _quoted(column.model._meta.db_table)  # names from the models; every value is a parameter
        return f"SELECT {_quoted(column.build_id)} FROM {table} WHERE {where}", values  # noqa: S608


class Prefix(Exact):
    kind: Kind = "fragment"

    def sql(self, column: str) -> tuple[str, list[str]]:
        return f"{column} LIKE %s ESCAPE '\\'", [_like(self.value) + "%"]

    def __call__(self, digest: str) -> bool:
        return digest.startswith(self.value)


class AnyPrefix(Exact):
    """Bare hex: a prefix of the hex after the colon, whatever the algorithm.

    The same digests as `contains(":" + hex)` (a digest is `algorithm:hex`, one colon), but as
    prefixes an index can answer; a leading-wildcard LIKE reads every digest.
    """

    kind: Kind = "fragment"

    def __init__(self, hex_part: str):
        super().__init__(tuple(f"{algorithm}:{hex_part}" for algorithm in HEX_LENGTHS))

    def sql(self, column: str) -> tuple[str, list[str]]:
        parts = [Prefix(prefix).sql(column) for prefix in self.value]
        return "(" + " OR ".join(where for where, _ in parts) + ")", [value for _, (value,) in parts]

    def __call__(self, digest: str) -> bool:
        return digest.startswith(self.value)


class Contains(Exact):
    """Hex anywhere inside a digest. PostgreSQL answers the LIKE from pg_trgm indexes (migration
    0003); SQLite from FTS5 trigram tables (migration 0010) where it has them, else by reading
    every digest. Attestation digests have prefix indexes only (migration 0005): an infix would
    read them all, so it leaves them out."""

    kind: Kind = "fragment"
    attestations = False
    use_trigram_tables = True  # False: the LIKE alone, as on a SQLite without FTS5 (tests, benchmarks)

    def sql(self, column: str) -> tuple[str, list[str]]:
        return f"{column} LIKE %s ESCAPE '\\'", ["%" + _like(self.value) + "%"]

    def __call__(self, digest: str) -> bool:
        return self.value in digest

    def _union(self, where: tuple[Column, ...]) -> tuple[str, list[str]]:
        if not (self.use_trigram_tables and _HEX_RE.fullmatch(self.value) and _trigram_tables_ready()):
            return super()._union(where)
        # The FTS5 table finds the few rows holding some trigrams of the fragment; the LIKE that
        # follows is the same predicate as without it, so the index only narrows, never decides.
        trigrams = _spread_trigrams(self.value)
        parts = []
        for column in where:
            if column == ATTESTATION:
                continue
            table = column.model._meta.db_table
            fts = _quoted(TRIGRAM_TABLES[table, column.digest])
            like, values = self.sql(_quoted(column.digest))
            parts.append((
                f"SELECT {_quoted(column.build_id)} FROM {_quoted(table)} "  # noqa: S608 - names from the models
                f"WHERE {_quoted(column.model._meta.pk.column)} IN "
                f"(SELECT rowid FROM {fts} WHERE {fts} MATCH %s) AND {like}",
                [trigrams, *values],
            ))  # fmt: skip
        return " UNION ".join(sql for sql, _ in parts), [value for _, values in parts for value in values]


def _spread_trigrams(hex_part: str, count: int = 3) -> str:
    """An FTS5 query for `count` trigrams of `hex_part`, its first, its last and between them.

    Every digest holding the fragment holds them. One random trigram is in 1.5 % of digests, so
    three leave a handful of rows of a million for the LIKE to check; each more trigram is one more
    list of row ids to read. Measured at 1 M builds, a 12-hex fragment: 2 trigrams 15 ms, 3 7 ms,
    4 8 ms, all 10 (what the table's own LIKE reads) 16 ms (BENCHMARKS.md, Search).
    """
    last = len(hex_part) - 3
    starts = sorted({round(n * last / (count - 1)) for n in range(count)})
    return " AND ".join(f'"{hex_part[start : start + 3]}"' for start in starts)


class Itself(Exact):
    """Builds found some other way (a tag points at them): each matches as itself."""

    def __init__(self):
        super().__init__("")

    def __call__(self, digest: str) -> bool:
        return True


class Layer:
    """A whole layer digest inside a platform's layer list (Platform.layers: [{digest, size,
    media_type}, ...]): the builds that contain that layer. Whole digests only: PostgreSQL answers
    `layers @> '[{"digest": …}]'` from a GIN index (migration 0012), which holds values, not
    prefixes; SQLite reads every platform's list with json_each."""

    kind: Kind = "digest"

    def __init__(self, value: str):
        self.value = value

    def build_ids(self) -> list[int]:
        platform = _quoted(Platform._meta.db_table)
        if connection.vendor == "postgresql":
            sql = f"SELECT DISTINCT build_id FROM {platform} WHERE layers @> %s::jsonb"  # noqa: S608
            values = [json.dumps([{"digest": self.value}])]
        else:
            sql = (
                f"SELECT DISTINCT build_id FROM {platform} WHERE EXISTS "  # noqa: S608 - names from the models
                f"(SELECT 1 FROM json_each({platform}.layers) AS layer "
                # CASE: json_extract of a number or string in a hostile list is an error, not NULL.
                "WHERE CASE WHEN layer.type = 'object' THEN json_extract(layer.value, '$.digest') END = %s)"
            )
            values = [self.value]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return [build_id for (build_id,) in cursor.fetchall()]

    def __call__(self, layers) -> bool:
        """Whether a platform's stored layer list holds this digest (any JSON a registry sent)."""
        return isinstance(layers, list) and any(
            isinstance(layer, dict) and layer.get("digest") == self.value for layer in layers
        )


def _trigram_tables_ready() -> bool:
    """Whether this SQLite database has migration 0010's trigram tables and the triggers that keep
    them: asked every time (a lookup in the schema SQLite keeps in memory, tens of microseconds)
    rather than cached, so a database migrated, or migrated back, under a running process is read
    as it is now, and one whose triggers a table rebuild dropped is not read from a stale index."""
    if connection.vendor != "sqlite":
        return False
    names = [*TRIGRAM_TABLES.values()]
    names += [
        f"{table}_{trigger}"
        for table in TRIGRAM_TABLES.values()
        for trigger in ("insert", "delete", "update")
    ]
    placeholders = ", ".join(["%s"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({placeholders})", names)  # noqa: S608
        return cursor.fetchone()[0] == len(names)


def _like(value: str) -> str:
    """`value` matched literally by LIKE ... ESCAPE '\\' (queries are hex, but say so here too)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)
