"""A fragment found inside a digest: on SQLite through FTS5 trigram tables (migration 0010), with
exactly the builds the LIKE over every digest finds, and that LIKE again where the tables are not.

The suite runs on PostgreSQL, whose pg_trgm indexes need no test of their own here (the LIKE is
the same); the SQLite tests below run there through `test_the_sqlite_tests_pass_on_sqlite`, in a
pytest of their own on a SQLite database.
"""

import importlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository
from history import digests
from history.models import Build, Platform
from history.search import lookup

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = importlib.import_module("history.migrations.0010_sqlite_digest_trigrams")
ON_SQLITE = connection.vendor == "sqlite"
sqlite_only = pytest.mark.skipif(not ON_SQLITE, reason="runs on SQLite: test_the_sqlite_tests_pass_on_sqlite")


@pytest.mark.skipif(ON_SQLITE, reason="this is the SQLite run")
def test_the_sqlite_tests_pass_on_sqlite(tmp_path):
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'tagledger.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=110,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    # Every SQLite test ran there; only this one, which starts them, was skipped.
    assert " passed" in summary and "1 skipped" in summary and "failed" not in summary, summary


# --- on SQLite ------------------------------------------------------------------------------------

HEX = "0a"  # two hex digits: 8 of them in a row occur in a quarter of random digests, so fragments match


def repository() -> Repository:
    registry, _ = Registry.objects.get_or_create(host="registry.test")
    return Repository.objects.get_or_create(registry=registry, name="app")[0]


def store(repo: Repository, rows: list[tuple[str, list[tuple[str, str]]]]) -> list[Build]:
    """Builds with the given digests, each with its (platform digest, config digest) pairs."""
    start = datetime(2026, 11, 30, tzinfo=UTC)
    builds = Build.objects.bulk_create(
        Build(repository=repo, digest=digest, media_type="application/vnd.oci.image.index.v1+json",
              size=1, first_seen_at=start + timedelta(minutes=n))
        for n, (digest, _) in enumerate(rows)
    )  # fmt: skip
    Platform.objects.bulk_create(
        Platform(build=build, os="linux", architecture=f"arch{k}", digest=digest, config_digest=config,
                 media_type="application/vnd.oci.image.manifest.v1+json")
        for build, (_, platforms) in zip(builds, rows, strict=True)
        for k, (digest, config) in enumerate(platforms)
    )  # fmt: skip
    return builds


def found(fragment: str, *, trigrams: bool) -> list[int]:
    infix = digests.parse(fragment).infix()
    infix.use_trigram_tables = trigrams
    return sorted(infix.build_ids(*digests.EVERYWHERE))


def expected(fragment: str) -> list[int]:
    """What `inside a digest` means, in Python over every digest."""
    return sorted(
        build.pk
        for build in Build.objects.prefetch_related("platforms")
        if any(fragment in digest for digest in [build.digest, *_platform_digests(build)])
    )


def _platform_digests(build: Build) -> list[str]:
    return [
        digest for platform in build.platforms.all() for digest in (platform.digest, platform.config_digest)
    ]


def read_through_trigrams(fragment: str) -> bool:
    sql, params = digests.parse(fragment).infix()._union(digests.EVERYWHERE)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    return "VIRTUAL TABLE INDEX" in plan


hex_digest = st.builds(
    lambda algorithm, digits: f"{algorithm}:{digits}",
    st.sampled_from(["sha256", "sha512"]),
    st.integers(64, 64).flatmap(lambda n: st.text(HEX, min_size=n, max_size=n)),
)
build_rows = st.lists(
    st.tuples(hex_digest, st.lists(st.tuples(hex_digest, hex_digest), max_size=3)),
    min_size=1,
    max_size=12,
    unique_by=lambda row: row[0],
)


@sqlite_only
@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=build_rows, data=st.data())
def test_an_infix_finds_the_same_builds_through_the_trigram_tables_as_without(rows, data):
    assert digests._trigram_tables_ready()
    Build.objects.all().delete()  # each example starts empty; the delete triggers keep the index
    builds = store(repository(), rows)
    if data.draw(st.booleans()):  # an updated digest moves in the index too
        builds[0].digest = "sha256:" + data.draw(st.text(HEX, min_size=64, max_size=64))
        builds[0].save(update_fields=["digest"])
    if data.draw(st.booleans()):  # and a deleted platform leaves it
        Platform.objects.filter(pk__in=Platform.objects.filter(build__in=builds).values("pk")[:1]).delete()
    # fragments of the digests stored now, and of those updated or deleted away
    every = [
        digest for digest, platforms in rows for pair in [(digest, digest), *platforms] for digest in pair
    ]
    every += [digest for pair in Platform.objects.values_list("digest", "config_digest") for digest in pair]
    every += list(Build.objects.values_list("digest", flat=True))
    source = data.draw(st.sampled_from(every)).partition(":")[2]
    start = data.draw(st.integers(0, len(source) - 8))
    cut = source[start : start + data.draw(st.integers(8, 20))]
    made_up = data.draw(st.text(HEX, min_size=8, max_size=12))

    for fragment in (cut, made_up):
        assert found(fragment, trigrams=True) == found(fragment, trigrams=False) == expected(fragment)


@sqlite_only
@pytest.mark.django_db
def test_an_infix_lookup_reads_the_trigram_tables_and_finds_what_the_like_finds():
    inside = "feedface12345678"
    builds = store(repository(), [
        (f"sha256:{'ab' * 8}{inside}{'0' * 32}", [(f"sha256:{'1' * 64}", f"sha256:{'2' * 64}")]),
        (f"sha256:{'3' * 64}", [(f"sha256:{'4' * 20}{inside}{'5' * 28}", f"sha256:{'6' * 64}")]),
        (f"sha256:{'7' * 64}", [(f"sha256:{'8' * 64}", f"sha256:{'9' * 30}{inside}{'a' * 18}")]),
        (f"sha256:{'b' * 64}", []),
    ])  # fmt: skip

    assert read_through_trigrams("feedface1234")
    result = lookup("feedface1234")

    assert result.kind == "fragment"
    assert [(match.build, match.matched) for match in result.matches] == [
        (builds[2], "config"), (builds[1], "platform"), (builds[0], "index"),
    ]  # fmt: skip


@sqlite_only
@pytest.mark.django_db
def test_without_the_tables_an_infix_reads_every_digest_and_finds_the_same():
    builds = store(repository(), [("sha256:" + "c" * 10 + "0123456789" + "d" * 44, [])])
    with_tables = lookup("0123456789")

    with connection.cursor() as cursor:  # as if migrated by a SQLite without FTS5 (rolled back after)
        for fts, _, _ in MIGRATION.INDEXES:
            cursor.execute(f"DROP TABLE {fts}")

    assert not digests._trigram_tables_ready()
    assert not read_through_trigrams("0123456789")
    assert [match.build for match in lookup("0123456789").matches] == [builds[0]]
    assert [match.build for match in with_tables.matches] == [builds[0]]


@sqlite_only
@pytest.mark.django_db
def test_a_table_rebuilt_without_its_triggers_is_not_read_from_a_stale_index():
    """Django's SQLite ALTER copies a table and drops its triggers: the index stops following
    the rows, so search must stop reading it."""
    store(repository(), [("sha256:" + "e" * 64, [])])
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER history_build_digest_trigram_insert")
    (added,) = store(Repository.objects.get(), [("sha256:" + "f" * 20 + "0123456789" + "f" * 34, [])])

    assert not digests._trigram_tables_ready()
    assert [match.build for match in lookup("0123456789").matches] == [added]


@sqlite_only
@pytest.mark.django_db
def test_a_sqlite_without_fts5_trigrams_migrates_to_no_tables_and_search_still_works(monkeypatch):
    from django.db.migrations.state import ProjectState

    class InTransaction:
        connection = connection

        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    editor = InTransaction()  # Django's SQLite schema editor refuses to run inside the test's transaction
    MIGRATION.drop(ProjectState().apps, editor)
    monkeypatch.setattr(MIGRATION, "trigram_available", lambda connection: False)
    MIGRATION.create(ProjectState().apps, editor)
    (build,) = store(repository(), [("sha256:" + "1" * 30 + "abcdef0123" + "1" * 24, [])])

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE '%trigram%'")
        assert cursor.fetchall() == []
    assert [match.build for match in lookup("abcdef0123").matches] == [build]
