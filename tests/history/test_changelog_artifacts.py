"""Signatures, attestations, SBOMs and referrers tags stay out of the changelog's doors (page,
feed, home, API) unless asked for: they belong on the build they sign, not among the moves.

The story comes from real polls: two days of a repository whose builds cosign signs.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from catalog.models import Registry, Repository, Tag
from catalog.oci.mediatypes import OCI_MANIFEST
from catalog.tags import classify
from history.models import TagState
from tests.history import factories
from tests.history.factories import polled, watch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = ["2", "yes", "on", "-1", "1 1", "\x00", "1' OR '1'='1", "%", "1" * 1000, "☃"]


@dataclass
class Signed:
    repository: Repository
    day1_artifacts: set[str]  # the tags that sign, attest and refer to day 1's build
    day2_signature: str


def artifact_tags(digest: str) -> list[str]:
    hex_ = digest.split(":", 1)[1]
    return [f"sha256-{hex_}.sig", f"sha256-{hex_}.att", f"sha256-{hex_}.sbom", f"sha256-{hex_}"]


def repository_named(name: str) -> Repository:
    registry, _ = Registry.objects.get_or_create(host="registry.example")
    return Repository.objects.create(registry=registry, name=name)


def created(repository: Repository, name: str, *, at=None) -> None:
    """`name` on a build of its own, written by the one writer of events (no registry needed)."""
    at = at or timezone.now()
    digest = f"sha256:{hashlib.sha256(name.encode()).hexdigest()}"
    build = factories.build(repository, digest, media_type=OCI_MANIFEST, first_seen_at=at)
    info = classify(name)
    tag = Tag.objects.create(repository=repository, name=name, kind=info.kind.value, version=info.version)
    TagState.objects.observe(tag, build, at=at, poll=None, immutable=False)


@pytest.fixture
def signed(registry, pusher, repo_name) -> Signed:
    """Day 1: 1.0 and latest, signed, attested, with an SBOM and a referrers index. Day 2: 1.0
    rebuilt, 1.0 and latest move, and the new build is signed."""
    day1 = pusher.push(repo_name, "1.0", "oci", seed="day 1")
    pusher.tag(repo_name, "1.0", "latest")
    for name in artifact_tags(day1.digest):
        pusher.push(repo_name, name, "oci", seed=name)
    repository = watch(registry, repo_name)
    polled(repository)

    day2 = pusher.push(repo_name, "1.0", "oci", seed="day 2")
    pusher.tag(repo_name, "1.0", "latest")
    signature = artifact_tags(day2.digest)[0]
    pusher.push(repo_name, signature, "oci", seed=signature)
    polled(repository)
    return Signed(repository, set(artifact_tags(day1.digest)), signature)


REAL = [("1.0", "moved"), ("latest", "moved"), ("1.0", "created"), ("latest", "created")]
# Day 1 is the repository's import: one row on the pages, the feed and home, which counts its
# artifact tags too (its link lists them all), and which stays when they are left out.
IMPORT = ("imported", 6)
REAL_ROWS = [("1.0", "moved"), ("latest", "moved"), IMPORT]


def shown(response) -> list[tuple[str, str | int]]:
    assert response.status_code == 200, response.content[:500]
    return [
        ("imported", event.import_size) if event.import_size is not None else (event.tag.name, event.kind)
        for event in response.context["events"]
    ]


def everything(signed: Signed) -> set[tuple[str, str]]:
    """Every event, as the API lists them."""
    return {*REAL, (signed.day2_signature, "created"), *((name, "created") for name in signed.day1_artifacts)}


def every_row(signed: Signed) -> set[tuple[str, str | int]]:
    """Every row of the pages with artifacts: the import is one."""
    return {*REAL_ROWS, (signed.day2_signature, "created")}


# --- the changelog page -------------------------------------------------------------------------


def test_the_changelog_leaves_artifact_tags_out_by_default(client, signed):
    rows = shown(client.get("/changelog"))

    assert sorted(rows[:2]) == [("1.0", "moved"), ("latest", "moved")]  # day 2 opens with the moves
    assert rows[2:] == [IMPORT]


def test_the_artifacts_filter_brings_them_back_in_their_place(client, signed):
    rows = shown(client.get("/changelog", {"artifacts": "1"}))

    assert set(rows) == every_row(signed)
    assert len(rows) == 4
    assert set(rows[:3]) == {("1.0", "moved"), ("latest", "moved"), (signed.day2_signature, "created")}


def test_a_repository_changelog_takes_the_filter_too(client, signed):
    path = f"/repositories/{signed.repository.pk}/changelog"
    assert set(shown(client.get(path))) == set(REAL_ROWS)
    assert set(shown(client.get(path, {"artifacts": "1"}))) == every_row(signed)


def test_artifacts_0_is_the_default_and_leaves_no_trace_in_links(client, signed):
    response = client.get("/changelog", {"artifacts": "0"})
    assert set(shown(response)) == set(REAL_ROWS)
    rows = response.content.split(b'<div id="changelog-rows">')[1]
    assert b"artifacts=0" not in rows
    # Only the import's two links (its count, "see them") ask for artifacts: they list all it imported.
    assert rows.count(b"artifacts=1") == 2


def test_the_form_shows_the_filter_as_a_checkbox(client, signed):
    unchecked = client.get("/changelog").content.decode()
    checked = client.get("/changelog", {"artifacts": "1"}).content.decode()

    box = r'<input type="checkbox" name="artifacts" value="1"( checked)?>'
    assert re.search(box, unchecked)[1] is None
    assert re.search(box, checked)[1] == " checked"


def test_the_feed_link_and_the_shortcut_keep_the_filter(client, signed):
    response = client.get("/changelog", {"artifacts": "1", "tag": "latest"})

    assert response.context["feed_query"] == "tag=latest&artifacts=1"
    html = response.content.decode()
    assert 'href="/changelog/feed.atom?tag=latest&amp;artifacts=1"' in html
    assert 'href="/changelog?tag=latest&amp;artifacts=1&amp;kind=immutable_moved"' in html


def test_pages_and_their_cursors_keep_the_filter(client):
    """55 signatures of one build and one real tag: with artifacts the changelog has two pages."""
    repository = repository_named("team/signed")
    start = timezone.now() - timedelta(days=1)
    created(repository, "1.0", at=start)
    for n in range(55):
        created(repository, f"sha256-{n:064x}.sig", at=start + timedelta(minutes=n + 1))

    assert shown(client.get("/changelog")) == [("1.0", "created")]
    assert client.get("/changelog").context["next_query"] == ""

    first = client.get("/changelog", {"artifacts": "1"})
    assert len(shown(first)) == 50
    next_link = re.search(r'<a href="([^"]+)"[^>]*rel="next"', first.content.decode())[1]
    next_link = next_link.replace("&amp;", "&")
    assert parse_qs(urlsplit(next_link).query)["artifacts"] == ["1"]
    rest = shown(client.get(next_link))
    assert rest[-1] == ("1.0", "created")
    assert len(rest) == 6


def test_an_empty_page_says_artifacts_are_left_out_and_links_to_them(client):
    created(repository_named("team/only-signatures"), f"sha256-{1:064x}.sig")

    response = client.get("/changelog")

    assert shown(response) == []
    assert 'left out: <a href="/changelog?artifacts=1">include them</a>' in response.content.decode()


@pytest.mark.parametrize("value", HOSTILE)
def test_a_bad_artifacts_value_is_a_400_naming_it(client, value):
    response = client.get("/changelog", {"artifacts": value})

    assert response.status_code == 400
    assert response.context["errors"].keys() == {"artifacts"}
    assert "is not 1 (include) or 0 (leave out)" in response.context["errors"]["artifacts"]


def test_a_bad_artifacts_value_in_an_htmx_request_is_a_message_not_an_error(client):
    response = client.get("/changelog", {"artifacts": "\x00"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.context["errors"].keys() == {"artifacts"}


# --- the feed ---------------------------------------------------------------------------------------


def feed_titles(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    root = ET.fromstring(response.content)  # noqa: S314 - our own response
    return [entry.findtext(f"{ATOM}title") for entry in root.iter(f"{ATOM}entry")]


def test_the_feed_leaves_artifact_tags_out_unless_asked(client, signed):
    reference = signed.repository.reference
    default = feed_titles(client.get("/changelog/feed.atom"))
    asked = client.get("/changelog/feed.atom", {"artifacts": "1"})

    titles = [f"{tag} {kind} in {reference}" for tag, kind in REAL[:2]] + [f"imported 6 tags in {reference}"]
    assert sorted(default) == sorted(titles)
    assert sorted(feed_titles(asked)) == sorted([*titles, f"{signed.day2_signature} created in {reference}"])
    root = ET.fromstring(asked.content)  # noqa: S314 - our own response
    assert root.findtext(f"{ATOM}title") == "tagledger changelog (with artifacts)"
    self_link = next(link for link in root.iter(f"{ATOM}link") if link.get("rel") == "self")
    assert self_link.get("href").endswith("/changelog/feed.atom?artifacts=1")


@pytest.mark.parametrize("value", HOSTILE)
def test_the_feed_answers_a_bad_artifacts_value_with_a_400(client, value):
    response = client.get("/changelog/feed.atom", {"artifacts": value})
    assert response.status_code == 400
    assert "artifacts: " in response.content.decode()


# --- the home page ------------------------------------------------------------------------------


def test_home_latest_changes_leave_artifact_tags_out(client, signed):
    response = client.get("/")
    assert response.status_code == 200
    rows = [
        ("imported", event.import_size) if event.import_size is not None else (event.tag.name, event.kind)
        for event in response.context["changes"]
    ]
    assert sorted(rows, key=str) == sorted(REAL_ROWS, key=str)
    assert "sha256-" not in response.content.decode()


# --- the JSON API -------------------------------------------------------------------------------


def api_events(client, signed: Signed, status: int = 200, **params):
    response = client.get(f"/api/v1/repositories/{signed.repository.pk}/events", params)
    assert response.status_code == status, response.content[:500]
    return response.json()


def test_api_events_leave_artifact_tags_out_unless_asked(client, signed):
    default = api_events(client, signed)["events"]
    asked = api_events(client, signed, artifacts="true")["events"]

    assert sorted((e["tag"], e["kind"]) for e in default) == sorted(REAL)
    assert {(e["tag"], e["kind"]) for e in asked} == everything(signed)
    assert api_events(client, signed, artifacts="false")["events"] == default


def test_api_cursors_page_through_with_the_filter(client, signed):
    everything_at_once = api_events(client, signed, artifacts="1", limit=200)["events"]
    seen, cursor = [], None
    while True:
        page = api_events(client, signed, artifacts="1", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += page["events"]
        if not (cursor := page["next"]):
            break
    assert seen == everything_at_once
    assert len(seen) == 9


@pytest.mark.parametrize("value", ["2", "maybe", "\x00", "1' OR '1'='1", "%", "1" * 1000, "☃"])
def test_api_answers_a_bad_artifacts_value_with_a_400(client, value):
    repository = repository_named("team/app")
    response = client.get(f"/api/v1/repositories/{repository.pk}/events", {"artifacts": value})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("artifacts: "), body
