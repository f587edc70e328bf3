"""Indexes for digest search (history.search) and the version page's pages of builds.

Each backend needs its own kind of index, so they are raw SQL here rather than Meta.indexes
(whose migration state would then differ by backend):

- a digest prefix is `LIKE 'sha256:ab12%'`. PostgreSQL only answers that from a btree in
  the "C" collation or with a pattern opclass (the Meta indexes use the database collation);
  SQLite's LIKE is case-insensitive, so only a NOCASE index can answer it. The platform ones
  carry build_id, so SQLite reads the index alone, also when it scans it for an infix;
- an infix is `LIKE '%ab12cd34%'`: PostgreSQL answers it from pg_trgm GIN indexes (pg_trgm
  is a trusted extension since PostgreSQL 13: the database owner may create it). SQLite has
  no equivalent; it scans the (small, covering) NOCASE indexes instead of the tables;
- the version page goes back through a version's builds newest first, by
  COALESCE(built_at, first_seen_at) then id, one page at a time from a keyset position.

On PostgreSQL each index is built CONCURRENTLY, so polls keep writing builds and platforms while
it builds on a large database (about a minute per million builds on two cores); that cannot run
inside a transaction, hence `atomic = False`. A concurrent build that fails leaves an INVALID
index behind under its name, so each is dropped first if it exists: a re-run starts over rather
than failing on the name. SQLite has no CONCURRENTLY (it locks the file for any write anyway).
"""

from django.db import migrations

# (create, drop) per vendor, in creation order.
STATEMENTS = {
    "postgresql": [
        ("CREATE EXTENSION IF NOT EXISTS pg_trgm", None),  # other apps may use it: never dropped here
        (
            "CREATE INDEX CONCURRENTLY build_digest_like ON history_build (digest varchar_pattern_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS build_digest_like",
        ),
        (
            "CREATE INDEX CONCURRENTLY platform_digest_like ON history_platform (digest varchar_pattern_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS platform_digest_like",
        ),
        (
            "CREATE INDEX CONCURRENTLY platform_config_like ON history_platform "
            "(config_digest varchar_pattern_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS platform_config_like",
        ),
        (
            "CREATE INDEX CONCURRENTLY build_digest_trgm ON history_build USING gin (digest gin_trgm_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS build_digest_trgm",
        ),
        (
            "CREATE INDEX CONCURRENTLY platform_digest_trgm ON history_platform "
            "USING gin (digest gin_trgm_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS platform_digest_trgm",
        ),
        (
            "CREATE INDEX CONCURRENTLY platform_config_trgm ON history_platform "
            "USING gin (config_digest gin_trgm_ops)",
            "DROP INDEX CONCURRENTLY IF EXISTS platform_config_trgm",
        ),
        (
            "CREATE INDEX CONCURRENTLY build_version_newest ON history_build "
            "(version_id, COALESCE(built_at, first_seen_at) DESC, id DESC)",
            "DROP INDEX CONCURRENTLY IF EXISTS build_version_newest",
        ),
    ],
    "sqlite": [
        (
            "CREATE INDEX build_digest_like ON history_build (digest COLLATE NOCASE)",
            "DROP INDEX build_digest_like",
        ),
        (
            "CREATE INDEX platform_digest_like ON history_platform (digest COLLATE NOCASE, build_id)",
            "DROP INDEX platform_digest_like",
        ),
        (
            "CREATE INDEX platform_config_like ON history_platform (config_digest COLLATE NOCASE, build_id)",
            "DROP INDEX platform_config_like",
        ),
        (
            "CREATE INDEX build_version_newest ON history_build "
            "(version_id, COALESCE(built_at, first_seen_at) DESC, id DESC)",
            "DROP INDEX build_version_newest",
        ),
    ],
}


def create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for sql, undo in STATEMENTS.get(schema_editor.connection.vendor, []):
        if postgresql and undo:
            schema_editor.execute(undo)  # the INVALID leftover of a failed concurrent build, if any
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    for _, sql in reversed(STATEMENTS.get(schema_editor.connection.vendor, [])):
        if sql:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("history", "0002_immutable_moved_index"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
