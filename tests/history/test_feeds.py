"""The changelog's Atom feed: valid XML, the same filters as the page, stable ids, escaped text.

Entries come from real polls; only the hostile-name tests write rows directly, since a real
registry refuses such tag names.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from catalog.models import Repository, Tag
from history.models import Build, PollRun, TagEvent
from history.polling import poll
from tests.history.factories import watch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

FEED = "/changelog/feed.atom"
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Entry:
    title: str
    id: str
    updated: datetime
    link: str
    summary: str


def parsed(content: bytes) -> ET.Element:
    """The feed as XML; this is our own response, and any parse error fails the test."""
    return ET.fromstring(content)  # noqa: S314 - expat refuses entity expansion attacks anyway


def entries(response) -> list[Entry]:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = parsed(response.content)
    assert root.tag == f"{ATOM}feed"
    return [
        Entry(
            title=entry.findtext(f"{ATOM}title"),
            id=entry.findtext(f"{ATOM}id"),
            updated=datetime.fromisoformat(entry.findtext(f"{ATOM}updated")),
            link=entry.find(f"{ATOM}link").get("href"),
            summary=entry.findtext(f"{ATOM}summary"),
        )
        for entry in root.findall(f"{ATOM}entry")
    ]


@pytest.fixture
def moved(pusher, registry, repo_name) -> tuple[Repository, str, str]:
    """3.14.4 imported, then latest created (a change after the import: its own entry), then
    both moved to a rebuild: real polls. (An import of many tags: test_imports.py.)"""
    repository = watch(registry, repo_name)
    first = pusher.push(repo_name, "3.14.4", "oci", seed="first")
    assert poll(repository).status == PollRun.Status.OK
    pusher.tag(repo_name, "3.14.4", "latest")
    assert poll(repository).changes == 1
    second = pusher.push(repo_name, "3.14.4", "oci", seed="second")
    pusher.tag(repo_name, "3.14.4", "latest")
    assert poll(repository).changes == 2
    return repository, first.digest, second.digest


def test_the_feed_is_atom_with_one_entry_per_change_newest_first(client, moved):
    repository, _, _ = moved
    root = parsed(client.get(FEED).content)

    found = entries(client.get(FEED))

    assert root.findtext(f"{ATOM}title") == "tagledger changelog"
    assert root.find(f"{ATOM}author/{ATOM}name").text == "tagledger"
    assert root.findtext(f"{ATOM}id")
    assert sorted(entry.title for entry in found[:2]) == [
        f"3.14.4 moved in {repository.reference}",
        f"latest moved in {repository.reference}",
    ]
    assert [entry.title for entry in found[2:]] == [
        f"latest created in {repository.reference}",
        f"imported 1 tag in {repository.reference}",
    ]
    events = TagEvent.objects.newest_first()
    assert [entry.updated for entry in found] == [event.detected_at for event in events]


def test_an_entry_links_its_build_and_summarises_old_and_new(client, moved):
    repository, first, second = moved
    entry = next(e for e in entries(client.get(FEED)) if e.title.startswith("3.14.4 moved"))

    build = Build.objects.get(repository=repository, digest=second)
    assert entry.link == f"http://testserver/builds/{build.pk}/"
    assert f"<code>{first}</code> → <code>{second}</code>" in entry.summary
    assert f"<code>{repository.reference}:3.14.4</code>" in entry.summary
    assert "Changed between" in entry.summary and "Version 3.14.4." in entry.summary


def test_entry_ids_are_stable_and_distinct(client, moved, pusher):
    repository, _, _ = moved
    before = [entry.id for entry in entries(client.get(FEED))]

    pusher.push(repository.name, "3.14.4", "oci", seed="third")
    assert poll(repository).changes == 1
    after = [entry.id for entry in entries(client.get(FEED))]

    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry_id) for entry_id in after)
    assert len(set(after)) == len(after) == 5
    assert after[1:] == before


def test_the_feed_takes_the_changelog_filters(client, moved, registry, pusher, make_repo_name):
    repository, _, _ = moved
    other = watch(registry, make_repo_name())
    pusher.push(other.name, "1.0", "oci")
    poll(other)

    assert len(entries(client.get(FEED))) == 5
    assert [e.title for e in entries(client.get(FEED, {"repository": other.pk}))] == [
        f"imported 1 tag in {other.reference}"
    ]
    assert [e.title for e in entries(client.get(FEED, {"tag": "latest", "kind": "moved"}))] == [
        f"latest moved in {repository.reference}"
    ]
    root = parsed(client.get(FEED, {"repository": repository.pk, "kind": "created"}).content)
    assert root.findtext(f"{ATOM}title") == f"tagledger changelog of {repository.reference} (kind created)"
    alternate = root.find(f"{ATOM}link[@rel='alternate']").get("href")
    assert alternate == f"http://testserver/changelog?repository={repository.pk}&kind=created"


def test_the_changelog_page_links_its_feed_with_the_current_filters(client, moved):
    repository, _, _ = moved
    html = client.get(
        f"/repositories/{repository.pk}/changelog", {"kind": "moved", "q": "3.14"}
    ).content.decode()

    href = f"/changelog/feed.atom?repository={repository.pk}&amp;kind=moved&amp;q=3.14"
    assert re.search(
        rf'<link rel="alternate" type="application/atom\+xml" title="[^"]*" href="{re.escape(href)}">', html
    )
    assert f'<a href="{href}" class="feed">Atom feed</a>' in html
    feed = client.get(href.replace("&amp;", "&"))
    assert [e.title for e in entries(feed)] == [f"3.14.4 moved in {repository.reference}"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "exploded"}, "kind: 'exploded' is not an event kind"),
        ({"since": "soon"}, "since: 'soon' is not a date (YYYY-MM-DD)"),
        ({"repository": "1 OR 1=1"}, "repository: '1 OR 1=1' is not an id"),
        ({"cursor": "tampered"}, "cursor: this page link is damaged or was edited"),
    ],
)
def test_invalid_filters_are_a_plain_400(client, db, params, message):
    response = client.get(FEED, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert message in response.content.decode()


# --- hostile text (rows written directly: a real registry refuses these names) ------------------

HOSTILE = '<script>alert("x")</script> & <b>'


@pytest.fixture
def hostile(registry) -> Repository:
    repository = watch(registry, "t/hostile")
    build = Build.objects.create(
        repository=repository,
        digest="sha256:" + "ab" * 32,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=1,
        first_seen_at=timezone.now(),
    )
    for name in (HOSTILE, "bell\x07\x1b[31mred\ufffe"):
        tag = Tag.objects.create(repository=repository, name=name, kind="other")
        TagEvent.objects.create(tag=tag, kind=TagEvent.Kind.CREATED, build=build, detected_at=timezone.now())
    return repository


def test_hostile_tag_names_are_escaped_in_the_feed(client, hostile):
    response = client.get(FEED)

    assert b"<script>" not in response.content
    entry = next(e for e in entries(response) if "script" in e.title)
    assert entry.title == f"{HOSTILE} created in {hostile.reference}"  # Atom title: text, escaped once
    # the summary is HTML: escaped for HTML, then for XML, so a reader shows the name as text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in entry.summary
    assert "<script>" not in entry.summary


def test_control_characters_cannot_break_the_feed(client, hostile):
    titles = [entry.title for entry in entries(client.get(FEED))]

    assert f"bell\ufffd\ufffd[31mred\ufffd created in {hostile.reference}" in titles


def test_hostile_tag_names_are_escaped_on_the_changelog_page(client, hostile):
    html = client.get("/changelog").content.decode()

    assert "<script>alert" not in html
    # a chip linking to the tag's page: the name is text in the link and percent-encoded in its path
    assert '">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;</a>' in html
    assert "/tags/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%20%26%20%3Cb%3E" in html


# --- access -------------------------------------------------------------------------------------


def test_the_feed_asks_for_login_when_not_public(client, settings, db):
    settings.TAGLEDGER_PUBLIC = False

    response = client.get(FEED)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/changelog/feed.atom")


def test_the_feed_is_readable_when_signed_in(client, settings, moved):
    settings.TAGLEDGER_PUBLIC = False
    client.force_login(User.objects.create_user("reader"))

    assert len(entries(client.get(FEED))) == 4


def test_the_feed_costs_the_same_queries_for_any_number_of_entries(
    client, moved, django_assert_max_num_queries
):
    repository, _, _ = moved
    # the repository named in the title, the events, their builds, their signatures (the signing flags)
    with django_assert_max_num_queries(4):
        assert len(entries(client.get(FEED, {"repository": repository.pk}))) == 4
