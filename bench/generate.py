"""Fill a database with history at scale, for the search and page benchmarks.

`python -m bench.generate --backend postgres|sqlite [--quick] [--reuse]`

The full size: 200 repositories on three registries, 1 000 000 builds (5 000 per repository),
1 335 000 platforms (every third repository is multi-arch: an index plus linux/amd64 and
linux/arm64; the others are one manifest, whose platform digest is the build's own), so
3 000 000 distinct digests (build, platform and config), 1 020 000 tags and 5 000 000 tag events.

Shapes follow what the poller records from a registry that rebuilds daily: per repository
100 versions (`1.0.0` … `2.4.9`) of 50 builds each, in 10 lines; every build gets its own
timestamp tag (`1.2.3-202401010005`, created once) and moves its version tag, its line tag
(`1.2`), its major tag and `latest` (5 events per build). Repository 000 is a nightly channel:
all of its 5 000 builds belong to the one version `1.0.0`, the version page's worst case.
Digests are random sha256 hex from a seeded generator, so both backends hold the same data.

Rows are made in Python and loaded with COPY (PostgreSQL, foreign-key triggers off) or
`executemany` in one transaction with journal and sync off (SQLite); secondary indexes are
dropped first and rebuilt from their own definitions afterwards, so whatever the migrations
define is what gets measured. The database is kept (`tl_bench_scale`, var/bench/scale.sqlite3;
`--quick`: `tl_bench_quick`, var/bench/quick.sqlite3) with a marker of what it holds: `--reuse`
only migrates it when the marker matches (new indexes are built on the existing rows, timed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_DIR / "var" / "bench"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres:postgres@127.0.0.1:5432")
MARKER = "bench_generated"  # key/value table: the Scale it holds, once complete, and how it was made
SCALE_OF = f"SELECT value FROM {MARKER} WHERE key = 'scale'"  # noqa: S608
RESULT_OF = f"SELECT value FROM {MARKER} WHERE key = 'result'"  # noqa: S608
START = datetime(2024, 1, 1, tzinfo=UTC)
BUILD_EVERY = timedelta(hours=3)
HOSTS = ("docker.io", "ghcr.io", "quay.io")
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# Tables the bulk rows go to: their secondary indexes are rebuilt after the load.
BULK_TABLES = ("history_build", "history_platform", "catalog_tag", "history_tagstate", "history_tagevent")
SEQUENCES = ("catalog_repository", "catalog_line", "catalog_version", "history_build", "history_platform",
             "catalog_tag", "history_tagevent")  # fmt: skip


@dataclass(frozen=True)
class Scale:
    repositories: int = 200
    builds_per_repository: int = 5000  # repository 000 puts them all in one version
    builds_per_version: int = 50
    versions_per_line: int = 10
    lines_per_major: int = 5
    multi_arch_every: int = 3  # repositories 0, 3, 6, ... are multi-arch
    seed: int = 20261126

    @property
    def builds(self) -> int:
        return self.repositories * self.builds_per_repository


FULL = Scale()
QUICK = Scale(repositories=6, builds_per_repository=600)


def log(message: str) -> None:
    print(f"[bench.generate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_url(backend: str, quick: bool) -> str:
    name = "quick" if quick else "scale"
    if backend == "postgres":
        return f"{PG_SERVER}/tl_bench_{name}"
    return f"sqlite:///{BENCH_DIR / f'{name}.sqlite3'}"


def setup_django(backend: str, quick: bool) -> str:
    """Point Django at the benchmark database (before django.setup) and set it up."""
    url = database_url(backend, quick)
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["TAGLEDGER_PUBLIC"] = "true"  # pages without a login
    os.environ.setdefault("TAGLEDGER_LOG_LEVEL", "warning")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagledger.settings")
    import django

    django.setup()
    return url


# --- the rows -------------------------------------------------------------------------------------


@dataclass
class Ids:
    """Next id of each bulk table: rows are written with their ids, so references need no lookups."""

    line: int = 1
    version: int = 1
    build: int = 1
    platform: int = 1
    tag: int = 1
    event: int = 1


def version_name(scale: Scale, repository: int, k: int) -> tuple[str, str, str]:
    """(version, line, major) of build `k` of a repository."""
    if repository == 0:
        return "1.0.0", "1.0", "1"
    index = k // scale.builds_per_version
    line = index // scale.versions_per_line
    major, minor, patch = 1 + line // scale.lines_per_major, line % scale.lines_per_major, index % 10
    return f"{major}.{minor}.{patch}", f"{major}.{minor}", str(major)


def repository_rows(scale: Scale, repository: int, ids: Ids, dt, flag, end: datetime) -> dict[str, list]:
    """Every bulk row of one repository, in table order; `dt`/`flag` encode for the backend."""
    rng = random.Random(scale.seed * 1000 + repository)  # noqa: S311 - test data, not secrets
    hexes = lambda: rng.randbytes(32).hex()  # noqa: E731
    multi = repository % scale.multi_arch_every == 0
    offset = timedelta(seconds=47 * repository)  # repositories are polled at different moments
    rows = {table: [] for table in ("line", "version", *BULK_TABLES)}
    lines, versions, tags = {}, {}, {}  # name -> id
    last = {}  # tag id -> (build id, detected_at): a moved tag's previous build and when it got it
    final = {}  # tag id -> (build id, since)
    base_layers = {}

    def tag_id(name: str, kind: str, version: str, at) -> int:
        if name not in tags:
            tags[name] = ids.tag
            rows["catalog_tag"].append((ids.tag, repository + 1, name, kind, version, "", "", dt(at)))
            ids.tag += 1
        return tags[name]

    def event(tag: int, build: int, at: datetime) -> None:
        previous = last.get(tag)
        kind = "moved" if previous else "created"
        not_before = dt(at - timedelta(minutes=30)) if previous else None
        rows["history_tagevent"].append(
            (ids.event, tag, kind, build, previous[0] if previous else None, dt(at), not_before, None)
        )
        ids.event += 1
        last[tag] = (build, at)
        final[tag] = (build, at)

    for k in range(scale.builds_per_repository):
        version, line, major = version_name(scale, repository, k)
        built = START + BUILD_EVERY * k + timedelta(minutes=(repository * 7) % 60)
        seen = built + timedelta(minutes=5) + offset
        if line not in lines:
            lines[line] = ids.line
            rows["line"].append((ids.line, line))
            ids.line += 1
        if version not in versions:
            versions[version] = ids.version
            rows["version"].append((ids.version, lines[line], version))
            ids.version += 1
        if line not in base_layers:
            base_layers[line] = [(f"sha256:{hexes()}", rng.randint(20, 60) * 1_000_000) for _ in range(2)]
        build_id, digest = ids.build, f"sha256:{hexes()}"
        ids.build += 1
        annotations = {
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.created": str(built),
        }
        rows["history_build"].append(
            (build_id, repository + 1, digest, INDEX if multi else MANIFEST, rng.randint(400, 2000),
             flag(False), versions[version], json.dumps(annotations) if multi else "{}",
             dt(built - timedelta(minutes=2)), dt(built), dt(seen))
        )  # fmt: skip
        arches = (("amd64", ""), ("arm64", "v8")) if multi else (("amd64", ""),)
        for architecture, variant in arches:
            layers = [*base_layers[line], (f"sha256:{hexes()}", rng.randint(1, 30) * 1_000_000)]
            steps = ("ADD rootfs.tar.gz /", f"RUN install app=={version}", f"RUN apt-get upgrade # build {k}")
            env = [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "LANG=C.UTF-8",
                f"APP_VERSION={version}",
                f"BUILD={k}",
            ]
            config = {
                "env": env,
                "labels": {"org.opencontainers.image.version": version, "org.example.revision": hexes()[:40]},
                "entrypoint": ["/usr/local/bin/app"], "cmd": ["serve"], "user": "app", "workdir": "/srv",
                "exposed_ports": ["8080/tcp"], "created": (built - timedelta(minutes=2)).isoformat(),
                "history": [{"created": "", "created_by": s, "comment": "", "empty_layer": False}
                            for s in steps],
            }  # fmt: skip
            layer_rows = [{"digest": d, "size": s, "media_type": LAYER} for d, s in layers]
            rows["history_platform"].append(
                (ids.platform, build_id, "linux", architecture, variant,
                 f"sha256:{hexes()}" if multi else digest, MANIFEST, f"sha256:{hexes()}",
                 sum(size for _, size in layers) + 2000, json.dumps(layer_rows), json.dumps(config),
                 dt(built - timedelta(minutes=2)))
            )  # fmt: skip
            ids.platform += 1
        stamp = f"{version}-{built:%Y%m%d%H%M}"
        event(tag_id(stamp, "timestamp", version, seen), build_id, seen)
        event(tag_id(version, "exact", version, seen), build_id, seen)
        event(tag_id(line, "minor", line, seen), build_id, seen)
        event(tag_id(major, "major", major, seen), build_id, seen)
        event(tag_id("latest", "latest", "", seen), build_id, seen)
    for tag, (build, since) in final.items():
        rows["history_tagstate"].append((tag, build, flag(True), dt(since), dt(end)))
    return rows


COLUMNS = {
    "history_build": "id, repository_id, digest, media_type, size, legacy, version_id, annotations, created, "
    "built_at, first_seen_at",
    "history_platform": "id, build_id, os, architecture, variant, digest, media_type, config_digest, size, "
    "layers, config, created",
    "catalog_tag": "id, repository_id, name, kind, version, variant, subject_digest, created_at",
    "history_tagstate": "tag_id, build_id, present, since, confirmed_at",
    "history_tagevent": "id, tag_id, kind, build_id, previous_build_id, detected_at, not_before, poll_id",
}


# --- loading --------------------------------------------------------------------------------------


def generate(backend: str, scale: Scale) -> dict:
    """Load `scale` into the (freshly migrated, empty) database Django is connected to."""
    from django.db import connection, transaction

    from catalog.models import Line, Registry, Repository, Version

    started = time.perf_counter()
    end = START + BUILD_EVERY * scale.builds_per_repository + timedelta(days=1)
    registries = [Registry.objects.create(host=host) for host in HOSTS]
    for index in range(scale.repositories):
        # Not enabled: a beat started on this database must not try to poll them.
        Repository.objects.create(
            pk=index + 1, registry=registries[index % len(HOSTS)], name=f"bench/app-{index:03d}",
            enabled=False,
        )  # fmt: skip
    loader = _PostgresLoader(connection) if backend == "postgres" else _SqliteLoader(connection)
    dropped = loader.drop_indexes()
    ids, counts = Ids(), dict.fromkeys(BULK_TABLES, 0)
    with transaction.atomic():
        for index in range(scale.repositories):
            rows = repository_rows(scale, index, ids, loader.dt, loader.flag, end)
            Line.objects.bulk_create(
                Line(pk=pk, repository_id=index + 1, variant="", name=name) for pk, name in rows["line"]
            )
            Version.objects.bulk_create(
                Version(pk=pk, repository_id=index + 1, line_id=line, variant="", name=name)
                for pk, line, name in rows["version"]
            )
            for table in BULK_TABLES:
                loader.load(table, rows[table])
                counts[table] += len(rows[table])
            if index % 20 == 19 or index == scale.repositories - 1:
                seconds = time.perf_counter() - started
                log(f"{index + 1}/{scale.repositories} repositories, {counts['history_build']} builds, "
                    f"{counts['history_tagevent']} events, {seconds:.0f} s")  # fmt: skip
    loaded = time.perf_counter() - started
    log(f"rows loaded in {loaded:.0f} s; rebuilding {len(dropped)} indexes")
    indexed = time.perf_counter()
    loader.create_indexes(dropped)
    loader.finish()
    indexes_seconds = time.perf_counter() - indexed
    return {
        "rows": counts,
        "load_seconds": round(loaded, 1),
        "index_seconds": round(indexes_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


class _PostgresLoader:
    def __init__(self, connection):
        self.connection = connection
        connection.ensure_connection()
        self.raw = connection.connection  # psycopg: COPY
        with connection.cursor() as cursor:
            # Generated rows reference each other correctly by construction; checking 9 M foreign
            # keys one row at a time would triple the load time. (Needs a superuser, as here.)
            cursor.execute("SET session_replication_role = replica")

    @staticmethod
    def dt(value: datetime):
        return value

    @staticmethod
    def flag(value: bool):
        return value

    def drop_indexes(self) -> list[tuple[str, str]]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                """SELECT i.indexname, i.indexdef FROM pg_indexes i
                   WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexname::regclass)""",
                [list(BULK_TABLES)],
            )
            dropped = cursor.fetchall()
            for name, _ in dropped:
                cursor.execute(f'DROP INDEX "{name}"')
        return dropped

    def load(self, table: str, rows: list) -> None:
        with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def create_indexes(self, dropped) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for _, definition in dropped:
                cursor.execute(definition)

    def finish(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
            for table in SEQUENCES:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
                )


class _SqliteLoader:
    def __init__(self, connection):
        self.connection = connection
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction; set before
            cursor.execute("PRAGMA journal_mode = OFF")
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA cache_size = -1000000")

    @staticmethod
    def dt(value: datetime) -> str:
        return str(value.astimezone(UTC).replace(tzinfo=None))  # as Django's SQLite backend writes it

    @staticmethod
    def flag(value: bool) -> int:
        return int(value)

    def drop_indexes(self) -> list[tuple[str, str]]:
        """The secondary indexes, and the triggers that keep the FTS5 trigram tables of digests
        (migration 0010): a row at a time they would cost the load more than a rebuild after."""
        with self.connection.cursor() as cursor:
            placeholders = ", ".join("?" * len(BULK_TABLES))
            cursor.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "  # noqa: S608
                f"AND sql IS NOT NULL AND tbl_name IN ({placeholders})",
                list(BULK_TABLES),
            )
            dropped = cursor.fetchall()
            for kind, name, _ in dropped:
                cursor.execute(f'DROP {kind.upper()} "{name}"')
        return [(name, sql) for _, name, sql in dropped]

    def load(self, table: str, rows: list) -> None:
        columns = COLUMNS[table]
        placeholders = ", ".join("?" * len(columns.split(",")))
        raw = self.connection.connection
        raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608

    def create_indexes(self, dropped) -> None:
        with self.connection.cursor() as cursor:
            for _, definition in dropped:
                cursor.execute(definition)
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'")
            for (fts,) in cursor.fetchall():  # external content: the index is read from the rows again,
                for command in ("rebuild", "optimize"):  # then merged, as migration 0010 does
                    cursor.execute(f'INSERT INTO "{fts}" ("{fts}") VALUES (\'{command}\')')  # noqa: S608

    def finish(self) -> None:
        pass


# --- the database ---------------------------------------------------------------------------------


def marker_of(scale: Scale) -> str:
    return json.dumps(asdict(scale), sort_keys=True)


def existing_marker(backend: str, quick: bool) -> str | None:
    """The scale a kept database says it holds completely, or None."""
    if backend == "postgres":
        import psycopg

        try:
            with psycopg.connect(database_url(backend, quick)) as connection:
                row = connection.execute(SCALE_OF).fetchone()
        except psycopg.Error:
            return None
    else:
        path = BENCH_DIR / f"{'quick' if quick else 'scale'}.sqlite3"
        if not path.exists():
            return None
        try:
            with sqlite3.connect(path) as connection:
                row = connection.execute(SCALE_OF).fetchone()
        except sqlite3.Error:
            return None
    return row[0] if row else None


def recreate(backend: str, quick: bool) -> None:
    if backend == "postgres":
        import psycopg

        name = database_url(backend, quick).rsplit("/", 1)[1]
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    else:
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            (BENCH_DIR / f"{'quick' if quick else 'scale'}.sqlite3{suffix}").unlink(missing_ok=True)


def prepare(backend: str, quick: bool, *, reuse: bool) -> dict:
    """Make the benchmark database hold `scale` and be migrated; Django is set up afterwards."""
    scale = QUICK if quick else FULL
    kept = reuse and existing_marker(backend, quick) == marker_of(scale)
    if not kept:
        recreate(backend, quick)
    setup_django(backend, quick)
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_seconds = time.perf_counter() - started
    if kept:
        log(
            f"kept {database_url(backend, quick)} ({scale.builds} builds); migrated in {migrate_seconds:.1f}s"
        )
        with connection.cursor() as cursor:
            cursor.execute(RESULT_OF)
            result = json.loads(cursor.fetchone()[0])
        return {**result, "reused": True, "migrate_seconds": round(migrate_seconds, 1)}
    log(f"generating {scale.builds} builds into {database_url(backend, quick)}")
    result = generate(backend, scale)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if backend == "postgres":
            cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone searches
        result["analyze_seconds"] = round(time.perf_counter() - started, 1)
        cursor.execute(f"CREATE TABLE {MARKER} (key varchar(32) PRIMARY KEY, value text NOT NULL)")
        cursor.execute(
            f"INSERT INTO {MARKER} VALUES ('scale', %s), ('result', %s)",  # noqa: S608
            [marker_of(scale), json.dumps(result)],
        )
    if backend == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode = WAL")
    log(f"generated in {result['total_seconds']} s: {result['rows']}")
    return {**result, "reused": False}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--quick", action="store_true", help="small data for a smoke run")
    parser.add_argument("--reuse", action="store_true", help="keep a database that already holds this scale")
    args = parser.parse_args(argv)
    result = prepare(args.backend, args.quick, reuse=args.reuse)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
