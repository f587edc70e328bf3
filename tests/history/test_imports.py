"""A repository's import (its first poll: a first sighting of every tag) is one row on the
changelog, the repository's changelog, the feed and home; the per-tag views and the API keep
every first sighting, and the API flags them.

Imports come from real first polls of the real registry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from catalog.models import Registry, Repository, Tag
from history.changelog import ChangelogFilter, page
from history.keyset import Cursor
from history.models import PollRun, TagEvent, TagState
from tests.history import factories
from tests.history.factories import polled, watch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

CHANGELOG = "/changelog"
FEED = "/changelog/feed.atom"
ATOM = "{http://www.w3.org/2005/Atom}"
TAGS = 40  # the import's tags: enough to bury a page of 15 (home) and to need a link to see them


@dataclass
class Imported:
    repository: Repository
    run: PollRun  # the import


def push_tags(pusher, name: str, names, seed: str = "first") -> None:
    pusher.push(name, names[0], "oci", seed=seed)
    for tag in names[1:]:
        pusher.tag(name, names[0], tag)


@pytest.fixture
def imported(pusher, registry, repo_name) -> Imported:
    """A repository of 40 tags (1.0 … 1.39), polled once: its import."""
    push_tags(pusher, repo_name, [f"1.{n}" for n in range(TAGS)])
    repository = watch(registry, repo_name)
    run = polled(repository)
    assert run.changes == TAGS
    return Imported(repository, run)


def rows(events) -> list[tuple[str, str | int]]:
    """(tag, kind) of each row in order; ("imported", how many tags) for an import's one row."""
    return [
        ("imported", event.import_size) if event.import_size is not None else (event.tag.name, event.kind)
        for event in events
    ]


def shown(response) -> list[tuple[str, str | int]]:
    assert response.status_code == 200, response.content[:500]
    return rows(response.context["events"])


def feed_titles(response) -> list[str]:
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # noqa: S314 - our own response
    return [entry.findtext(f"{ATOM}title") for entry in root.iter(f"{ATOM}entry")]


# --- the first poll writes an import --------------------------------------------------------------


def test_the_first_poll_marks_every_first_sighting_and_counts_them_on_one(imported):
    events = TagEvent.objects.filter(tag__repository=imported.repository)

    assert events.count() == TAGS
    assert set(events.values_list("kind", "imported", "poll")) == {("created", True, imported.run.pk)}
    counted = events.filter(imported_tags__isnull=False)
    assert list(counted.values_list("imported_tags", flat=True)) == [TAGS]
    # the newest of the import: the row the changelog shows where the import happened
    assert counted.get() == events.order_by("-detected_at", "-id").first()


def test_tags_new_after_the_import_are_ordinary_creations(imported, pusher):
    push_tags(pusher, imported.repository.name, ["2.0", "2.1"], seed="second")
    second = polled(imported.repository)

    assert set(second.events.values_list("tag__name", "kind", "imported", "imported_tags")) == {
        ("2.0", "created", False, None),
        ("2.1", "created", False, None),
    }


def test_a_first_poll_that_finds_no_tags_leaves_the_import_to_the_next(pusher, registry, repo_name):
    repository = watch(registry, repo_name, include_pattern=r"^never$")
    pusher.push(repo_name, "1.0", "oci", seed="first")
    assert polled(repository).changes == 0
    repository.include_pattern = ""
    repository.save()

    polled(repository)

    assert list(TagEvent.objects.values_list("tag__name", "imported", "imported_tags")) == [("1.0", True, 1)]


# --- one row on every door that lists changes -------------------------------------------------------


def test_the_changelog_shows_an_import_as_one_row_linking_to_its_tags(client, imported):
    response = client.get(CHANGELOG)

    assert shown(response) == [("imported", TAGS)]
    html = response.content.decode()
    row = re.search(r'<tr class="event-imported">.*?</tr>', html, re.DOTALL)[0]
    assert imported.repository.reference in row
    assert f">{TAGS} tags</a>" in row and "imported" in row
    link = re.search(r'<a href="(/changelog\?[^"]+)">see them</a>', row)[1].replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {
        "repository": [str(imported.repository.pk)],
        "poll": [str(imported.run.pk)],
        "artifacts": ["1"],
    }
    one_poll = client.get(link)  # a view of one poll lists its rows
    assert sorted(shown(one_poll)) == sorted((f"1.{n}", "created") for n in range(TAGS))
    back = re.search(r'<a href="([^"]+)">Every poll</a>', one_poll.content.decode())[1].replace("&amp;", "&")
    assert parse_qs(urlsplit(back).query) == {"repository": [str(imported.repository.pk)], "artifacts": ["1"]}
    assert shown(client.get(back)) == [("imported", TAGS)]


def test_the_repository_changelog_shows_an_import_as_one_row(client, imported):
    assert shown(client.get(f"/repositories/{imported.repository.pk}/changelog")) == [("imported", TAGS)]


def test_the_feed_shows_an_import_as_one_entry(client, imported):
    response = client.get(FEED)

    assert feed_titles(response) == [f"imported {TAGS} tags in {imported.repository.reference}"]
    entry = ET.fromstring(response.content).find(f"{ATOM}entry")  # noqa: S314 - our own response
    link = entry.find(f"{ATOM}link").get("href")
    assert parse_qs(urlsplit(link).query)["poll"] == [str(imported.run.pk)]
    assert f"saw {TAGS} tags for the first time" in entry.findtext(f"{ATOM}summary")


def test_home_shows_an_import_as_one_latest_change(client, imported, pusher):
    pusher.push(imported.repository.name, "1.0", "oci", seed="rebuilt")
    polled(imported.repository)

    response = client.get("/")

    assert rows(response.context["changes"]) == [("1.0", "moved"), ("imported", TAGS)]
    assert f">{TAGS} tags</a>" in response.content.decode()


def test_an_import_entry_id_differs_from_its_tags_first_sighting(client, imported):
    newest = TagEvent.objects.get(imported_tags__isnull=False).tag.name
    (collapsed,) = ET.fromstring(client.get(FEED).content).iter(f"{ATOM}entry")  # noqa: S314
    one = ET.fromstring(client.get(FEED, {"tag": newest}).content).find(f"{ATOM}entry")  # noqa: S314

    assert one.findtext(f"{ATOM}title") == f"{newest} created in {imported.repository.reference}"
    assert collapsed.findtext(f"{ATOM}id") != one.findtext(f"{ATOM}id")


# --- views narrowed to some tags list each first sighting -------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tag": "1.7"}, [("1.7", "created")]),
        ({"q": "1.3"}, sorted([("1.3", "created")] + [(f"1.3{n}", "created") for n in range(10)])),
        ({"kind": "created"}, [("imported", TAGS)]),  # a kind is no narrowing to tags
        ({"kind": "moved"}, []),
    ],
)
def test_a_view_narrowed_to_tags_lists_their_first_sightings(client, imported, params, expected):
    found = shown(client.get(CHANGELOG, params))
    assert sorted(found, key=str) == sorted(expected, key=str)


def test_line_and_version_views_list_their_first_sightings(client, imported):
    version = TagEvent.objects.get(tag__name="1.7").build.version
    url = f"/repositories/{imported.repository.pk}/changelog"

    found = shown(client.get(url, {"version": version.pk}))
    line = shown(client.get(url, {"line": version.line_id}))

    assert len(found) == len(line) == TAGS  # one build: every tag is of its version and line
    assert ("imported", TAGS) not in line


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", "1' OR '1'='1", "\x00", "9" * 40, "☃"])
def test_a_bad_poll_is_a_400_naming_it(client, db, value):
    response = client.get(CHANGELOG, {"poll": value})
    assert response.status_code == 400
    assert "poll" in response.context["errors"]
    assert client.get(FEED, {"poll": value}).status_code == 400


# --- keyset pages --------------------------------------------------------------------------------


@pytest.fixture
def two_imports(imported, pusher, registry, make_repo_name) -> list[int]:
    """Two imports and ordinary changes before, between and after them; the ids of every row
    the collapsed changelog must show, newest first."""
    other = make_repo_name()
    push_tags(pusher, other, ["a", "b", "c", "d", "e"])
    other_repository = watch(registry, other)
    polled(other_repository)
    push_tags(pusher, imported.repository.name, ["1.0", "1.1", "1.2", "2.0"], seed="second")
    polled(imported.repository)
    push_tags(pusher, other, ["a", "f"], seed="second")
    polled(other_repository)
    collapsed = TagEvent.objects.filter(Q(imported=False) | Q(imported_tags__isnull=False))
    expected = list(collapsed.order_by("-detected_at", "-id").values_list("pk", flat=True))
    assert len(expected) == 2 + 4 + 2  # two imports, four changes, two changes
    return expected


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_pages_walk_every_row_once_across_imports(two_imports, size):
    seen, cursor = [], None
    while True:
        found = page(ChangelogFilter(), cursor, size=size, collapse_imports=True)
        seen += [event.pk for event in found.events]
        if not (cursor := found.next_cursor):
            break
    assert seen == two_imports


@pytest.mark.django_db
def test_any_mix_of_imports_and_changes_pages_without_loss_or_repeat(db):
    """Imports (some with artifact tags, some all artifacts) and ordinary first sightings, many at
    the same instant, paged at any size: each import one row counting all its tags, shown where
    it has a real tag, every other row once, in the changelog's order."""
    registry = Registry.objects.create(host="registry.example")
    base = timezone.now()
    repositories = count()

    @hypothesis.settings(
        deadline=None, database=None, max_examples=60, suppress_health_check=list(HealthCheck)
    )
    @given(
        steps=st.lists(
            st.tuples(st.booleans(), st.lists(st.booleans(), min_size=1, max_size=5), st.integers(0, 3)),
            min_size=1,
            max_size=8,
        ),
        size=st.integers(1, 5),
    )
    def check(steps, size):
        with transaction.atomic():
            imports = {}
            for imported, artifacts, minute in steps:
                repository = Repository.objects.create(
                    registry=registry, name=f"team/app{next(repositories)}"
                )
                build = factories.build(repository)
                tags = [
                    Tag.objects.create(
                        repository=repository, name=f"sha256-{n:064x}.sig" if artifact else f"1.{n}",
                        kind="artifact" if artifact else "exact",
                    )
                    for n, artifact in enumerate(artifacts)
                ]  # fmt: skip
                at = base + timedelta(minutes=minute)  # few instants: ties everywhere
                TagState.objects.record_first_sightings(
                    [(tag, build, at, at) for tag in tags], poll=None, imported=imported
                )
                if imported and not all(artifacts):
                    imports[repository.pk] = len(artifacts)
            real = TagEvent.objects.exclude(tag__kind="artifact").order_by("-detected_at", "-id")
            expected = [event.pk for event in real if not event.imported or event.imported_tags is not None]
            seen, cursor = [], None
            while True:
                found = page(ChangelogFilter(), cursor, size=size, collapse_imports=True)
                seen += found.events
                if not (cursor := found.next_cursor):
                    break
            assert [event.pk for event in seen] == expected
            shown_imports = {e.tag.repository_id: e.import_size for e in seen if e.import_size is not None}
            assert shown_imports == imports
            ordinary = sum(
                not artifact for imported, artifacts, _ in steps if not imported for artifact in artifacts
            )
            assert len(seen) == ordinary + len(imports)
            transaction.set_rollback(True)

    check()


def test_a_cursor_taken_inside_an_import_continues_after_it(two_imports, imported):
    """A cursor from a view that lists an import's rows (the same order) continues a collapsed
    view right after that position: the older import and what came before it, once each."""
    newer_import = TagEvent.objects.filter(imported=True).exclude(poll=imported.run)
    sightings = list(newer_import.order_by("-detected_at", "-id"))
    middle = sightings[len(sightings) // 2]

    after = page(ChangelogFilter(), Cursor(middle.detected_at, middle.pk), size=50, collapse_imports=True)

    keys = {event.pk: (event.detected_at, event.pk) for event in TagEvent.objects.filter(pk__in=two_imports)}
    expected = [pk for pk in two_imports if keys[pk] < (middle.detected_at, middle.pk)]
    assert [event.pk for event in after.events] == expected
    assert rows(after.events) == [("imported", TAGS)]  # the older import; the newer one's row came before


def test_the_changelog_pages_follow_their_links_across_imports(client, two_imports):
    seen, url = [], f"{CHANGELOG}"
    pages = 0
    while url:
        response = client.get(url)
        seen += [event.pk for event in response.context["events"]]
        match = re.search(rb'<a href="([^"]+)"[^>]*rel="next"', response.content)
        url = match[1].decode().replace("&amp;", "&") if match else None
        pages += 1
    assert seen == two_imports and pages == 1  # 8 rows: one page, where 51 events were written


# --- the JSON API keeps every row, flagged --------------------------------------------------------


def test_the_api_lists_every_first_sighting_with_its_flag(client, imported, pusher):
    pusher.push(imported.repository.name, "1.0", "oci", seed="rebuilt")
    polled(imported.repository)

    body = client.get(f"/api/v1/repositories/{imported.repository.pk}/events", {"limit": 100}).json()

    flags = [(event["tag"], event["kind"], event["imported"]) for event in body["events"]]
    assert flags[0] == ("1.0", "moved", False)
    assert sorted(flags[1:]) == sorted((f"1.{n}", "created", True) for n in range(TAGS))


# --- what it costs ---------------------------------------------------------------------------------


def row_queries(captured) -> list[str]:
    """The queries a changelog page makes, but for the one that reads signatures for its moves."""
    return [query["sql"] for query in captured.captured_queries if "history_attachment" not in query["sql"]]


def test_a_page_with_an_import_costs_what_one_without_does(client, imported, pusher):
    """The import's row needs nothing more than any row: its count and poll are its own columns."""
    with CaptureQueriesContext(connection) as captured:
        assert shown(client.get(CHANGELOG)) == [("imported", TAGS)]
    with CaptureQueriesContext(connection) as home:
        client.get("/")
    pusher.push(imported.repository.name, "1.0", "oci", seed="rebuilt")
    polled(imported.repository)
    with CaptureQueriesContext(connection) as more:
        assert len(shown(client.get(CHANGELOG, {"tag": "1.0"}))) == 2
    with CaptureQueriesContext(connection) as more_home:
        client.get("/")
    # A move costs one query more, for both pages alike: whether it left a signed build (signing).
    assert [len(row_queries(q)) for q in (captured, home)] == [len(row_queries(q)) for q in (more, more_home)]
    sql = next(query["sql"] for query in captured.captured_queries if "history_tagevent" in query["sql"])
    assert '"imported_tags" IS NOT NULL' in sql


def test_the_collapsed_changelog_is_a_walk_of_its_partial_index(imported):
    # the query page() runs for the collapsed changelog's first page
    sql, params = ChangelogFilter().events(collapse_imports=True)[:51].query.sql_with_params()
    with connection.cursor() as database:
        database.execute("SET LOCAL enable_seqscan = off")  # few rows: ask what the index can do
        database.execute("SET LOCAL enable_sort = off")
        database.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in database.fetchall())
    assert "event_collapsed" in plan, plan


# --- the migration --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_applies_and_reverts():
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("history", "0010_sqlite_digest_trigrams")])
        assert {"imported", "imported_tags"}.isdisjoint(_columns())
        assert "event_collapsed" not in _indexes()

        executor.loader.build_graph()
        executor.migrate([("history", "0011_imported_events")])
        assert {"imported", "imported_tags"} <= _columns()
        assert "event_collapsed" in _indexes()
        with connection.cursor() as database:  # the default stays in the database, for older writers
            database.execute(
                "SELECT column_default, is_nullable FROM information_schema.columns"
                " WHERE table_name = 'history_tagevent' AND column_name = 'imported'"
            )
            assert database.fetchone() == ("false", "NO")
    finally:
        executor.loader.build_graph()
        executor.migrate(leaves)


def _columns() -> set[str]:
    with connection.cursor() as database:
        return {
            column.name
            for column in connection.introspection.get_table_description(database, "history_tagevent")
        }


def _indexes() -> set[str]:
    with connection.cursor() as database:
        return set(connection.introspection.get_constraints(database, "history_tagevent"))
