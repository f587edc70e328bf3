"""A tag's history page and its API: every digest the tag held, newest first, with when and
between which polls each change happened; deleted and untracked periods as such; paged."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Tag
from history.models import TagEvent, TagState
from history.tag_history import MAX_PAGE, PAGE_SIZE, tag_history
from tests.history.factories import Image

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
API = "/api/v1"


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class Story:
    """`3.14` of docker.io/library/python across seven changes, each seen by a poll some hours
    after the last poll that saw the state before it:

    created → 3.14.1 (0h) · moved → 3.14.2 (6h, last seen before at 5h) · deleted (11h, 10h) ·
    restored to the same build (20h, 11h) · moved → 3.14.3 (30h, 20h) · untracked (40h, 30h) ·
    tracked again on 3.14.3 (50h, 40h)."""

    def __init__(self):
        self.image = image = Image("library/python", host="docker.io")
        self.b1 = image.build(image.version("3.14.1"), at=hours(0))
        image.tag("3.14.1-202611201200", self.b1, at=hours(0))
        self.b2 = image.build(image.version("3.14.2"), at=hours(6))
        self.b3 = image.build(image.version("3.14.3"), at=hours(30))
        self.tag = image.tag("3.14", self.b1, at=hours(0))
        self.confirm(hours(5))
        image.tag("3.14", self.b2, at=hours(6))
        self.confirm(hours(10))
        TagState.objects.observe(self.tag, None, at=hours(11), poll=None, immutable=False)
        image.tag("3.14", self.b2, at=hours(20))
        image.tag("3.14", self.b3, at=hours(30))
        TagState.objects.untrack([self.tag], at=hours(40), poll=None)
        image.tag("3.14", self.b3, at=hours(50))
        self.repository = image.repository

    def confirm(self, at: datetime) -> None:
        TagState.objects.confirm([self.tag.pk], at=at)

    @property
    def page_url(self) -> str:
        return f"/repositories/{self.repository.pk}/tags/3.14"

    @property
    def api_url(self) -> str:
        return f"{API}/repositories/{self.repository.pk}/tags/3.14/history"


@pytest.fixture
def story(public) -> Story:
    return Story()


def rows(content: str) -> list[str]:
    """Each period row of the page as its text, whitespace collapsed."""
    found = re.findall(r'<tr class="period[^"]*">(.*?)</tr>', content, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in found]


def short(build) -> str:
    return build.digest[7:19]


# --- the page ---------------------------------------------------------------------------------------


def test_the_page_shows_every_period_newest_first_with_its_window(client, story):
    response = client.get(story.page_url)
    assert response.status_code == 200
    b1, b2, b3 = story.b1, story.b2, story.b3
    pin = "docker.io/library/python:3.14@"
    assert rows(response.content.decode()) == [
        f"{short(b3)} Copy restored 2026-11-22 14:00 now between 2026-11-22 04:00 and 2026-11-22 14:00 "
        f"3.14.3 {pin}{b3.digest} Copy",
        "untracked the repository's patterns left it out: where it pointed is unknown 2026-11-22 04:00 "
        "2026-11-22 14:00 between 2026-11-21 18:00 and 2026-11-22 04:00",
        f"{short(b3)} Copy 2026-11-21 18:00 2026-11-22 04:00 between 2026-11-21 08:00 and 2026-11-21 18:00 "
        f"compare with previous 3.14.3 {pin}{b3.digest} Copy",
        f"{short(b2)} Copy restored 2026-11-21 08:00 2026-11-21 18:00 between 2026-11-20 23:00 and "
        f"2026-11-21 08:00 3.14.2 {pin}{b2.digest} Copy",
        "deleted the registry no longer listed it 2026-11-20 23:00 2026-11-21 08:00 "
        "between 2026-11-20 22:00 and 2026-11-20 23:00",
        f"{short(b2)} Copy 2026-11-20 18:00 2026-11-20 23:00 between 2026-11-20 17:00 and 2026-11-20 18:00 "
        f"compare with previous 3.14.2 {pin}{b2.digest} Copy",
        f"{short(b1)} Copy 2026-11-20 12:00 2026-11-20 18:00 first seen 2026-11-20 12:00 "
        f"3.14.1 3.14.1-202611201200 {pin}{b1.digest} Copy",
    ]


def test_each_row_links_its_build_version_timestamp_tag_and_the_compare_with_the_build_before(client, story):
    content = client.get(story.page_url).content.decode()
    b1, b2, b3 = story.b1, story.b2, story.b3
    compares = re.findall(r'href="(/compare\?[^"]+)" class="compare-previous"', content)
    assert [unescape(url) for url in compares] == [
        f"/compare?a={quote(b2.digest)}&b={quote(b3.digest)}",
        f"/compare?a={quote(b1.digest)}&b={quote(b2.digest)}",
    ]
    for build in (b1, b2, b3):
        assert f'href="/builds/{build.pk}/"' in content
        assert f'href="/versions/{build.version_id}/"' in content
        assert f'data-copy="{build.digest}"' in content
        assert f'data-copy="docker.io/library/python:3.14@{build.digest}"' in content
    assert f'href="/repositories/{story.repository.pk}/tags/3.14.1-202611201200"' in content


def test_the_header_names_the_tag_its_kind_where_it_points_and_its_other_views(client, story):
    content = client.get(story.page_url).content.decode()
    start = content.index('<header class="page-head">')
    head = content[start : content.index("</header>", start)]
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", head)).split())
    assert text.startswith(
        "docker.io/library/python · tag 3.14 tag history minor · "
        f"points to {short(story.b3)} ( 3.14.3 ) since"
    )
    assert f'href="/repositories/{story.repository.pk}/"' in head
    assert f'href="/changelog?repository={story.repository.pk}&amp;tag=3.14"' in head
    assert f'href="{story.api_url}"' in head


def test_a_tag_that_is_gone_says_so_and_where_it_last_pointed(client, story):
    TagState.objects.observe(story.tag, None, at=hours(60), poll=None, immutable=False)
    content = client.get(story.page_url).content.decode()
    assert "not in the registry's answer now" in content
    assert rows(content)[0].startswith("deleted")


def test_the_compare_with_previous_link_opens_the_comparison(client, story):
    content = client.get(story.page_url).content.decode()
    url = unescape(re.search(r'href="(/compare\?[^"]+)" class="compare-previous"', content).group(1))
    response = client.get(url)
    assert response.status_code == 200
    assert short(story.b2) in response.content.decode() and short(story.b3) in response.content.decode()


# --- the API ----------------------------------------------------------------------------------------


def test_the_api_lists_the_same_periods_with_the_documented_names(client, story):
    body = client.get(story.api_url).json()
    b1, b2, b3 = story.b1, story.b2, story.b3
    pin = "docker.io/library/python:3.14@"
    expected = [
        # digest, from, until, not_before, version, timestamp tag, kind, build, previous
        (b3, 50, None, 40, "3.14.3", None, "restored", b3),
        (None, 40, 50, 30, None, None, "untracked", b3),
        (b3, 30, 40, 20, "3.14.3", None, "moved", b2),
        (b2, 20, 30, 11, "3.14.2", None, "restored", b2),
        (None, 11, 20, 10, None, None, "deleted", b2),
        (b2, 6, 11, 5, "3.14.2", None, "moved", b1),
        (b1, 0, 6, None, "3.14.1", "3.14.1-202611201200", "created", None),
    ]
    assert body["next"] is None
    assert body["items"] == [
        {
            "digest": build.digest if build else None,
            "from": hours(since).isoformat(),
            "until": hours(until).isoformat() if until is not None else None,
            "not_before": hours(not_before).isoformat() if not_before is not None else None,
            "version": version,
            "timestamp_tag": stamp,
            "kind": kind,
            "build": build.pk if build else None,
            "previous_digest": previous.digest if previous else None,
            "pin": f"{pin}{build.digest}" if build else None,
            "signing": None,  # no build of the story is signed
        }
        for build, since, until, not_before, version, stamp, kind, previous in expected
    ]


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/repositories/999999/tags/3.14/history", "no repository with id 999999"),
        ("/repositories/{pk}/tags/3.15/history", "docker.io/library/python has no tag 3.15"),
        ("/repositories/{pk}/tags/{long}/history", "docker.io/library/python has no tag {long}"),
    ],
)
def test_the_api_answers_404_json_for_an_unknown_repository_or_tag(client, story, path, detail):
    long = "x" * 128
    response = client.get(API + path.format(pk=story.repository.pk, long=long))
    assert (response.status_code, response.json()) == (404, {"detail": detail.format(long=long)})


@pytest.mark.parametrize(
    "name",
    ["x" * 129, "-latest", ".latest", "%C3%A9", "%3Cscript%3E", "la%00test", "..", "3.14%20", "%2e%2e"],
)
def test_the_api_refuses_what_is_no_tag_name_with_a_4xx_json(client, story, name):
    response = client.get(f"{API}/repositories/{story.repository.pk}/tags/{name}/history")
    assert response.status_code in (400, 404)
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    ("limit", "status"), [("0", 400), (str(MAX_PAGE + 1), 400), ("1.0", 400), ("", 400), ("1", 200)]
)
def test_the_api_page_size_is_1_to_100(client, story, limit, status):
    response = client.get(story.api_url, {"limit": limit})
    assert response.status_code == status, response.content


def test_a_damaged_cursor_is_a_400_on_the_page_and_in_the_api(client, story):
    page = client.get(story.page_url, {"cursor": "not-a-cursor"})
    assert page.status_code == 400
    assert "damaged" in page.content.decode() and 'class="period' not in page.content.decode()
    api = client.get(story.api_url, {"cursor": "not-a-cursor"})
    assert api.status_code == 400 and api.json()["detail"].startswith("cursor:")


def test_a_private_instance_asks_for_a_sign_in(client, settings):
    story = Story()
    settings.TAGLEDGER_PUBLIC = False
    assert client.get(story.page_url).status_code == 302
    assert client.get(story.api_url).status_code == 401
    client.force_login(User.objects.create_user("reader"))
    assert client.get(story.page_url).status_code == 200
    assert client.get(story.api_url).status_code == 200


# --- paging -----------------------------------------------------------------------------------------


@pytest.fixture
def busy(public) -> Tag:
    """`latest` moved back and forth between two builds 2 * PAGE_SIZE + 20 times, an hour apart."""
    image = Image("team/app")
    builds = [image.build(image.version("1.0"), at=hours(0)), image.build(image.version("1.1"), at=hours(0))]
    for n in range(2 * PAGE_SIZE + 20):
        tag = image.tag("latest", builds[n % 2], at=hours(n))
    return tag


def test_the_api_pages_walk_every_period_once_and_each_ends_where_the_next_begins(client, busy):
    url = f"{API}/repositories/{busy.repository_id}/tags/latest/history"
    pages, cursor = [], None
    while True:
        body = client.get(url, {"cursor": cursor} if cursor else {}).json()
        pages.append(body["items"])
        cursor = body["next"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 20]
    items = [item for page in pages for item in page]
    moments = [hours(n).isoformat() for n in reversed(range(2 * PAGE_SIZE + 20))]
    assert [item["from"] for item in items] == moments
    assert [item["until"] for item in items] == [None] + [item["from"] for item in items[:-1]]
    assert [item["kind"] for item in items] == ["moved"] * (2 * PAGE_SIZE + 19) + ["created"]


def test_the_page_pages_walk_the_same_periods(client, busy):
    url = f"/repositories/{busy.repository_id}/tags/latest"
    counts = []
    while url:
        content = client.get(url).content.decode()
        counts.append(len(rows(content)))
        found = re.search(r'href="([^"]+cursor=[^"]+)" rel="next"', content)
        url = unescape(found.group(1)) if found else None
    assert counts == [PAGE_SIZE, PAGE_SIZE, 20]
    assert "Newest changes" in content


def test_limit_takes_up_to_a_hundred_and_the_reader_pages_the_same(client, busy):
    body = client.get(f"{API}/repositories/{busy.repository_id}/tags/latest/history", {"limit": "100"}).json()
    assert len(body["items"]) == 100
    reader = tag_history(busy, size=100)
    assert [row.event.pk for row in reader.rows] == [
        TagEvent.objects.get(tag=busy, detected_at=item["from"]).pk for item in body["items"]
    ]


# --- hostile names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "3.15",  # a valid name no tag has
        "x" * 128,
        "x" * 129,
        "..",
        "%2e%2e",
        "..%2F..%2Fadmin",
        "3.14/",
        "3.14/history",
        "-3.14",
        ".3.14",
        "3.14%20",
        "%C3%A9",
        "é",
        "la%00test",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        '"><img src=x onerror=alert(1)>',
    ],
)
def test_anything_but_a_known_tag_is_a_clean_404(client, story, name):
    response = client.get(f"/repositories/{story.repository.pk}/tags/{name}")
    assert response.status_code == 404
    assert b"<script" not in response.content and b"<img" not in response.content


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999999"])
def test_an_unknown_repository_is_a_404(client, story, pk):
    assert client.get(f"/repositories/{pk}/tags/3.14").status_code == 404


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=200))  # an empty one matches no route: the router's 404
def test_any_text_as_a_tag_name_is_a_page_or_a_404_and_a_json_answer(client, story, name):
    known = name in ("3.14", "3.14.1-202611201200")
    segment = quote(name, safe="")
    page = client.get(f"/repositories/{story.repository.pk}/tags/{segment}")
    assert page.status_code == (200 if known else 404)
    api = client.get(f"{API}/repositories/{story.repository.pk}/tags/{segment}/history")
    assert api.status_code in ((200,) if known else (400, 404))
    # A `/` (%2F is decoded before routing) takes the path out of the API's routes: Django's 404.
    assert "/" in name or api["Content-Type"].startswith("application/json")


# --- links to the page ------------------------------------------------------------------------------


def test_tag_chips_on_the_other_pages_lead_to_the_tag_page(client, story):
    here = f'href="/repositories/{story.repository.pk}/tags/3.14"'
    version_page = client.get(f"/versions/{story.b3.version_id}/").content.decode()
    build_page = client.get(f"/builds/{story.b3.pk}/").content.decode()
    changelog = client.get("/changelog", {"repository": story.repository.pk, "tag": "3.14"}).content.decode()
    compare = client.get("/compare", {"a": story.b2.digest, "b": story.b3.digest}).content.decode()
    search = client.get("/search", {"q": story.b3.digest}).content.decode()
    for content in (version_page, build_page, changelog, compare, search):
        assert here in content
