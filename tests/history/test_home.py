"""The home page answers, and readers need a login unless the instance is public."""

import pytest
from django.utils import timezone

from catalog.models import Registry, Repository
from history.models import PollRun
from history.polling import poll
from tests.history.factories import watch


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
