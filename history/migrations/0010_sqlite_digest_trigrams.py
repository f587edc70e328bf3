"""SQLite: FTS5 trigram indexes over the digest columns, for a fragment found inside a digest.

Search looks for 8 or more bare hex that start no digest anywhere inside one (history.digests
`Contains`, `LIKE '%ab12cd34%'`). PostgreSQL answers that from the pg_trgm indexes of migration
0003, so this migration does nothing there. SQLite has no such index: it read all 3.7 M digest
values of 1 M builds, 0.6 to 1.3 seconds a search. Here each digest column gets an FTS5 table with the trigram
tokenizer, which finds the few rows holding three trigrams of the fragment:

- external content (`content=` the table itself): the digests are stored once, the FTS table
  holds only the index; `detail=none` keeps just which rows hold a trigram (no positions, 40 %
  of the size), and the LIKE on the row decides (history.digests runs the same LIKE as
  without the index, which only narrows the rows it reads: results are the same either way);
- kept by triggers on insert, delete and update of the digest (or the id, the FTS rowid);
- created only where SQLite has FTS5 with the trigram tokenizer (SQLite 3.34 or later, built
  with FTS5, as Python's own builds are). Elsewhere this migration does nothing and an infix
  search reads every digest as before: history.digests looks for the tables and triggers each
  time, so a later migration that rebuilds history_build or history_platform (Django's SQLite
  ALTER copies the table and drops its triggers) falls back to the LIKE rather than reading a
  stale index; such a migration must make the triggers again and `rebuild` the index.

Building the index on an existing database reads every digest once and holds SQLite's write lock
meanwhile, as every SQLite migration does: 4.5 minutes of CPU at 1 M builds (3.7 M digests; 332 MB
of index), so about 3 seconds at 10 000 (BENCHMARKS.md, Search, session 6).
"""

from django.db import migrations
from django.db.utils import OperationalError

# (FTS table, content table, digest column); history.digests.TRIGRAM_TABLES names the same tables.
INDEXES = [
    ("history_build_digest_trigram", "history_build", "digest"),
    ("history_platform_digest_trigram", "history_platform", "digest"),
    ("history_platform_config_trigram", "history_platform", "config_digest"),
]


def statements(fts: str, table: str, column: str) -> list[str]:
    """The FTS table, its initial contents, and the triggers that keep it (all names are ours)."""
    add = f"INSERT INTO {fts} (rowid, {column}) VALUES (new.id, new.{column});"  # noqa: S608
    remove = f"INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"  # noqa: S608
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='id', "
        "tokenize='trigram', detail=none)",
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",  # noqa: S608 - names are the constants above
        # One b-tree per trigram instead of the dozens of segments a rebuild leaves: a search reads
        # a quarter less and takes half the time (7 ms against 15 at 1 M builds).
        f"INSERT INTO {fts} ({fts}) VALUES ('optimize')",  # noqa: S608
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF id, {column} ON {table} BEGIN {remove} {add} END",
    ]


def trigram_available(connection) -> bool:
    """Whether this SQLite has FTS5 and its trigram tokenizer (a probe table in temp, dropped)."""
    with connection.cursor() as cursor:
        try:
            cursor.execute(
                "CREATE VIRTUAL TABLE temp.tagledger_trigram_probe USING fts5(x, tokenize='trigram')"
            )
        except OperationalError:  # "no such module: fts5", "no such tokenizer: trigram"
            return False
        cursor.execute("DROP TABLE temp.tagledger_trigram_probe")
    return True


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite" or not trigram_available(schema_editor.connection):
        return
    for index in INDEXES:
        for sql in statements(*index):
            schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for fts, _, _ in INDEXES:
        for trigger in ("insert", "delete", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {fts}_{trigger}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {fts}")


class Migration(migrations.Migration):
    dependencies = [("history", "0009_drop_build_version_history")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
