"""Repository, version, build and search pages, on data from real polls of the real registry."""

import re

import pytest

from catalog.models import Version
from history.models import Build
from history.polling import poll
from tests.history.factories import watch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]


@pytest.fixture
def python(registry, pusher, repo_name):
    """3.14.4 with its floating tags and a dev variant, an older 3.13.9, rebuilt once."""
    pusher.push(repo_name, "3.13.9", "docker-list", seed="3.13.9")
    pusher.push(
        repo_name, "3.14.4", "oci-index", seed="day1", labels={"org.example": "<script>alert(1)</script>"}
    )
    for tag in ("3.14", "3", "latest", "stable", "3.14.4-202611261200"):
        pusher.tag(repo_name, "3.14.4", tag)
    pusher.push(repo_name, "3.14.4-dev", "oci", seed="dev")
    pusher.tag(repo_name, "3.14.4-dev", "latest-dev")
    repository = watch(registry, repo_name)
    poll(repository)
    rebuilt = pusher.push(repo_name, "3.14.4", "oci-index", seed="day2")
    for tag in ("3.14", "3", "latest", "stable", "3.14.4-202611271200"):
        pusher.tag(repo_name, "3.14.4", tag)
    poll(repository)
    repository.rebuilt = rebuilt
    return repository


def text(response) -> str:
    """The page's visible text, whitespace collapsed, for assertions a person would make."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", body)


def test_repository_page_lists_each_version_and_variant_with_its_tags_in_the_usual_shape(client, python):
    response = client.get(f"/repositories/{python.pk}/")
    page = text(response)
    rebuilt = python.rebuilt.digest[7:19]
    assert response.status_code == 200
    assert f"3.14.4 stable default latest stable 3.14.4 3.14 3 3.14.4-202611271200 {rebuilt} 2 builds" in page
    assert "3.14.4 dev latest-dev 3.14.4-dev" in page, "a variant is a row of its own"
    assert "3.13.9 default 3.13.9" in page, "an older version keeps only its exact tag"


def test_version_page_shows_the_digest_history_and_a_timeline(client, python):
    version = Version.objects.get(repository=python, name="3.14.4", variant="")
    response = client.get(f"/versions/{version.pk}/")
    content = response.content.decode()
    builds = list(Build.objects.filter(version=version).order_by("-first_seen_at"))
    assert len(builds) == 2
    table = content[content.index('<table class="list builds">') :]  # the timeline's table lists by tag
    assert table.index(builds[0].digest[7:19]) < table.index(builds[1].digest[7:19]), "newest first"
    assert "<svg" in content and "<rect" in content
    assert "3.14.4-202611261200" in content and "3.14.4-202611271200" in content
    assert "compare with previous" in content


def test_build_page_offers_copyable_references_and_escapes_registry_labels(client, python):
    build = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    response = client.get(f"/builds/{build.pk}/")
    content = response.content.decode()
    assert f'data-copy="{python.reference}:latest@{build.digest}"' in content
    assert "linux/arm64/v8" in content
    first = Build.objects.filter(version__name="3.14.4", version__variant="").exclude(pk=build.pk).get()
    content = client.get(f"/builds/{first.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_search_finds_an_image_id_and_links_the_build(client, python):
    platform = Build.objects.get(digest=python.rebuilt.digest).platforms.first()
    response = client.get("/search", {"q": platform.config_digest[7:19]})
    assert response.status_code == 200
    assert "image ID" in text(response)
    assert f"/builds/{platform.build_id}/" in response.content.decode()


def test_search_answers_htmx_with_the_results_alone(client, python):
    response = client.get("/search", {"q": "3.14"}, headers={"HX-Request": "true"})
    assert "<html" not in response.content.decode()
    assert "3.14.4" in text(response)


@pytest.mark.parametrize(
    "query", ["abc", "<script>alert(1)</script>", "x" * 2000, "sha256:", "'; DROP TABLE"]
)
def test_search_explains_bad_queries_without_failing(client, query):
    response = client.get("/search", {"q": query})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_pages_need_login_unless_public(client, settings, python):
    settings.TAGLEDGER_PUBLIC = False
    for url in ["/", "/search?q=3", f"/repositories/{python.pk}/"]:
        assert client.get(url).status_code == 302


def test_unknown_ids_are_404(client):
    for url in ["/repositories/999999/", "/versions/999999/", "/builds/999999/"]:
        assert client.get(url).status_code == 404


@pytest.mark.parametrize("page", ["repository", "version", "build"])
def test_query_count_does_not_grow_with_history(client, python, pusher, django_assert_max_num_queries, page):
    def url():
        build = Build.objects.filter(version__name="3.14.4", version__variant="").latest("first_seen_at")
        return {
            "repository": f"/repositories/{python.pk}/",
            "version": f"/versions/{build.version_id}/",
            "build": f"/builds/{build.pk}/",
        }[page]

    with django_assert_max_num_queries(12) as before:
        client.get(url())
    for seed in ("day3", "day4", "day5"):
        pusher.push(python.name, "3.14.4", "oci-index", seed=seed)
        poll(python)
    with django_assert_max_num_queries(len(before.captured_queries)):
        client.get(url())


def test_picking_two_builds_opens_the_comparison(client, python):
    version = Version.objects.get(repository=python, name="3.14.4", variant="")
    older, newer = Build.objects.filter(version=version).order_by("first_seen_at")
    response = client.get(f"/versions/{version.pk}/compare", {"build": [newer.pk, older.pk]})
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"?a={older.digest.replace(':', '%3A')}&b={newer.digest.replace(':', '%3A')}"
    )
    response = client.get(f"/versions/{version.pk}/compare", {"build": [newer.pk]})
    assert response.status_code == 302 and response["Location"] == f"/versions/{version.pk}/"
