"""The repository page: lines of versions, one row per version and variant at its current build,
the tags no rule explains, every tag a page at a time; and the API doors onto the same readers."""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Tag, Version
from history.keyset import BAD_CURSOR, Cursor, NameCursor
from history.lines import KIND_ORDER, OTHERS_SHOWN, ROW_BUDGET, SMALL, TAG_PAGE, version_rows
from history.models import Build, TagState, with_activity
from tests.history.factories import Image

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

NOW = timezone.now()
API = "/api/v1"


@pytest.fixture(autouse=True)
def _inactive_after_90_days(settings):
    settings.TAGLEDGER_INACTIVE_AFTER_DAYS = 90


def days_ago(days: float):
    return NOW - timedelta(days=days)


def page(client, image: Image, **params):
    response = client.get(f"/repositories/{image.repository.pk}/", params)
    assert response.status_code == 200, response.content[:2000]
    return response


def text(html: str) -> str:
    """Visible text, whitespace collapsed: what a person reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def rows(response) -> list[str]:
    """Each version row's visible text, in page order."""
    return [text(row) for row in re.findall(r'<tr class="row[^"]*">.*?</tr>', response.content.decode())]


@dataclass
class ParsedRow:
    name: str
    channels: list[str]
    variant: str
    tags: list[str]
    digest: str


def parsed(content: str) -> list[ParsedRow]:
    """The version rows of a page, read back from its markup."""
    found = []
    for row in re.findall(r'<tr class="row[^"]*">.*?</tr>', content):
        head, variant, tags, build, _ = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        found.append(
            ParsedRow(
                re.search(r">([^<]+)</a>", head).group(1),
                re.findall(r'class="channel">([^<]+)<', head),
                re.sub(r"<[^>]+>", "", variant).replace("default", ""),
                re.findall(r'class="tag[^"]*" href="[^"]+">([^<]+)<', tags),
                (re.search(r'title="([^"]+)"', build) or re.search("()", "")).group(1),
            )
        )
    return found


def short(build: Build) -> str:
    return build.digest[7:19]


@pytest.fixture
def python():
    """3.14.4 in three variants and rebuilt once, an older 3.13.9, and a 3.15 beta."""
    image = Image("library/python")
    image.release("3.14.4", "", "3.14.4", "3.14", "3", "latest", "stable", at=days_ago(3))
    image.release("3.14.4", "", "3.14.4", "3.14", "3", "latest", "stable", at=days_ago(1))
    image.release("3.14.4", "slim", "3.14.4-slim", "3.14-slim", "slim", "stable-slim", at=days_ago(1))
    image.release("3.14.4", "alpine", "3.14.4-alpine", "3.14-alpine", "alpine", at=days_ago(1))
    image.release("3.13.9", "", "3.13.9", "3.13", at=days_ago(2))
    image.release("3.15.0b1", "", "3.15.0b1", at=days_ago(1))
    return image


# --- rows ---------------------------------------------------------------------------------------


def test_each_version_and_variant_is_one_row_with_its_tags_current_build_and_build_count(client, python):
    newest = Build.objects.filter(version__name="3.14.4", version__variant="").latest("first_seen_at")
    response = page(client, python)
    assert rows(response) == [
        "3.15.0b1 default 3.15.0b1 " + short(Build.objects.get(version__name="3.15.0b1")) + " 1 build",
        f"3.14.4 stable default latest stable 3.14.4 3.14 3 {short(newest)} 2 builds",
        "3.14.4 alpine 3.14.4-alpine 3.14-alpine alpine "
        + short(Build.objects.get(version__variant="alpine"))
        + " 1 build",
        "3.14.4 stable slim stable-slim 3.14.4-slim 3.14-slim slim "
        + short(Build.objects.get(version__variant="slim"))
        + " 1 build",
        "3.13.9 default 3.13.9 3.13 " + short(Build.objects.get(version__name="3.13.9")) + " 1 build",
    ]


def test_each_tag_links_to_its_history_and_the_version_name_to_the_version_history(client, python):
    version = Version.objects.get(repository=python.repository, name="3.14.4", variant="slim")
    build = Build.objects.get(version=version)
    content = page(client, python).content.decode()
    row = next(row for row in re.findall(r'<tr class="row[^"]*">.*?</tr>', content) if ">slim<" in row)
    tags = f"/repositories/{python.repository.pk}/tags/"
    assert re.findall(r'href="([^"]+)"', row) == [
        f"/versions/{version.pk}/",
        *(tags + name for name in ("stable-slim", "3.14.4-slim", "3.14-slim", "slim")),
        f"/builds/{build.pk}/",
        f"/versions/{version.pk}/",
    ]


def test_versions_sort_as_versions_within_a_line(client):
    image = Image("team/app")
    for name in ("1.9.0", "1.10.0", "1.10.0-rc1", "1.2.0"):
        image.release(name, "", name, at=days_ago(1))
    assert [row.split()[0] for row in rows(page(client, image))] == ["1.10.0", "1.10.0-rc1", "1.9.0", "1.2.0"]


def test_a_channel_badge_shows_once_on_the_row_it_points_into_and_once_on_its_line(client):
    image = Image("library/node")
    image.release("22.11.0", "", "22.11.0", "current", "lts", at=days_ago(1))
    image.release("22.11.0", "alpine", "22.11.0-alpine", "current-alpine", "lts-alpine", at=days_ago(1))
    image.release("22.11.0", "slim", "22.11.0-slim", "current-slim", at=days_ago(1))
    content = page(client, image).content.decode()
    assert [(row.variant, row.channels) for row in parsed(content)] == [
        ("", ["current", "lts"]), ("alpine", ["current", "lts"]), ("slim", ["current"]),
    ]  # fmt: skip
    summary = re.search(r"<summary>.*?</summary>", content, re.S).group(0)
    assert re.findall(r'class="channel">(\w+)<', summary) == ["current", "lts"]


def test_inactive_versions_are_folded_below_the_active_ones(client):
    image = Image("team/app")
    image.release("2.1.0", "", "2.1.0", "2.1", at=days_ago(400))  # a floating tag keeps it active
    image.release("2.0.1", "", "2.0.1", at=days_ago(10))
    image.release("2.0.0", "", "2.0.0", at=days_ago(400))
    content = page(client, image).content.decode()
    folded = content.index('<details class="inactive-rows"')
    assert content.index(">2.1.0<") < content.index(">2.0.1<") < folded < content.index(">2.0.0<")
    assert "1 inactive version" in text(content)


# --- the current build ----------------------------------------------------------------------------


def test_a_version_named_by_a_label_is_where_the_tag_spelled_like_it_points(client):
    """A `main` branch image: the version comes from its `org.opencontainers.image.version` label,
    and `main` moved on to a build that never got a version (its label was not read)."""
    image = Image("acme/api")
    main = image.version("main")
    old = image.build(main, at=days_ago(5))
    image.tag("sha-bd9c186", old)
    image.tag("main", old)
    moved = image.build(None, at=days_ago(1))
    image.tag("sha-b266d12", moved)
    image.tag("main", moved)

    assert rows(page(client, image)) == [f"main default main sha-b266d12 {short(moved)} 1 build"]
    versions = client.get(f"{API}/repositories/{image.repository.pk}/versions").json()
    assert [(v["version"], v["current_digest"], v["tags"]) for v in versions] == [
        ("main", moved.digest, ["main", "sha-b266d12"])
    ]


def test_the_exact_tag_decides_even_when_a_newer_build_of_the_version_is_tagged(client):
    image = Image("chainguard/python")
    current = image.release("3.14.4", "dev", "3.14.4-dev", "3.14.4-dev-202611261200", at=days_ago(2))
    image.release("3.14.4", "dev", "3.14.4-dev-202611271200", at=days_ago(1))  # built, not released
    assert rows(page(client, image)) == [
        f"3.14.4 dev 3.14.4-dev 3.14.4-dev-202611261200 {short(current)} 2 builds"
    ]


def test_of_several_naming_tags_the_newest_build_wins(client):
    image = Image("wolfi/curl")
    image.release("8.11.0", "", "8.11.0-r0", at=days_ago(3))
    newer = image.release("8.11.0", "", "8.11.0-r1", "8.11.0", at=days_ago(1))
    assert rows(page(client, image))[0].startswith(f"8.11.0 default 8.11.0 8.11.0-r1 {short(newer)}")


def test_without_a_naming_tag_a_version_is_at_its_newest_build_a_tag_points_to(client):
    image = Image("vendor/nightly")
    image.release("1.0.0", "", "1.0.0-202611251200", at=days_ago(3))
    newest = image.release("1.0.0", "", "1.0.0-202611261200", at=days_ago(2))
    image.build(image.version("1.0.0"), at=days_ago(1))  # no tag points here any more
    assert rows(page(client, image)) == [f"1.0.0 default 1.0.0-202611261200 {short(newest)} 3 builds"]


# --- tags no rule explains ----------------------------------------------------------------------


def test_tags_not_understood_are_listed_by_name_and_make_no_rows(client):
    image = Image("library/debian", depth=1)
    build = image.release("12.8", "", "12.8", at=days_ago(1))
    loose = image.build(None, at=days_ago(1))
    for name in ("pr-10", "bookworm", "pr-9", "bookworm-slim"):
        image.tag(name, build if name.startswith("bookworm") else loose, kind="other", version="", variant="")
    response = page(client, image)
    content = response.content.decode()
    section = content[content.index('class="not-understood"') : content.index('id="tags"')]
    tags = f"/repositories/{image.repository.pk}/tags/"
    assert re.findall(r'<a class="tag" href="([^"]+)">([^<]+)</a>', section) == [
        (tags + name, name)
        for name in ("bookworm", "bookworm-slim", "pr-10", "pr-9")  # by name, as the list
    ]
    assert [row.split()[0] for row in rows(response)] == ["12.8"]


def test_the_not_understood_list_is_bounded(client):
    image = Image("acme/branches")
    build = image.build(None)
    for number in range(OTHERS_SHOWN + 5):
        image.tag(f"pr-{number}", build, kind="other", version="", variant="")
    content = page(client, image).content.decode()
    section = content[content.index('class="not-understood"') : content.index('id="tags"')]
    assert section.count('class="tag"') == OTHERS_SHOWN
    assert f"{OTHERS_SHOWN + 5} tags no naming rule explains" in text(section)


# --- the filter ---------------------------------------------------------------------------------


def test_the_filter_keeps_the_rows_and_tags_containing_it_and_marks_them(client, python):
    response = page(client, python, q="alpine")
    assert [row.split()[:2] for row in rows(response)] == [["3.14.4", "alpine"]]
    content = response.content.decode()
    assert '<a class="tag match" href=' in content and ">3.14.4-alpine</a>" in content
    tags = content[content.index('id="tags"') :]
    assert sorted(re.findall(r'class="tag" href="[^"]+">([^<]+)<', tags)) == [
        "3.14-alpine", "3.14.4-alpine", "alpine",
    ]  # fmt: skip
    # The page's filter box and the tags list's (one `q`) keep it; the header's search box does not.
    boxes = re.findall(r'id="([^"]+)" type="search" name="q" value="alpine"', content)
    assert boxes == ["tag-filter", "tags-filter"]
    assert content.count('value="alpine"') == 2


def test_a_filter_that_is_not_part_of_a_tag_name_is_a_400_saying_why(client, python):
    response = client.get(f"/repositories/{python.repository.pk}/", {"q": "<b>x</b>"})
    assert response.status_code == 400
    assert "q: filter by part of a tag name" in text(response.content.decode())
    assert "<b>x</b>" not in response.content.decode()


# --- escaping -------------------------------------------------------------------------------------


def test_hostile_names_from_a_registry_are_shown_as_text(client):
    image = Image("acme/hostile")
    hostile = '<script>alert("v")</script>'
    labelled = image.version(hostile)
    build = image.build(labelled, at=days_ago(1))
    image.tag('"><img src=x onerror=alert(1)>', build, kind="other", version="", variant="")
    image.tag("1.0.0", build, kind="exact", version="1.0.0", variant="<i>v</i>")
    content = page(client, image).content.decode()
    assert "<script>alert" not in content and "<img src=x" not in content and "<i>v</i>" not in content
    assert "&lt;script&gt;alert(&quot;v&quot;)&lt;/script&gt;" in content
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in content


# --- size ---------------------------------------------------------------------------------------


def php_like(lines: int = 4, patches: int = 12, variants: int = 14, name: str = "library/php") -> Image:
    """Lines of patch releases in many variants: only the newest patch of each line is active."""
    image = Image(name)
    flavours = [""] + [f"flavour{index:02d}" for index in range(1, variants)]
    for major in range(8, 8 - lines, -1):
        for patch in range(patches):
            name = f"8.{major}.{patch}"
            age = 1 if patch == patches - 1 else 200 + patch
            for flavour in flavours:
                suffix = f"-{flavour}" if flavour else ""
                tags = [f"{name}{suffix}"] + ([f"8.{major}{suffix}"] if age == 1 else [])
                image.release(name, flavour, *tags, at=days_ago(age))
    latest = Build.objects.get(
        repository=image.repository, version__name=f"8.8.{patches - 1}", version__variant=""
    )
    image.tag("latest", latest)
    return image


def test_a_large_repository_opens_its_newest_line_and_says_what_the_others_hold(client):
    image = php_like()
    content = page(client, image).content.decode()
    assert content.count('<details class="line') == 4
    assert [(row.name, row.variant) for row in parsed(content)] == [("8.8.11", "")] + [
        ("8.8.11", f"flavour{index:02d}") for index in range(1, 14)
    ], "the active versions of the newest line"
    assert re.search(r'<details class="line" id="line-8.7" hx-get="[^"]+line=8.7"', content), (
        "a closed line loads itself when opened"
    )
    assert "168 versions in 14 variants, 154 inactive · newest 8.7.11" in text(content)
    assert re.search(r'<details class="inactive-rows" hx-get="[^"]+line=8.8&amp;inactive=1"', content), (
        "inactive versions load when unfolded"
    )
    assert "Show the 154 inactive versions of 8.8" in text(content)
    for section, asked in (("others", "others=1"), ("tags", "tags=1")):
        folded = re.search(
            rf'<section class="[^"]*folded" id="{section}">.*?</section>', content, re.S
        ).group(0)
        assert f"{asked}#{section}" in folded and "hx-get" in folded, f"{section} folded, loaded when opened"


def test_a_large_repository_shows_its_tags_and_not_understood_tags_when_asked(client):
    image = php_like()
    image.tag("feature-x", image.build(None), kind="other", version="", variant="")
    content = page(client, image, others="1", tags="1").content.decode()
    assert '<section class="folded"' not in content
    assert "1 tag no naming rule explains" in text(content)
    tags = content[content.index('id="tags"') :]
    names = sorted(Tag.objects.filter(repository=image.repository).values_list("name", flat=True))
    assert re.findall(r'class="tag" href="[^"]+">([^<]+)<', tags) == names[:TAG_PAGE]


def test_a_closed_line_and_its_inactive_versions_open_by_link_and_by_htmx(client):
    image = php_like()
    url = f"/repositories/{image.repository.pk}/"
    linked = page(client, image, line="8.7")
    assert {row.name for row in parsed(linked.content.decode())} == {"8.7.11", "8.8.11"}

    fragment = client.get(url, {"line": "8.7"}, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<details class="line" id="line-8.7" open>')
    assert "<html" not in fragment and {row.name for row in parsed(fragment)} == {"8.7.11"}

    unfolded = client.get(url, {"line": "8.7", "inactive": "1"}, headers={"HX-Request": "true"})
    names = [row.name for row in parsed(unfolded.content.decode())]
    assert names == [name for name in (f"8.7.{patch}" for patch in range(11, -1, -1)) for _ in range(14)]


def test_rows_rendered_stay_within_the_budget_whatever_a_filter_matches(client):
    image = php_like()
    response = page(client, image, q="8")
    assert 14 * 12 <= len(rows(response)) <= ROW_BUDGET + 14 * 12


def count_queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, headers=headers).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/repositories/{id}/",
        "/repositories/{id}/?q=flavour01",
        "/repositories/{id}/?line=8.7",
        "/repositories/{id}/?others=1&tags=1",
        "/repositories/{id}/?tags=1&sort=changed",
        f"{API}/repositories/{{id}}/tags",
        f"{API}/repositories/{{id}}/tags?sort=changed",
        f"{API}/repositories/{{id}}/versions",
    ],
)
def test_the_query_count_does_not_grow_with_versions_variants_or_tags(client, url):
    small = php_like(lines=2, patches=2, variants=11, name="small/php")  # past SMALL: folded too
    assert Version.objects.filter(repository=small.repository).count() > SMALL
    few = count_queries(client, url.format(id=small.repository.pk))
    large = php_like(lines=4, patches=6, variants=14, name="large/php")
    assert count_queries(client, url.format(id=large.repository.pk)) == few


# --- the tags list and the API ------------------------------------------------------------------


def test_api_tags_come_a_page_at_a_time_by_name(client, python):
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{API}/repositories/{python.repository.pk}/tags", params).json()
        assert set(body) == {"items", "next"}
        seen += body["items"]
        cursor = body["next"]
        if cursor is None:
            break
    names = [tag["name"] for tag in seen]
    assert names == sorted(set(names)) and len(names) == 15
    assert set(seen[0]) == {"name", "kind", "version", "variant", "digest", "since"}


def test_the_page_lists_the_same_tags_as_the_api_and_pages_with_its_cursor(client, python, monkeypatch):
    monkeypatch.setattr("history.lines.TAG_PAGE", 5)
    api = client.get(f"{API}/repositories/{python.repository.pk}/tags", {"limit": 5}).json()
    content = page(client, python).content.decode()
    tags = content[content.index('id="tags"') :]
    assert re.findall(r'class="tag" href="[^"]+">([^<]+)<', tags) == [tag["name"] for tag in api["items"]]
    assert f"cursor={api['next']}#tags" in tags
    second = page(client, python, cursor=api["next"]).content.decode()
    following = client.get(
        f"{API}/repositories/{python.repository.pk}/tags", {"limit": 5, "cursor": api["next"]}
    ).json()
    assert re.findall(r'class="tag" href="[^"]+">([^<]+)<', second[second.index('id="tags"') :]) == [
        tag["name"] for tag in following["items"]
    ]


@pytest.mark.parametrize("limit", [1, 5, 200])
def test_a_page_by_kind_costs_one_query_per_kind_at_most_whatever_the_number_of_tags(client, mixed, limit):
    """Each kind's tags are an index range of `tag_repository_kind`; a page reads kind after kind
    until it is full, and a cursor costs one query more to find its tag's kind."""
    for image in (mixed, php_like(lines=2, patches=3, variants=4)):
        url = f"{API}/repositories/{image.repository.pk}/tags?sort=kind&limit={limit}"
        by_name = count_queries(client, f"{API}/repositories/{image.repository.pk}/tags?limit={limit}")
        assert by_name <= count_queries(client, url) <= by_name - 1 + len(KIND_ORDER)
        if following := client.get(url).json()["next"]:
            assert count_queries(client, f"{url}&cursor={following}") <= by_name + len(KIND_ORDER)


def api_tags(client, image: Image, **params) -> list[str]:
    """Every tag name the API lists, page after page with its cursor."""
    seen, cursor = [], None
    while True:
        asked = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"{API}/repositories/{image.repository.pk}/tags", asked)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [tag["name"] for tag in body["items"]]
        if (cursor := body["next"]) is None:
            return seen


def page_tags(client, image: Image, **params) -> list[str]:
    """Every tag name the page lists, following its "Next tags" links."""
    seen, url = [], f"/repositories/{image.repository.pk}/?" + "&".join(f"{k}={v}" for k, v in params.items())
    while url:
        content = client.get(url.replace("&amp;", "&")).content.decode()
        tags = content[content.index('<section id="tags"') :]
        seen += re.findall(r'class="tag" href="[^"]+">([^<]+)<', tags)
        url = (re.search(r'<a href="([^"]+)#tags" rel="next">', tags) or re.search("()", "")).group(1)
    return seen


def by_rule(image: Image, sort: str, q: str = "") -> list[str]:
    """The order each sort promises, worked out from the stored rows rather than by the reader."""
    states = TagState.objects.filter(tag__repository=image.repository, present=True, tag__name__icontains=q)
    listed = states.exclude(tag__kind="artifact")
    found = list(listed.values_list("tag__name", "tag__kind", "since", "tag_id"))
    if sort == "changed":
        found.sort(key=lambda tag: (tag[2], tag[3]), reverse=True)
    else:
        found.sort(key=lambda tag: (KIND_ORDER[tag[1]], tag[0]) if sort == "kind" else tag[0])
    return [name for name, *_ in found]


@pytest.fixture
def mixed():
    """Tags of every listed kind, moved at different times, several on one build (one `since`),
    and a signature, which no order lists."""
    image = Image("acme/mixed")
    older = image.release("1.2.3", "", "1.2.3", "1.2", "1", "stable", "1.2.3-202601010000", at=days_ago(9))
    image.release("1.2.4", "", "1.2.4", "1.2.4-r1", "1.2", "1", "latest", at=days_ago(2))
    for index in range(7):
        image.tag(f"sha-{index:03x}", older, at=days_ago(5 - index / 2))
    image.tag(f"sha256-{'a' * 64}.sig", older, at=days_ago(1))
    return image


@pytest.mark.parametrize("sort", ["name", "changed", "kind"])
@pytest.mark.parametrize("q", ["", "1.2", "sha"])
@pytest.mark.parametrize("limit", [1, 3, 50])
def test_the_tags_list_sorts_by_name_change_or_kind_and_pages_without_gaps_or_repeats(
    client, mixed, sort, q, limit
):
    assert api_tags(client, mixed, sort=sort, q=q, limit=limit) == by_rule(mixed, sort, q)


@pytest.mark.parametrize("sort", ["name", "changed", "kind"])
def test_the_page_pages_through_the_same_order_as_the_api(client, mixed, sort, monkeypatch):
    monkeypatch.setattr("history.lines.TAG_PAGE", 4)
    assert page_tags(client, mixed, tags=1, sort=sort) == by_rule(mixed, sort)
    content = page(client, mixed, tags=1, sort=sort).content.decode()
    assert f'<option value="{sort}" selected>' in content
    # The sort rides along on the page's other links, and the page's filter keeps it.
    if sort != "name":
        assert f"sort={sort}&amp;cursor=" in content and f'name="sort" value="{sort}">' in content


def test_a_page_by_kind_continues_after_a_tag_the_next_poll_deleted(client, mixed):
    first = client.get(f"{API}/repositories/{mixed.repository.pk}/tags", {"sort": "kind", "limit": 3}).json()
    assert [tag["name"] for tag in first["items"]] == ["latest", "stable", "1.2.3"]
    Tag.objects.filter(repository=mixed.repository, name="1.2.3").delete()
    rest = client.get(
        f"{API}/repositories/{mixed.repository.pk}/tags", {"sort": "kind", "cursor": first["next"]}
    ).json()
    assert [tag["name"] for tag in rest["items"]] == by_rule(mixed, "kind")[2:]


@pytest.mark.parametrize(
    "params, error",
    [
        ({"sort": "since"}, "sort"),
        ({"sort": "<script>"}, "sort"),
        ({"sort": "name\x00"}, "sort"),
        ({"sort": "changed", "cursor": NameCursor("latest").encode()}, "cursor"),  # a page by name's next
        ({"sort": "kind", "cursor": Cursor(NOW, 1).encode()}, "cursor"),
        ({"sort": "changed", "cursor": "MjAyNi0xMS0yNnwx"}, "cursor"),  # no time zone: not encode()'s
        ({"sort": "kind", "cursor": NameCursor("../../x").encode()}, "cursor"),
    ],
)
def test_a_sort_or_cursor_the_list_does_not_know_is_a_400_saying_why(client, mixed, params, error):
    api = client.get(f"{API}/repositories/{mixed.repository.pk}/tags", params)
    assert api.status_code == 400 and api.json()["detail"].startswith(f"{error}: "), api.content
    response = client.get(f"/repositories/{mixed.repository.pk}/", params)
    assert response.status_code == 400
    content = response.content.decode()
    assert f"{error}: " in text(content) and "<script>" not in content
    if error == "cursor":
        assert BAD_CURSOR in text(content)


def test_an_unknown_sort_on_the_api_names_the_three_it_takes(client, mixed):
    response = client.get(f"{API}/repositories/{mixed.repository.pk}/tags", {"sort": "since"})
    assert response.status_code == 400
    assert all(sort in response.json()["detail"] for sort in ("name", "changed", "kind"))


@pytest.mark.parametrize("cursor", ["garbage", "MjAyNi0xMS0yNnwx" + "x", "!!", "a" * 150])
def test_a_bad_cursor_is_a_400_on_the_api_and_the_page(client, python, cursor):
    response = client.get(f"{API}/repositories/{python.repository.pk}/tags", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor: ")
    assert client.get(f"/repositories/{python.repository.pk}/", {"cursor": cursor}).status_code == 400


def test_api_versions_are_the_page_rows(client, python):
    versions = client.get(f"{API}/repositories/{python.repository.pk}/versions").json()
    assert [(v["version"], v["variant"], v["tags"], v["current_digest"]) for v in versions] == [
        (row.name, row.variant, row.tags, row.digest) for row in parsed(page(client, python).content.decode())
    ]


def test_inactive_on_the_page_is_the_with_activity_rule(client):
    """The page computes inactivity from one scan of moving tags instead of a subquery per version:
    it must agree with `history.models.with_activity`, the rule's definition, case by case."""
    image = Image("team/rules")
    image.release("4.0.0", "", "4.0.0", "latest", at=days_ago(1))  # recent
    image.release("3.2.0", "", "3.2.0", "3.2", at=days_ago(200))  # old, a floating tag in
    image.release("3.1.0", "", "3.1.0", at=days_ago(200))  # old, nothing floating: inactive
    image.release("3.0.0", "", "3.0.0", "stable", at=days_ago(200))  # old, a channel in
    image.release("2.5", "", "2.5", at=days_ago(200))  # old, only its own (minor-shaped) name
    old = image.release("2.4.0", "", "2.4.0", at=days_ago(200))
    old.built_at = days_ago(400)
    old.save()
    image.version("1.0.0")  # no build at all
    expected = {
        version.name: version.inactive
        for version in with_activity(Version.objects.filter(repository=image.repository))
    }
    assert {row.name: row.inactive for row in version_rows(image.repository)} == expected
    assert sorted(name for name, inactive in expected.items() if inactive) == ["2.4.0", "2.5", "3.1.0"]


def test_a_line_of_pre_releases_only_is_marked_so_it_is_not_taken_for_the_newest_release(client):
    image = Image("demo/postgres", depth=1)
    image.release("18.3", "", "18.3", "18", "latest")
    image.release("19beta3", "", "19beta3")
    html = client.get(f"/repositories/{image.repository.pk}/").content.decode()
    marked = re.findall(
        r'id="line-(\w+)".*?<span class="line-name">\w+</span>\s*(<span class="channel prerelease")?',
        html,
        flags=re.S,
    )
    assert {name: bool(flag) for name, flag in marked} == {"19": True, "18": False}


def test_tags_the_patterns_no_longer_take_are_listed_as_not_tracked_and_nowhere_current(client):
    image = Image("library/python")
    image.release("3.14.4", "", "3.14.4", "latest")
    image.release("3.13.9", "", "3.13.9")
    repository = image.repository
    repository.exclude_pattern = r"^3\.13"
    repository.save()
    TagState.objects.untrack([Tag.objects.get(name="3.13.9")], at=timezone.now(), poll=None)

    shown = text(page(client, image).content.decode())

    assert "Not tracked any more 1 tag no longer matches this repository's include or exclude" in shown
    assert re.search(r"history recorded before is kept\. 3\.13\.9 Tags", shown)
    tags = client.get(f"{API}/repositories/{repository.pk}/tags").json()["items"]
    assert [tag["name"] for tag in tags] == ["3.14.4", "latest"]


def test_a_repository_without_patterns_shows_no_untracked_section(client):
    image = Image("library/python")
    image.release("3.14.4", "", "3.14.4")

    assert "Not tracked" not in text(page(client, image).content.decode())
