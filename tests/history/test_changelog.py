"""The changelog: every change of every tag, filtered, newest first, a keyset page at a time.

Data comes from real polls of the real registry. Volume for pagination too: a repository
imported with one tag gains 59 more, then all 60 move to a rebuild, so 120 rows are listed one
by one (a repository's import is one row: test_imports.py).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.models import Line, Repository, Tag, Version
from catalog.tags import classify
from history.changelog import ChangelogFilter, page
from history.keyset import Cursor, RowBefore
from history.models import Build, TagEvent, TagState
from history.search import lookup
from history.templatetags.tagledger import when
from tests.history.factories import polled, watch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

CHANGELOG = "/changelog"
STAMP = "3.14.4-202611261200"


def shown(response) -> list[tuple[str, str | int]]:
    """(tag, kind) of each row the page shows, in order; ("imported", how many tags) for the one
    row of a repository's import."""
    return [
        ("imported", event.import_size) if event.import_size is not None else (event.tag.name, event.kind)
        for event in response.context["events"]
    ]


def next_link(response) -> str | None:
    match = re.search(rb'<a href="([^"]+)"[^>]*rel="next"', response.content)
    return match[1].decode().replace("&amp;", "&") if match else None


@dataclass
class Story:
    python: Repository
    other: Repository
    day1: str  # digest 3.14.4 pointed to first
    day2: str  # its rebuild
    old: str  # 3.13.9, deleted on day 2


@pytest.fixture
def story(pusher, registry, make_repo_name) -> Story:
    """Day 1 (three days ago): 3.14.4 with 3.14, latest and a timestamp tag; 3.13.9. Day 2 (today):
    3.14.4 rebuilt and its tags moved, the timestamp tag moved too (immutable), 3.13.9 deleted.
    Another repository has one tag."""
    name, other_name = make_repo_name(), make_repo_name()
    python, other = watch(registry, name), watch(registry, other_name)
    day1 = pusher.push(name, "3.14.4", "oci", seed="day 1")
    for tag in ("3.14", "latest", STAMP):
        pusher.tag(name, "3.14.4", tag)
    old = pusher.push(name, "3.13.9", "oci", seed="3.13.9")
    first = polled(python)
    # The registry cannot be polled in the past: move day 1 back three days.
    TagEvent.objects.filter(poll=first).update(detected_at=F("detected_at") - timedelta(days=3))

    day2 = pusher.push(name, "3.14.4", "oci", seed="day 2")
    for tag in ("3.14", "latest", STAMP):
        pusher.tag(name, "3.14.4", tag)
    pusher.delete(name, "3.13.9")
    second = polled(python)
    assert second.changes == 5
    pusher.push(other_name, "1.0", "oci", seed="other")
    polled(other)
    return Story(python, other, day1.digest, day2.digest, old.digest)


# --- what a row shows ---------------------------------------------------------------------------


def test_every_change_is_listed_newest_first(client, story):
    response = client.get(CHANGELOG)

    assert response.status_code == 200
    events = list(response.context["events"])
    assert sorted(shown(response), key=str) == sorted(
        [("imported", 1), ("3.13.9", "deleted"), (STAMP, "immutable_moved")]
        + [(tag, "moved") for tag in ("3.14.4", "3.14", "latest")]
        + [("imported", 5)],
        key=str,
    )
    assert shown(response)[0] == ("imported", 1)  # the last poll: the other repository's import
    assert shown(response)[-1] == ("imported", 5)  # day 1, three days ago
    keys = [(event.detected_at, event.pk) for event in events]
    assert keys == sorted(keys, reverse=True)


def test_a_row_shows_the_window_the_digests_and_the_version(client, story):
    event = TagEvent.objects.get(tag__repository=story.python, tag__name="3.14.4", kind="moved")
    day1 = Build.objects.get(digest=story.day1)
    day2 = Build.objects.get(digest=story.day2)

    html = client.get(CHANGELOG, {"tag": "3.14.4", "kind": "moved"}).content.decode()

    assert story.python.reference in html
    assert f"between {when(event.not_before)} and {when(event.detected_at)}" in html
    assert f'<a href="/builds/{day1.pk}/"><code>{story.day1[7:19]}</code></a>' in html
    assert f'<a href="/builds/{day2.pk}/"><code>{story.day2[7:19]}</code></a>' in html
    assert f'<a href="/versions/{day2.version_id}/">3.14.4</a>' in html
    assert f'<a href="/builds/{day2.pk}/">build</a>' in html


def test_a_row_links_old_and_new_to_compare(client, story):
    html = client.get(CHANGELOG, {"tag": "3.14.4", "kind": "moved"}).content.decode()

    href = re.search(r'<a href="(/compare\?[^"]+)">compare</a>', html)[1].replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query) == {"a": [story.day1], "b": [story.day2]}
    assert client.get(href).status_code == 200


def test_a_deleted_tag_shows_where_it_pointed_and_no_compare_link(client, story):
    html = client.get(CHANGELOG, {"tag": "3.13.9", "kind": "deleted"}).content.decode()

    old = Build.objects.get(digest=story.old)
    assert f'<a href="/builds/{old.pk}/"><code>{story.old[7:19]}</code></a>' in html
    assert "deleted</span>" in html
    assert f'<a href="/versions/{old.version_id}/">3.13.9</a>' in html
    assert "?a=" not in html


def test_immutable_tag_moves_stand_out(client, story):
    html = client.get(CHANGELOG).content.decode()

    row = re.search(r'<tr class="event-immutable_moved">.*?</tr>', html, re.DOTALL)
    assert row and STAMP in row[0]
    assert '<span class="kind">immutable tag moved</span>' in row[0]
    assert html.count('<tr class="event-immutable_moved">') == 1


def test_the_immutable_shortcut_keeps_the_other_filters(client, story):
    response = client.get(CHANGELOG, {"repository": story.python.pk})
    shortcut = re.search(r'<a href="([^"]+)" class="changelog-shortcut">', response.content.decode())

    followed = client.get(shortcut[1].replace("&amp;", "&"))

    assert parse_qs(urlsplit(shortcut[1].replace("&amp;", "&")).query) == {
        "repository": [str(story.python.pk)],
        "kind": ["immutable_moved"],
    }
    assert shown(followed) == [(STAMP, "immutable_moved")]


# --- filters ------------------------------------------------------------------------------------


def test_repository_filter_narrows_to_one_repository(client, story):
    assert shown(client.get(CHANGELOG, {"repository": story.other.pk})) == [("imported", 1)]


def test_a_repository_changelog_shows_only_that_repository(client, story):
    url = reverse("history:repository_changelog", args=[story.other.pk])

    response = client.get(url, {"repository": story.python.pk})  # a parameter cannot widen the path

    assert shown(response) == [("imported", 1)]
    assert f"Changelog of <code>{story.other.reference}</code>" in response.content.decode()


def test_a_repository_changelog_of_an_unknown_repository_is_404(client, db):
    assert client.get(reverse("history:repository_changelog", args=[999999])).status_code == 404


def test_line_filter_matches_events_into_or_out_of_the_line(client, story):
    line = Line.objects.get(repository=story.python, name="3.13")
    url = reverse("history:repository_changelog", args=[story.python.pk])

    response = client.get(url, {"line": line.pk})

    # the deletion has no new build: it belongs to 3.13 by the build the tag left
    assert shown(response) == [("3.13.9", "deleted"), ("3.13.9", "created")]
    assert f'<option value="{line.pk}" selected>3.13</option>' in response.content.decode()


def test_version_filter_matches_both_builds_of_a_version(client, story):
    version = Version.objects.get(repository=story.python, name="3.14.4")

    response = client.get(CHANGELOG, {"version": version.pk})

    assert sorted(shown(response)) == sorted(
        [(tag, kind) for kind in ("created", "moved") for tag in ("3.14.4", "3.14", "latest")]
        + [(STAMP, "created"), (STAMP, "immutable_moved")]
    )


def test_tag_filter_is_an_exact_name(client, story):
    assert shown(client.get(CHANGELOG, {"tag": "latest"})) == [("latest", "moved"), ("latest", "created")]
    assert shown(client.get(CHANGELOG, {"tag": "lates"})) == []


def test_kind_filter(client, story):
    assert sorted(shown(client.get(CHANGELOG, {"kind": "moved"}))) == [
        ("3.14", "moved"),
        ("3.14.4", "moved"),
        ("latest", "moved"),
    ]


def test_date_range_is_inclusive_by_day(client, story):
    today = timezone.localdate()
    three_days_ago = (today - timedelta(days=3)).isoformat()

    recent = shown(client.get(CHANGELOG, {"since": today.isoformat()}))
    old = shown(client.get(CHANGELOG, {"since": three_days_ago, "until": three_days_ago}))
    between = shown(client.get(CHANGELOG, {"since": three_days_ago, "until": today.isoformat()}))

    assert len(recent) == 6 and ("imported", 1) in recent
    assert old == [("imported", 5)]
    assert len(between) == 7


def test_search_matches_part_of_a_tag_name(client, story):
    tags = {tag for tag, _ in shown(client.get(CHANGELOG, {"q": "TEST"}))}  # case-insensitive
    assert tags == {"latest"}
    assert {tag for tag, _ in shown(client.get(CHANGELOG, {"q": "3.14"}))} == {"3.14", "3.14.4", STAMP}


@pytest.mark.parametrize("form", ["bare", "sha256"])
def test_search_matches_a_digest_prefix_on_either_side(client, story, form):
    prefix = story.day1[7:19] if form == "bare" else story.day1[:19]

    events = shown(client.get(CHANGELOG, {"q": prefix.upper() if form == "bare" else prefix}))

    # created pointing at day 1, and every move away from it
    assert sorted(events) == sorted(
        [(tag, "created") for tag in ("3.14.4", "3.14", "latest", STAMP)]
        + [(tag, "moved") for tag in ("3.14.4", "3.14", "latest")]
        + [(STAMP, "immutable_moved")]
    )


def test_hex_too_short_for_a_digest_is_still_part_of_a_tag_name(client, story):
    response = client.get(CHANGELOG, {"q": "261"})  # in 3.14.4-202611261200; search would refuse it
    assert response.status_code == 200
    assert {tag for tag, _ in shown(response)} == {STAMP}


def test_a_digest_is_read_as_search_reads_it_whatever_its_algorithm(story):
    digest = "sha512:" + "ab12cd34" * 16
    build = Build.objects.create(
        repository=story.python, digest=digest, media_type="application/vnd.oci.image.index.v1+json",
        size=1, first_seen_at=timezone.now(),
    )  # fmt: skip
    info = classify("9.9")
    tag = Tag.objects.create(repository=story.python, name="9.9", kind=info.kind.value, version=info.version)
    TagState.objects.observe(tag, build, at=timezone.now(), poll=None, immutable=False)

    for text in ("ab12cd34", "AB12CD34ab12", "sha512:ab12cd34", digest, digest.removeprefix("sha512:")):
        assert [event.tag for event in ChangelogFilter(q=text).events()] == [tag], text
        assert [match.build for match in lookup(text).matches] == [build], text
    for text in ("sha256:ab12cd34", "cd34ab12"):  # another algorithm; not a prefix (search: an infix)
        assert not ChangelogFilter(q=text).events().exists(), text


def test_filters_combine(client, story):
    response = client.get(CHANGELOG, {"repository": story.python.pk, "q": "3.14", "kind": "created"})
    assert sorted(shown(response)) == [("3.14", "created"), ("3.14.4", "created"), (STAMP, "created")]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"kind": "exploded"}, "kind", "is not an event kind"),
        ({"since": "2026-13-45"}, "since", "is not a date (YYYY-MM-DD)"),
        ({"until": "yesterday"}, "until", "is not a date"),
        ({"since": "0001-01-01"}, "since", "out of range"),
        ({"since": "2026-11-27", "until": "2026-11-26"}, "until", "must not be before since"),
        ({"repository": "abc"}, "repository", "is not an id"),
        ({"line": "-1"}, "line", "is not an id"),
        ({"version": "99999999999999999999"}, "version", "is not an id"),
        ({"repository": "\uff11\uff12"}, "repository", "is not an id"),  # fullwidth digits
        ({"tag": "../../etc/passwd"}, "tag", "is not a tag name"),
        ({"q": "<script>alert(1)</script>"}, "q", "search for part of a tag name or a digest prefix"),
        ({"q": "a\x00b"}, "q", "search for part of a tag name"),
        ({"q": "' OR 1=1 --"}, "q", "search for part of a tag name"),
        ({"q": "a" * 5000}, "q", "search for part of a tag name"),
        # Digests read as search reads them: after an algorithm only a digest will do.
        ({"q": "sha256:xyz"}, "q", "after sha256: only hex digits 0-9 and a-f may follow"),
        ({"q": "sha1:abcd"}, "q", "unsupported digest algorithm"),
        ({"q": "sha256:abc"}, "q", "is too short: a digest fragment needs at least 4 hex digits"),
        ({"q": "sha256:" + "a" * 65}, "q", "is longer than a sha256 digest"),
    ],
)
def test_invalid_filters_give_a_clear_message_and_no_rows(client, story, params, field, message):
    response = client.get(CHANGELOG, params)

    html = response.content.decode()
    assert response.status_code == 400
    assert response.context["events"] == []
    assert f"<strong>{field}</strong>:" in html
    assert message in html
    assert "<script>alert" not in html
    assert "No changes match" not in html


def test_a_tampered_cursor_is_a_clear_400(client, story):
    good = client.get(CHANGELOG, {"repository": story.python.pk})  # a page that has rows
    assert good.status_code == 200
    bad_tokens = [
        "not-a-cursor",
        "%%%",
        base64.urlsafe_b64encode(b"yesterday|12").decode(),
        base64.urlsafe_b64encode(b"2026-11-26T12:00:00+00:00|-3").decode(),
        base64.urlsafe_b64encode(b"2026-11-26T12:00:00|3").decode(),  # naive
        base64.urlsafe_b64encode(b"2026-11-26T12:00:00+00:00|99999999999999999999").decode(),
        base64.urlsafe_b64encode(b"2026-11-26T12:00:00+00:00|3|4").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|1").decode(),
        "A" * 500,
    ]
    for token in bad_tokens:
        response = client.get(CHANGELOG, {"cursor": token})
        assert response.status_code == 400, token
        assert response.context["events"] == []
        assert "this page link is damaged or was edited" in response.content.decode()


# --- htmx ---------------------------------------------------------------------------------------


def test_the_form_works_without_javascript_and_with_htmx(client, story):
    html = client.get(CHANGELOG).content.decode()

    form = re.search(r"<form method=\"get\" action=\"/changelog\"[^>]*>", html)[0]
    assert 'hx-get="/changelog"' in form
    assert 'hx-target="#changelog-rows"' in form
    assert 'hx-push-url="true"' in form
    for name in ("repository", "tag", "kind", "since", "until", "q"):
        assert f'name="{name}"' in html
    assert '<div id="changelog-rows">' in html


def test_an_htmx_request_gets_only_the_rows(client, story):
    response = client.get(CHANGELOG, {"kind": "deleted"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<form" not in html
    assert '<table class="list changelog">' in html
    assert shown(response) == [("3.13.9", "deleted")]
    assert "HX-Request" in response["Vary"]


def test_an_htmx_request_with_bad_filters_gets_the_message_with_a_200(client, story):
    # htmx swaps no 4xx answer by default: the message must still reach the page
    response = client.get(CHANGELOG, {"kind": "exploded"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "is not an event kind" in response.content.decode()
    assert "<html" not in response.content.decode()


def test_htmx_history_restore_gets_the_whole_page(client, story):
    response = client.get(CHANGELOG, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


# --- pagination ---------------------------------------------------------------------------------


@pytest.fixture
def busy(pusher, registry, repo_name) -> Repository:
    """120 events from three real polls, each a row of the changelog: the import of one tag, 59
    tags created after it, then all 60 moved to a rebuild."""
    repository = watch(registry, repo_name)
    pusher.push(repo_name, "t0", "oci", seed="first")
    assert polled(repository).changes == 1
    for index in range(1, 60):
        pusher.tag(repo_name, "t0", f"t{index}")
    assert polled(repository).changes == 59
    pusher.push(repo_name, "t0", "oci", seed="second")
    for index in range(1, 60):
        pusher.tag(repo_name, "t0", f"t{index}")
    assert polled(repository).changes == 60
    return repository


def walk(client, url: str) -> list[list[int]]:
    """Event ids of every page, following each page's "Older" link until there is none."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append([event.pk for event in response.context["events"]])
        url = next_link(response)
    return pages


def test_pages_of_50_walk_every_event_once_newest_first(client, busy):
    everything = list(TagEvent.objects.order_by("-detected_at", "-id").values_list("id", flat=True))

    pages = walk(client, CHANGELOG)

    assert [len(ids) for ids in pages] == [50, 50, 20]
    assert [pk for ids in pages for pk in ids] == everything


def test_older_pages_keep_the_filters(client, busy):
    url = reverse("history:repository_changelog", args=[busy.pk])
    first = client.get(url, {"q": "t"})

    link = next_link(first)

    assert parse_qs(urlsplit(link).query).keys() == {"q", "cursor"}
    assert urlsplit(link).path == url
    pages = walk(client, f"{url}?q=t")
    assert [len(ids) for ids in pages] == [50, 50, 20]
    assert (
        TagEvent.objects.filter(pk__in=[pk for ids in pages for pk in ids], tag__repository=busy).count()
        == 120
    )


def test_pages_stay_put_when_new_events_arrive(client, busy, pusher):
    first = client.get(CHANGELOG)
    expected = walk(client, next_link(first))

    pusher.push(busy.name, "t0", "oci", seed="third")  # a change arrives between page loads
    pusher.tag(busy.name, "t0", "t1")
    assert polled(busy).changes == 2

    assert walk(client, next_link(first)) == expected
    # Both at the top; between them, the order their answers arrived in (each tag is recorded
    # at its own request's time, and the HEADs run in parallel).
    assert sorted(shown(client.get(CHANGELOG))[:2]) == [("t0", "moved"), ("t1", "moved")]


def test_query_count_is_the_same_on_page_1_and_page_3(client, busy, django_assert_max_num_queries):
    url = reverse("history:repository_changelog", args=[busy.pk])
    third = next_link(client.get(next_link(client.get(url))))

    with CaptureQueriesContext(connection) as on_first:
        assert len(shown(client.get(url))) == 50
    with CaptureQueriesContext(connection) as on_third:
        assert len(shown(client.get(third))) == 20
    # the repository, events, their builds, their signatures (the signing flags), lines, versions
    with django_assert_max_num_queries(6):
        client.get(third)

    # Page 3 costs what page 1 does, less the signatures' query when it holds no move to flag.
    assert len(on_first) - 1 <= len(on_third) <= len(on_first)


def test_a_deep_page_is_a_range_scan_of_the_changelog_index(busy):
    events = list(TagEvent.objects.order_by("-detected_at", "-id"))
    cursor = Cursor(events[99].detected_at, events[99].pk)
    # the query page() runs for the third page
    sql, params = ChangelogFilter().events().filter(RowBefore(cursor))[:51].query.sql_with_params()
    assert "OFFSET" not in sql.upper()
    with connection.cursor() as database:
        # with few rows the planner may prefer a sequential scan; ask what the index can do
        database.execute("SET LOCAL enable_seqscan = off")
        database.execute("SET LOCAL enable_sort = off")
        database.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in database.fetchall())
    assert "event_changelog" in plan
    assert re.search(r"Index Cond: \(ROW\(.*detected_at, .*id\) < ROW\(", plan), plan
    assert [e.pk for e in page(ChangelogFilter(), cursor).events] == [e.pk for e in events[100:]]


# --- access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHANGELOG, "/repositories/{pk}/changelog"])
def test_the_changelog_asks_for_login_when_not_public(client, settings, registry, repo_name, path):
    settings.TAGLEDGER_PUBLIC = False
    url = path.format(pk=watch(registry, repo_name).pk)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", [CHANGELOG, "/repositories/{pk}/changelog"])
def test_the_changelog_is_readable_when_signed_in(client, settings, registry, repo_name, path):
    settings.TAGLEDGER_PUBLIC = False
    client.force_login(User.objects.create_user("reader"))

    assert client.get(path.format(pk=watch(registry, repo_name).pk)).status_code == 200
