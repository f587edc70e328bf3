"""The home page answers, and readers need a login unless the instance is public."""

import re

import pytest
from django.utils import timezone

from catalog.models import Registry, Repository
from history.models import PollRun, TagState
from history.polling import poll
from tests.history.factories import Image, watch


@pytest.mark.django_db
def test_home_asks_for_login_when_not_public(client, settings):
    settings.TAGLEDGER_PUBLIC = False
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


@pytest.mark.django_db
def test_home_is_readable_when_public(client, public):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Nothing is watched yet" in response.content
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_login_page_and_health(client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_home_lists_watched_repositories_with_their_last_poll(client, public, registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name)
    poll(repository)
    PollRun.objects.create(
        repository=repository, started_at=timezone.now(), status=PollRun.Status.FAILED,
        error="<script>alert(1)</script> from the registry",
    )  # fmt: skip
    response = client.get("/")
    assert repository.reference.encode() in response.content
    assert b"Nothing is watched yet" not in response.content
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; from the registry" in response.content


@pytest.mark.django_db
def test_home_query_count_does_not_grow_with_repositories(client, public, django_assert_max_num_queries):
    host = Registry.objects.create(host="127.0.0.1:9")
    for index in range(20):
        Repository.objects.create(registry=host, name=f"r/{index}")
    with django_assert_max_num_queries(3):
        assert client.get("/").status_code == 200


def tags_cell(content: str, repository: Repository) -> str:
    """The visible text of a repository's Tags cell on the home page."""
    row = re.search(rf'href="/repositories/{repository.pk}/".*?</tr>', content, re.S).group(0)
    cell = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[0]  # the cell after the repository link
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "artifacts, shown",
    [
        ([], "3"),
        ([f"sha256-{'a' * 64}.sig"], "3 (+1 signature or attestation)"),
        ([f"sha256-{'a' * 64}.sig", f"sha256-{'a' * 64}.att", f"sha256-{'b' * 64}.sbom",
          f"sha256-{'c' * 64}"], "3 (+4 signatures and attestations)"),
    ],
)  # fmt: skip
def test_home_counts_the_tags_the_api_lists_and_says_how_many_signatures_besides(
    client, public, artifacts, shown
):
    image = Image("acme/signed")
    build = image.release("1.0.0", "", "1.0.0", "1.0", "latest")
    for name in artifacts:
        image.tag(name, image.build())
    gone = image.tag("gone", build)
    TagState.objects.observe(gone, None, at=timezone.now(), poll=None, immutable=False)  # counted nowhere
    listed = client.get(f"/api/v1/repositories/{image.repository.pk}/tags").json()["items"]
    assert len(listed) == 3
    assert tags_cell(client.get("/").content.decode(), image.repository) == shown
    [summary] = [r for r in client.get("/api/v1/repositories").json() if r["id"] == image.repository.pk]
    assert (summary["tag_count"], summary["artifact_count"]) == (len(listed), len(artifacts))


@pytest.mark.django_db
def test_the_document_says_what_tag_count_counts_and_how_tags_sort(client, public):
    """The home page's count and the API's are one rule: the description says tag_count is what
    the tags endpoint lists and where the signatures went; the tags list names its three orders."""
    document = client.get("/api/v1/openapi.json").json()
    repository = document["components"]["schemas"]["RepositoryOut"]["properties"]
    assert "/repositories/{id}/tags" in repository["tag_count"]["description"]
    assert "artifact_count" in repository["tag_count"]["description"]
    assert "signatures" in repository["artifact_count"]["description"]
    [sort] = [
        parameter
        for parameter in document["paths"]["/api/v1/repositories/{id}/tags"]["get"]["parameters"]
        if parameter["name"] == "sort"
    ]
    assert sort["schema"]["enum"] == ["name", "changed", "kind"] and sort["schema"]["default"] == "name"
