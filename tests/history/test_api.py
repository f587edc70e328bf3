"""The JSON API under /api/v1/: each endpoint's shape and values, from real polls of the real registry."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Line, Registry, Repository, Tag, Version
from history.changelog import ChangelogFilter, page
from history.keyset import Cursor, NameCursor
from history.models import Build, Platform, PollRun, TagEvent, TagState
from tests.history.factories import during, polled, watch
from tests.support.pusher import PushResult

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

API = "/api/v1"
CREATED = "2026-11-26T12:00:00Z"


def get(client, path: str, status: int = 200, **params):
    response = client.get(f"{API}/{path}", params)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def image_id(config_digest: str) -> str:
    return config_digest.split(":")[1][:12]


@dataclass
class Story:
    """Two days of a python-like repository, polled after each."""

    repository: Repository
    day1: PushResult  # 3.14.4, two platforms: 3.14.4, 3.14, latest, 3.14.4-202611261200
    day2: PushResult  # 3.14.4 rebuilt: the three move; 3.14.4-202611271200 is new
    dev: PushResult  # 3.14.4-dev
    old: PushResult  # 3.13.9, a Docker manifest list
    main: PushResult  # a branch tag, deleted on day 2
    first: PollRun
    second: PollRun


@pytest.fixture
def story(registry, pusher, repo_name) -> Story:
    name = repo_name
    day1 = pusher.push(name, "3.14.4", "oci-index", seed="day 1", created=CREATED)
    for tag in ("3.14", "latest", "3.14.4-202611261200"):
        pusher.tag(name, "3.14.4", tag)
    dev = pusher.push(name, "3.14.4-dev", "oci", seed="dev")
    old = pusher.push(name, "3.13.9", "docker-list", seed="old")
    main = pusher.push(name, "main", "oci", seed="main")
    pusher.push(name, f"sha256-{day1.digest.split(':')[1]}.sig", "oci", seed="signature")
    repository = watch(registry, name)
    first = polled(repository)

    day2 = pusher.push(name, "3.14.4", "oci-index", seed="day 2", created=CREATED)
    for tag in ("3.14", "latest", "3.14.4-202611271200"):
        pusher.tag(name, "3.14.4", tag)
    pusher.delete(name, "main")
    second = polled(repository)
    return Story(repository, day1, day2, dev, old, main, first, second)


def at(story: Story, value: str | None, **more: PollRun) -> str | None:
    """Which poll of the story a time the API gives falls in, by name ("first", "second", ...):
    each tag is recorded at the time of its own request, within its poll."""
    if value is None:
        return None
    when = datetime.fromisoformat(value)
    runs = {"first": story.first, "second": story.second, **more}
    return next((name for name, run in runs.items() if during(run, when)), value)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def build_pk(digest: str) -> int:
    return Build.objects.get(digest=digest).pk


# --- repositories and tags ----------------------------------------------------------------------


def test_repositories_lists_each_with_its_latest_poll_and_tag_count(client, story, registry):
    never = watch(registry, "zz/never-polled")

    assert get(client, "repositories") == [
        {
            "id": story.repository.pk,
            "reference": f"{registry.host}/{story.repository.name}",
            "registry": registry.host,
            "name": story.repository.name,
            "last_poll_at": story.second.started_at.isoformat(),
            "last_poll_status": "ok",
            "tag_count": 7,  # main is gone; as many as the tags endpoint lists, so no signature
            "artifact_count": 1,
        },
        {
            "id": never.pk,
            "reference": f"{registry.host}/zz/never-polled",
            "registry": registry.host,
            "name": "zz/never-polled",
            "last_poll_at": None,
            "last_poll_status": None,
            "tag_count": 0,
            "artifact_count": 0,
        },
    ]


def test_tags_are_where_each_present_tag_points_now_without_artifacts(client, story):
    body = get(client, f"repositories/{story.repository.pk}/tags")
    assert body["next"] is None
    tags = body["items"]

    day1, day2, dev = story.day1.digest, story.day2.digest, story.dev.digest
    since = {tag["name"]: tag.pop("since") for tag in tags}
    assert set(tags[0]) == {"name", "kind", "version", "variant", "digest"}
    assert [tuple(tag.values()) for tag in tags] == [
        ("3.13.9", "exact", "3.13.9", "", story.old.digest),
        ("3.14", "minor", "3.14", "", day2),
        ("3.14.4", "exact", "3.14.4", "", day2),
        ("3.14.4-202611261200", "timestamp", "3.14.4", "", day1),
        ("3.14.4-202611271200", "timestamp", "3.14.4", "", day2),
        ("3.14.4-dev", "exact", "3.14.4", "dev", dev),
        ("latest", "latest", None, "", day2),
    ]
    first, second = "first", "second"
    assert {name: at(story, value) for name, value in since.items()} == {
        "3.13.9": first, "3.14": second, "3.14.4": second, "3.14.4-202611261200": first,
        "3.14.4-202611271200": second, "3.14.4-dev": first, "latest": second,
    }  # fmt: skip


# --- events -------------------------------------------------------------------------------------


def all_events(client, repository: Repository, **filters) -> list[dict]:
    return get(client, f"repositories/{repository.pk}/events", limit=200, **filters)["events"]


def test_events_are_every_change_newest_first(client, story):
    page = get(client, f"repositories/{story.repository.pk}/events")

    assert page["next"] is None
    first, second = "first", "second"
    day1, day2, main = story.day1.digest, story.day2.digest, story.main.digest
    events = page["events"]
    # Day 1's signature tag is left out (artifacts=true brings it: test_changelog_artifacts.py).
    assert [at(story, event["detected_at"]) for event in events] == [second] * 5 + [first] * 7
    assert sorted(
        (e["tag"], e["kind"], e["digest"], e["previous_digest"], at(story, e["not_before"]))
        for e in events[:5]
    ) == [
        ("3.14", "moved", day2, day1, first),
        ("3.14.4", "moved", day2, day1, first),
        ("3.14.4-202611271200", "created", day2, None, None),
        ("latest", "moved", day2, day1, first),
        ("main", "deleted", None, main, first),
    ]
    assert {(e["tag"], e["kind"], e["digest"]) for e in events[5:]} >= {
        ("3.14.4", "created", day1),
        ("3.13.9", "created", story.old.digest),
        ("main", "created", main),
    }
    assert set(events[0]) == {
        "tag",
        "kind",
        "digest",
        "previous_digest",
        "detected_at",
        "not_before",
        "imported",
        "signing",
    }
    # No build of the story is signed: no move leaves a signature behind.
    assert {e["signing"] for e in events} == {None}
    # Every row of the first poll (the import), each flagged, where the pages show one row for them.
    assert [e["imported"] for e in events] == [False] * 5 + [True] * 7


def test_events_page_through_with_cursors_without_gaps_or_repeats(client, story):
    expected = all_events(client, story.repository)
    seen, pages, cursor = [], 0, None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = get(client, f"repositories/{story.repository.pk}/events", **params)
        seen += page["events"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert (pages, seen) == (3, expected)
    assert len(expected) == 12


def test_a_cursor_keeps_its_place_when_new_events_arrive(client, story, pusher):
    page = get(client, f"repositories/{story.repository.pk}/events", limit=5)
    pusher.tag(story.repository.name, "3.13.9", "latest")
    polled(story.repository)

    rest = get(client, f"repositories/{story.repository.pk}/events", limit=200, cursor=page["next"])

    assert len(rest["events"]) == 7
    assert all(at(story, event["detected_at"]) == "first" for event in rest["events"])


def test_events_are_the_changelog_reader_with_its_cursor(client, story):
    """One reader, one cursor: `next` is what the repository's changelog page links to."""
    path = f"repositories/{story.repository.pk}/events"
    first = get(client, path, limit=3)
    changelog = page(ChangelogFilter(repository=story.repository.pk), size=3)

    assert [event["detected_at"] for event in first["events"]] == [
        event.detected_at.isoformat() for event in changelog.events
    ]
    assert first["next"] == changelog.next_cursor.encode()
    second = page(ChangelogFilter(repository=story.repository.pk), changelog.next_cursor, size=3)
    assert [e["detected_at"] for e in get(client, path, limit=3, cursor=first["next"])["events"]] == [
        event.detected_at.isoformat() for event in second.events
    ]


@pytest.mark.parametrize("list_path", ["events", "versions/3.14.4/builds", "tags"])
def test_a_damaged_cursor_or_one_of_another_list_is_a_400(client, story, list_path):
    path = f"repositories/{story.repository.pk}/{list_path}"
    names_cursor = NameCursor("latest").encode()
    moment_cursor = Cursor(timezone.now(), 1).encode()
    other_list = moment_cursor if list_path == "tags" else names_cursor
    # Decodes as a cursor would, but names row 0, which encode() never writes.
    edited = base64.urlsafe_b64encode(b"2026-11-26T12:00:00+00:00|0").decode().rstrip("=")

    for bad in ("garbage", "a:b:c", "x" * 200, other_list, edited):
        assert get(client, path, 400, cursor=bad) == {
            "detail": "cursor: this page link is damaged or was edited: start again from the first page"
        }, bad


def test_events_filter_by_tag_kind_and_time(client, story):
    repository = story.repository
    first, second = story.first.started_at, story.second.started_at

    assert [(e["kind"], e["digest"]) for e in all_events(client, repository, tag="3.14.4")] == [
        ("moved", story.day2.digest),
        ("created", story.day1.digest),
    ]
    assert [e["tag"] for e in all_events(client, repository, kind="deleted")] == ["main"]
    later = all_events(client, repository, since=second.isoformat())
    assert {at(story, e["detected_at"]) for e in later} == {"second"}
    earlier = all_events(client, repository, until=second.isoformat())
    assert {at(story, e["detected_at"]) for e in earlier} == {"first"}
    assert all_events(client, repository, since=first.isoformat(), until=first.isoformat()) == []
    # Naive times are UTC, and `Z` works as well as +00:00.
    naive = second.replace(tzinfo=None).isoformat()
    assert len(all_events(client, repository, since=naive)) == 5
    assert len(all_events(client, repository, since=second.isoformat().replace("+00:00", "Z"))) == 5
    assert all_events(client, repository, tag="no-such-tag") == []


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "yesterday"}, "since: "),
        ({"until": "2026-13-01T00:00:00"}, "until: "),
        (
            {"since": "2026-11-27T00:00:00Z", "until": "2026-11-26T00:00:00Z"},
            "until: must not be before since",
        ),
        ({"limit": 0}, "limit: "),
        ({"limit": 201}, "limit: "),
        ({"limit": "ten"}, "limit: "),
        ({"kind": "renamed"}, "kind: "),
        ({"tag": "bad tag"}, "tag: "),
        ({"tag": "x" * 129}, "tag: "),
        ({"tag": "nul\x00"}, "tag: "),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since: "),
    ],
)
def test_bad_event_parameters_are_a_400_naming_the_parameter(client, story, params, detail):
    body = get(client, f"repositories/{story.repository.pk}/events", 400, **params)
    assert set(body) == {"detail"}
    assert body["detail"].startswith(detail), body


# --- versions and builds ------------------------------------------------------------------------


def test_versions_newest_first_with_the_tags_on_their_current_build(client, story):
    assert get(client, f"repositories/{story.repository.pk}/versions") == [
        {
            "version": "3.14.4",
            "line": "3.14",
            "variant": "",
            "tags": ["latest", "3.14.4", "3.14", "3.14.4-202611271200"],  # on its current build
            "current_digest": story.day2.digest,
            "build_count": 2,
            "inactive": False,
        },
        {
            "version": "3.14.4",
            "line": "3.14",
            "variant": "dev",
            "tags": ["3.14.4-dev"],
            "current_digest": story.dev.digest,
            "build_count": 1,
            "inactive": False,
        },
        {
            "version": "3.13.9",
            "line": "3.13",
            "variant": "",
            "tags": ["3.13.9"],
            "current_digest": story.old.digest,
            "build_count": 1,
            "inactive": False,
        },
    ]


def test_versions_sort_as_versions_not_text_and_flag_inactive_ones(client, settings):
    settings.TAGLEDGER_INACTIVE_AFTER_DAYS = 30
    repository = synthetic_repository("sorting", versions=["1.9.0", "1.10.0", "1.10.0-rc1", "1.2.0"])
    Build.objects.filter(version__name="1.2.0").update(first_seen_at=timezone.now() - timedelta(days=60))

    versions = get(client, f"repositories/{repository.pk}/versions")

    assert [(v["version"], v["inactive"]) for v in versions] == [
        ("1.10.0", False), ("1.10.0-rc1", False), ("1.9.0", False), ("1.2.0", True),
    ]  # fmt: skip


def held(story: Story, tags: list[dict]) -> list[dict]:
    """Held tags by name, their times as the polls they fall in."""
    return [
        {"tag": item["tag"], "from": at(story, item["from"]), "until": at(story, item["until"])}
        for item in sorted(tags, key=lambda item: item["tag"])
    ]


def test_builds_are_the_digest_history_of_a_version_newest_first(client, story):
    first, second = "first", "second"
    page = get(client, f"repositories/{story.repository.pk}/versions/3.14.4/builds")

    assert page["next"] is None
    builds = page["items"]
    assert [build["digest"] for build in builds] == [story.day2.digest, story.day1.digest]
    newest, oldest = builds
    assert newest["timestamp_tag"] == "3.14.4-202611271200"
    assert (at(story, newest["first_seen"]), at(story, newest["last_seen"])) == (second, second)
    assert held(story, newest["tags"]) == [
        {"tag": "3.14", "from": second, "until": None},
        {"tag": "3.14.4", "from": second, "until": None},
        {"tag": "3.14.4-202611271200", "from": second, "until": None},
        {"tag": "latest", "from": second, "until": None},
    ]
    assert oldest["timestamp_tag"] == "3.14.4-202611261200"
    # its timestamp tag still points at it, so the second poll saw it too
    assert (at(story, oldest["first_seen"]), at(story, oldest["last_seen"])) == (first, second)
    assert held(story, oldest["tags"]) == [
        {"tag": "3.14", "from": first, "until": second},
        {"tag": "3.14.4", "from": first, "until": second},
        {"tag": "3.14.4-202611261200", "from": first, "until": None},
        {"tag": "latest", "from": first, "until": second},
    ]
    for build, pushed in ((newest, story.day2), (oldest, story.day1)):
        assert build["platforms"] == [
            {
                "os": "linux",
                "architecture": "amd64",
                "variant": "",
                "digest": pushed.child_digests[0],
                "config_digest": pushed.config_digests[0],
                "image_id": image_id(pushed.config_digests[0]),
            },
            {
                "os": "linux",
                "architecture": "arm64",
                "variant": "v8",
                "digest": pushed.child_digests[1],
                "config_digest": pushed.config_digests[1],
                "image_id": image_id(pushed.config_digests[1]),
            },
        ]


def test_builds_of_a_variant_and_of_a_docker_manifest_list(client, story):
    dev = get(client, f"repositories/{story.repository.pk}/versions/3.14.4/builds", variant="dev")["items"]
    assert [(b["digest"], b["timestamp_tag"]) for b in dev] == [(story.dev.digest, None)]
    assert dev[0]["platforms"] == [
        {
            "os": "linux",
            "architecture": "amd64",
            "variant": "",
            "digest": story.dev.digest,  # a single-platform image is its own platform
            "config_digest": story.dev.config_digests[0],
            "image_id": image_id(story.dev.config_digests[0]),
        }
    ]
    old = get(client, f"repositories/{story.repository.pk}/versions/3.13.9/builds")["items"]
    assert [platform["digest"] for platform in old[0]["platforms"]] == story.old.child_digests


def test_builds_page_newest_first_without_gaps_or_repeats(client):
    repository = synthetic_repository("paged", versions=["1.0.0"], builds_each=7)
    builds = Build.objects.filter(repository=repository).order_by("-first_seen_at")
    newest_first = list(builds.values_list("digest", flat=True))
    path = f"repositories/{repository.pk}/versions/1.0.0/builds"
    seen, sizes, cursor = [], [], None
    while True:
        page = get(client, path, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [build["digest"] for build in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next"]
        if cursor is None:
            break
    assert (sizes, seen) == ([3, 3, 1], newest_first)
    # A page holds 50 builds unless asked for up to 100.
    assert len(get(client, path)["items"]) == 7
    for limit in (0, 101, "ten"):
        assert get(client, path, 400, limit=limit)["detail"].startswith("limit: ")


def test_a_builds_cursor_keeps_its_place_when_new_builds_arrive(client):
    repository = synthetic_repository("growing", versions=["1.0.0"], builds_each=4)
    path = f"repositories/{repository.pk}/versions/1.0.0/builds"
    first = get(client, path, limit=2)
    Build.objects.create(
        repository=repository, digest="sha256:" + "e" * 64, media_type="x", size=1,
        version=Version.objects.get(repository=repository), first_seen_at=timezone.now() + timedelta(days=1),
    )  # fmt: skip

    rest = get(client, path, limit=100, cursor=first["next"])["items"]

    oldest_two = Build.objects.filter(repository=repository).order_by("first_seen_at")[:2]
    assert [build["digest"] for build in rest] == [build.digest for build in reversed(oldest_two)]


def test_an_unknown_version_or_variant_is_a_404(client, story):
    path = f"repositories/{story.repository.pk}/versions"
    reference = story.repository.reference
    assert get(client, f"{path}/9.9.9/builds", 404) == {"detail": f"{reference} has no version 9.9.9"}
    assert get(client, f"{path}/3.13.9/builds", 404, variant="dev") == {
        "detail": f"{reference} has no version 3.13.9-dev"
    }
    assert "detail" in get(client, f"{path}/3.14.4/builds", 400, variant="a b")


# --- search -------------------------------------------------------------------------------------


def test_search_by_image_id_finds_the_build_it_belongs_to(client, story):
    config = story.day1.config_digests[1]

    result = get(client, "search", q=image_id(config))

    assert (result["query"], result["kind"], result["truncated"]) == (image_id(config), "fragment", False)
    assert result["next"] is None
    built = Build.objects.get(digest=story.day1.digest)
    [match] = result["items"]
    tags = match.pop("tags")
    platforms = match.pop("platforms")
    assert match == {
        "digest": story.day1.digest,
        "matched": "config",
        "matched_digest": config,
        "platform": "linux/arm64/v8",
        "image_id": image_id(config),
        "layer_platforms": [],
        "repository": story.repository.reference,
        "reference": f"{story.repository.reference}@{story.day1.digest}",
        "media_type": "application/vnd.oci.image.index.v1+json",
        "version": "3.14.4",
        "created": iso(built.created),
        "built_at": iso(built.built_at),
        "first_seen": match["first_seen"],
        "last_seen": match["last_seen"],
        "url": f"/builds/{build_pk(story.day1.digest)}/",
    }
    assert [(p["architecture"], p["config_digest"]) for p in platforms] == [
        ("amd64", story.day1.config_digests[0]),
        ("arm64", config),
    ]
    assert (at(story, match["first_seen"]), at(story, match["last_seen"])) == ("first", "second")
    assert {"tag": "3.14.4", "from": "first", "until": "second"} in held(story, tags)
    assert client.get(match["url"]).status_code == 200


def test_search_by_a_platform_digest_and_by_a_gone_build(client, story):
    [platform] = get(client, "search", q=story.day2.child_digests[0])["items"]
    assert (platform["digest"], platform["matched"], platform["platform"]) == (
        story.day2.digest, "platform", "linux/amd64",
    )  # fmt: skip

    third = polled(story.repository)  # confirms everything still there, not what is gone
    [gone] = get(client, "search", q=f"{story.repository.reference}@{story.main.digest}")["items"]
    assert (gone["matched"], gone["version"], held(story, gone["tags"])) == (
        "index", None, [{"tag": "main", "from": "first", "until": "second"}],
    )  # fmt: skip
    assert at(story, gone["last_seen"]) == "first"
    [current] = get(client, "search", q=story.day2.digest)["items"]
    assert at(story, current["last_seen"], third=third) == "third"


def test_search_pages_through_matching_builds_newest_first(client):
    repository = synthetic_repository("many", versions=["1.0.0"], builds_each=60)
    prefix = f"sha256:{repository.pk:08x}"  # every build's digest starts so
    newest_first = list(
        Build.objects.filter(repository=repository)
        .order_by("-first_seen_at")
        .values_list("digest", flat=True)
    )

    first = get(client, "search", q=prefix)
    second = get(client, "search", q=prefix, cursor=first["next"])

    assert (first["truncated"], len(first["items"]), second["truncated"], second["next"]) == (
        True,
        50,
        False,
        None,
    )
    assert [match["digest"] for match in first["items"] + second["items"]] == newest_first
    assert get(client, "search", 400, q=prefix, cursor="garbage")["detail"].startswith("cursor: ")


def test_search_by_name_lists_names_and_no_builds(client, story):
    result = get(client, "search", q="3.14.4-dev")
    assert (result["kind"], result["items"], result["next"]) == ("name", [], None)
    assert result["names"]["tags"] == [
        {
            "repository": story.repository.reference,
            "tag": "3.14.4-dev",
            "reference": f"{story.repository.reference}:3.14.4-dev",
            "kind": "exact",
            "digest": story.dev.digest,
            "present": True,
        }
    ]


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("", "the query is empty: give a digest, a digest fragment, a reference or a name"),
        ("   ", "the query is empty: give a digest, a digest fragment, a reference or a name"),
        ("abc", "'abc' is too short: a digest fragment needs at least 4 hex digits"),
        ("sha1:abcd", "unsupported digest algorithm 'sha1' (sha256, sha384 or sha512)"),
        ("<script>", "'<script>' is not a digest, digest fragment, reference or name "
                     "(names use letters, digits and . _ / : @ -)"),
    ],
)  # fmt: skip
def test_an_invalid_search_is_a_400_saying_why(client, q, detail):
    assert get(client, "search", 400, q=q) == {"detail": detail}


def test_search_needs_a_query(client):
    assert get(client, "search", 400)["detail"].startswith("q: ")


# --- access and errors --------------------------------------------------------------------------

ENDPOINTS = [
    "repositories",
    "repositories/{id}/tags",
    "repositories/{id}/events",
    "repositories/{id}/versions",
    "repositories/{id}/versions/1.0.0/builds",
    "search?q=1.0.0",
    "compare?a={digest}&b={digest}",
    "pins?ref=example.com/a:1",
]


@pytest.fixture
def small() -> Repository:
    return synthetic_repository("small", versions=["1.0.0"])


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_private_instance_answers_401_to_anonymous_readers(client, settings, small, path):
    settings.TAGLEDGER_PUBLIC = False
    response = client.get(
        f"{API}/{path.format(id=small.pk, digest=Build.objects.get(repository=small).digest)}"
    )
    assert (response.status_code, response.json()) == (401, {"detail": "authentication required"})


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_private_instance_answers_signed_in_users(client, settings, small, path):
    settings.TAGLEDGER_PUBLIC = False
    client.force_login(User.objects.create_user("reader"))
    assert (
        client.get(
            f"{API}/{path.format(id=small.pk, digest=Build.objects.get(repository=small).digest)}"
        ).status_code
        == 200
    )


def test_a_private_instance_checks_the_session_before_the_parameters(client, settings):
    settings.TAGLEDGER_PUBLIC = False
    assert client.get(f"{API}/repositories/x/events?limit=0").status_code == 401
    assert client.get(f"{API}/search").status_code == 401


@pytest.mark.parametrize("path", [p for p in ENDPOINTS if "{id}" in p])
def test_unknown_repository_ids_are_a_404_and_non_ids_a_400(client, path):
    assert get(client, path.format(id=987654321), 404) == {"detail": "no repository with id 987654321"}
    for bad in ("abc", "0", "-1", "1.5", str(2**63), "9" * 40):
        assert "detail" in get(client, path.format(id=bad), 400)


def test_only_get_is_allowed(client, small):
    for method in (client.post, client.put, client.delete):
        assert method(f"{API}/repositories").status_code == 405


def test_registry_data_is_json_escaped(client):
    repository = synthetic_repository("escape", versions=["1.0.0"])
    hostile = '</script><script>alert("x")</script>\\\n\u2028'
    Tag.objects.filter(repository=repository).update(name=hostile)

    response = client.get(f"{API}/repositories/{repository.pk}/tags")

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["items"][0]["name"] == hostile
    assert response.content.isascii()  # \u2028 and friends are escaped too
    assert b'"</script><script>alert(\\"x\\")</script>\\\\\\n\\u2028"' in response.content


def test_times_keep_their_microseconds(client):
    repository = synthetic_repository("precise", versions=["1.0.0"])
    moment = timezone.now().replace(microsecond=123456)
    TagState.objects.filter(tag__repository=repository).update(since=moment)
    assert get(client, f"repositories/{repository.pk}/tags")["items"][0]["since"] == moment.isoformat()


def test_openapi_schema_and_docs_load_nothing_from_elsewhere(client, settings):
    settings.TAGLEDGER_PUBLIC = False  # the schema says how the API works, not what it holds
    schema = get(client, "openapi.json")
    assert schema["openapi"].startswith("3.")
    assert sorted(schema["paths"]) == sorted(
        f"{API}/{path}"
        for path in (
            "repositories", "repositories/{id}/tags", "repositories/{id}/tags/{name}/history",
            "repositories/{id}/events", "repositories/{id}/versions",
            "repositories/{id}/versions/{version}/builds", "search", "compare", "pins", "pins/check",
            "builds/{digest}", "builds/{digest}/packages", "packages", "pin-lists", "pin-lists/{id}",
            "subscriptions", "subscriptions/{id}", "subscriptions/{id}/test", "deliveries",
        )
    )  # fmt: skip
    docs = client.get(f"{API}/docs")
    if docs.status_code == 200:  # only with `ninja` installed, which serves Swagger from /static/
        assert b"cdn" not in docs.content.lower()
        assert b"<script>" not in docs.content
    else:
        assert docs.status_code == 404


# --- query counts -------------------------------------------------------------------------------


def synthetic_repository(name: str, *, versions: list[str], builds_each: int = 1) -> Repository:
    """Rows as a poll writes them, without a registry: one tag per version on its newest build."""
    host, _ = Registry.objects.get_or_create(host="127.0.0.1:9")
    repository = Repository.objects.create(registry=host, name=f"synthetic/{name}")
    now = timezone.now()
    PollRun.objects.create(repository=repository, started_at=now, status=PollRun.Status.OK)
    for number, version_name in enumerate(versions):
        line, _ = Line.objects.get_or_create(repository=repository, name=version_name.rsplit(".", 1)[0])
        version = Version.objects.create(repository=repository, line=line, name=version_name)
        tag = Tag.objects.create(repository=repository, name=version_name, kind="exact", version=version_name)
        previous = None
        for index in range(builds_each):
            build = Build.objects.create(
                repository=repository, digest=f"sha256:{repository.pk:08x}{number:028x}{index:028x}",
                media_type="application/vnd.oci.image.manifest.v1+json", size=1, version=version,
                first_seen_at=now + timedelta(seconds=index),
            )  # fmt: skip
            Platform.objects.create(
                build=build, os="linux", architecture="amd64", digest=build.digest,
                media_type=build.media_type, config_digest="sha256:" + "c" * 64,
            )  # fmt: skip
            TagEvent.objects.create(
                tag=tag, kind="moved" if previous else "created", build=build, previous_build=previous,
                detected_at=build.first_seen_at, not_before=previous and previous.first_seen_at,
            )  # fmt: skip
            previous = build
        TagState.objects.create(tag=tag, build=previous, since=previous.first_seen_at, confirmed_at=now)
    return repository


def grow(repository: Repository, versions: int) -> None:
    more = synthetic_repository(f"{repository.name}-more", versions=[f"2.{n}.0" for n in range(versions)])
    Version.objects.filter(repository=more).update(repository=repository)
    Line.objects.filter(repository=more).update(repository=repository)
    Tag.objects.filter(repository=more).update(repository=repository)
    Build.objects.filter(repository=more).update(repository=repository)


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "path",
    [
        "repositories",
        "repositories/{id}/tags",
        "repositories/{id}/events",
        "repositories/{id}/versions",
        "repositories/{id}/versions/1.0.0/builds",
        "search?q=sha256:cccc",
        "pins?ref={reference}:1.0.0&ref={reference}:0.9.0@{digest}&ref={reference}:1.0.0@{digest}",
        "compare?a={reference}@{digest}&b={reference}:1.0.0",
    ],
)
def test_query_counts_do_not_grow_with_the_data(client, settings, path, django_assert_max_num_queries):
    settings.TAGLEDGER_PUBLIC = False
    client.force_login(User.objects.create_user("reader"))  # the session costs its queries too
    repository = synthetic_repository("counted", versions=["1.0.0", "0.9.0"], builds_each=2)
    digest = Build.objects.filter(version__name="0.9.0").earliest("first_seen_at").digest
    url = f"{API}/{path.format(id=repository.pk, reference=repository.reference, digest=digest)}"
    few = queries(client, url)

    grow(repository, 25)
    Build.objects.create(
        repository=repository, digest="sha256:" + "e" * 64, media_type="x", size=1,
        version=Version.objects.get(repository=repository, name="1.0.0"), first_seen_at=timezone.now(),
    )  # fmt: skip
    for index in range(10):
        synthetic_repository(f"other-{index}", versions=["1.0.0"])

    with django_assert_max_num_queries(few):
        response = client.get(url)
    assert response.status_code == 200
    assert len(json.dumps(response.json())) > 200


# --- compare and pins ---------------------------------------------------------------------------


def test_compare_two_builds_of_a_version(client, story):
    diff = get(client, "compare", a=story.day1.digest, b=f"{story.repository.reference}@{story.day2.digest}")

    assert (diff["same"], diff["a"]["digest"], diff["b"]["digest"]) == (
        False,
        story.day1.digest,
        story.day2.digest,
    )
    assert diff["a"]["id"] == build_pk(story.day1.digest)
    assert diff["platforms_changed"] == ["linux/amd64", "linux/arm64/v8"]
    amd64 = diff["platforms"][0]
    assert (amd64["a"]["digest"], amd64["b"]["digest"]) == (
        story.day1.child_digests[0],
        story.day2.child_digests[0],
    )
    assert (amd64["a"]["image_id"], amd64["image_id_changed"]) == (
        image_id(story.day1.config_digests[0]),
        True,
    )
    assert (amd64["layers"]["added"], amd64["layers"]["removed"], amd64["layers"]["shared"]) == (1, 1, 0)
    assert {"tag": "3.14.4", "from": "second", "until": None} in held(story, diff["b"]["tags"])


def test_compare_says_which_side_names_no_build_and_offers_candidates(client, story):
    platform = story.day1.child_digests[0]

    refused = get(client, "compare", 400, a=platform, b=story.day2.digest)

    assert refused["detail"].startswith("a: no build digest starts with")
    assert refused["candidates"] == [f"{story.repository.reference}@{story.day1.digest}"]
    missing = get(client, "compare", 400, a=story.day1.digest, b="sha256:" + "0" * 64)
    assert missing["detail"].startswith("b: no recorded build has a digest starting with 'sha256:0000")
    assert missing["candidates"] == []
    assert get(client, "compare", 400, a=story.day1.digest)["detail"].startswith("b: ")


def test_pins_say_whether_each_reference_is_current_or_behind(client, story):
    reference = story.repository.reference
    refs = [
        f"{reference}:3.14.4@{story.day1.digest}",
        f"FROM {reference}:3.14.4@{story.day2.digest} AS base",
        f"{reference}:3.13.9",
        "not a reference!",
    ]

    results = get(client, f"pins?{'&'.join('ref=' + quote(ref) for ref in refs)}")

    assert [(r["line"], r["status"]) for r in results] == [
        (1, "behind"), (2, "current"), (3, "no_digest"), (4, "invalid"),
    ]  # fmt: skip
    behind = results[0]
    assert (behind["builds_behind"], behind["current_digest"]) == (1, story.day2.digest)
    assert behind["current_reference"] == f"{reference}:3.14.4@{story.day2.digest}"
    assert at(story, behind["confirmed_at"]) == "second"
    assert behind["compare_url"].startswith("/compare?a=")


def test_pins_need_a_reference_and_refuse_too_many(client):
    assert get(client, "pins", 400)["detail"].startswith("ref: ")
    many = "&".join(f"ref=example.com/a:{n}" for n in range(201))
    assert get(client, f"pins?{many}", 400)["detail"].startswith("ref: too many references")
