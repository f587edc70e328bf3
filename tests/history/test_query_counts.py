"""Every read page costs a fixed number of queries, whatever the amount of history behind it.

Each test counts one page's queries on a small history, grows that history tenfold (more
builds, tags, events and repositories) and counts again: an N+1 would show as a difference.
bench/pages.py measures the same pages on 1 M builds.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Line, Registry, Repository, Tag, Version
from catalog.tags import classify
from history.changelog import ChangelogFilter, page
from history.models import Build, Platform, TagState
from history.tag_history import tag_history
from history.versions import digest_history

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

START = datetime(2026, 1, 1, tzinfo=UTC)
LAYER = "sha256:" + "1a" * 32  # a base layer every platform shares
SMALL = 6  # builds of the one version; the large history has ten times as many, in ten repositories


class History:
    """Repositories of one version rebuilt again and again: each build is a two-platform index
    with its own timestamp tag, and moves the version tag and `latest` (three events a build).
    Every digest starts with `beef`, so a short prefix finds as many builds as there are."""

    def __init__(self):
        self.registry = Registry.objects.create(host="registry.example")
        self.repositories: list[Repository] = []
        self.builds = 0

    def grow(self, repositories: int, builds_each: int) -> None:
        for _ in range(repositories):
            repository = Repository.objects.create(
                registry=self.registry, name=f"team/app{len(self.repositories)}"
            )
            self.repositories.append(repository)
            line = Line.objects.create(repository=repository, name="3.14")
            version = Version.objects.create(repository=repository, line=line, name="3.14.4")
            for _ in range(builds_each):
                self._build(repository, version)

    def _build(self, repository: Repository, version: Version) -> None:
        self.builds += 1
        at = START + timedelta(hours=self.builds)
        build = Build.objects.create(
            repository=repository, digest=self.digest("0"), size=500, version=version, built_at=at,
            first_seen_at=at, media_type="application/vnd.oci.image.index.v1+json",
        )  # fmt: skip
        for role, config, architecture in (("1", "c", "amd64"), ("2", "d", "arm64")):
            Platform.objects.create(
                build=build, os="linux", architecture=architecture, digest=self.digest(role),
                media_type="application/vnd.oci.image.manifest.v1+json", config_digest=self.digest(config),
                size=1000, layers=[{"digest": self.digest("a"), "size": 900, "media_type": "tar"},
                                  {"digest": LAYER, "size": 9, "media_type": "tar"}],
                config={"env": [f"BUILD={self.builds}"], "labels": {"n": str(self.builds)}},
            )  # fmt: skip
        for name in (f"3.14.4-{at:%Y%m%d%H%M}", "3.14.4", "latest"):
            info = classify(name)
            tag, _ = Tag.objects.get_or_create(
                repository=repository, name=name, defaults={"kind": info.kind.value, "version": info.version}
            )
            TagState.objects.observe(tag, build, at=at, poll=None, immutable=info.is_immutable)

    def ten_times(self) -> None:
        """Ten times the builds in the first repository's version, and nine more repositories."""
        first = self.repositories[0]
        version = Version.objects.get(repository=first)
        for _ in range(SMALL * 9):
            self._build(first, version)
        self.grow(repositories=9, builds_each=SMALL)
        assert Build.objects.filter(version=version).count() == SMALL * 10

    def digest(self, role: str) -> str:
        """`role` is one hex digit, so builds, platforms and configs never share a digest."""
        return f"sha256:beef{role}{self.builds:059x}"


@pytest.fixture
def history():
    history = History()
    history.grow(repositories=1, builds_each=SMALL)
    return history


def queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [query["sql"] for query in captured.captured_queries]


def assert_same_count_when_ten_times_larger(client, history: History, url_of) -> None:
    """`url_of()` is called on each size, so it can name rows of either."""
    small = queries(client, url_of())
    history.ten_times()
    large = queries(client, url_of())
    assert len(large) == len(small), "\n".join(large)


def first_version(history: History) -> Version:
    return Version.objects.get(repository=history.repositories[0])


def test_changelog_first_page(client, history):
    assert_same_count_when_ten_times_larger(client, history, lambda: "/changelog")


def test_changelog_deep_page(client, history):
    def url():
        cursor = page(ChangelogFilter(), None, size=10).next_cursor
        return f"/changelog?cursor={cursor.encode()}"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_repository_changelog(client, history):
    assert_same_count_when_ten_times_larger(
        client, history, lambda: f"/repositories/{history.repositories[0].pk}/changelog"
    )


def test_version_page(client, history):
    assert_same_count_when_ten_times_larger(
        client, history, lambda: f"/versions/{first_version(history).pk}/"
    )


def test_repository_page(client, history):
    assert_same_count_when_ten_times_larger(
        client, history, lambda: f"/repositories/{history.repositories[0].pk}/"
    )


def test_build_page(client, history):
    def url():
        middle = Build.objects.filter(version=first_version(history)).order_by("pk")[SMALL // 2]
        return f"/builds/{middle.pk}/"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_compare_page(client, history):
    def url():
        older, newer = Build.objects.filter(version=first_version(history)).order_by("pk")[:2]
        return f"/compare?a={older.digest}&b={newer.digest}"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_compare_page_of_bare_tags_and_a_date(client, history):
    url = "/compare?a=3.14.4&a_at=2026-01-01T03:00:00Z&b=latest&repository=team/app0"
    assert_same_count_when_ten_times_larger(client, history, lambda: url)
    assert b"<h2>Summary</h2>" in client.get(url).content  # both sides named a build


def test_compare_picker(client, history):
    def url():
        version = first_version(history)
        repository = version.repository_id
        return f"/compare?a_repository={repository}&a_version={version.pk}&b_repository={repository}"

    assert_same_count_when_ten_times_larger(client, history, url)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda: Platform.objects.order_by("pk").first().config_digest[7:19], id="image-id"),
        pytest.param(lambda: Build.objects.order_by("pk").first().digest, id="full-digest"),
        pytest.param(lambda: "beef", id="prefix-matching-every-build"),
        pytest.param(lambda: "3.14.4", id="name"),
        pytest.param(lambda: LAYER, id="layer-in-every-build"),
        pytest.param(lambda: "team/app0:latest", id="reference-without-host"),
        pytest.param(
            lambda: f"app0@{Build.objects.order_by('pk').first().digest}", id="short-name-and-digest"
        ),
    ],
)
def test_search_page(client, history, query):
    assert_same_count_when_ten_times_larger(client, history, lambda: f"/search?q={query()}")


def test_api_digest_history_page(client, history):
    """A page of builds costs the same at 6 builds as at 60, and as deep in the history."""

    def url():
        version = first_version(history)
        return f"/api/v1/repositories/{version.repository_id}/versions/{version.name}/builds?limit=4"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_api_digest_history_deep_page(client, history):
    def url():
        version = first_version(history)
        third = digest_history(version, size=3).next_cursor.encode()
        path = f"/api/v1/repositories/{version.repository_id}/versions/{version.name}/builds"
        return f"{path}?limit=2&cursor={third}"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_tag_page(client, history):
    """`latest` moved with every build: a page of its history costs the same at 6 moves as at 60."""

    def url():
        return f"/repositories/{history.repositories[0].pk}/tags/latest"

    assert_same_count_when_ten_times_larger(client, history, url)


def test_api_tag_history_deep_page(client, history):
    def url():
        tag = Tag.objects.get(repository=history.repositories[0], name="latest")
        second = tag_history(tag, size=2).next_cursor.encode()
        return f"/api/v1/repositories/{tag.repository_id}/tags/latest/history?limit=3&cursor={second}"

    assert_same_count_when_ten_times_larger(client, history, url)
