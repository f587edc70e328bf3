"""Watching, unwatching and polling from the pages: staff only, POST with CSRF, clear errors."""

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client

from catalog.models import Repository
from tests.history.factories import watch

pytestmark = pytest.mark.django_db


def test_staff_watch_a_repository_and_its_first_poll_is_queued(admin_client):
    response = admin_client.post("/watch", {"reference": "127.0.0.1:5999/demo/app", "interval": "1h"})
    repository = Repository.objects.get(name="demo/app")
    assert response.status_code == 302 and response["Location"] == f"/repositories/{repository.pk}/"
    assert repository.interval.total_seconds() == 3600
    assert repository.lease_until is not None, "claimed for the queued poll"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("python:3.12", "names a tag"),
        ("docker.io/Library/Python", "must be lowercase"),
        ("<script>alert(1)</script>", "invalid reference"),
        ("", "invalid reference"),
    ],
)
def test_a_bad_reference_is_explained_and_nothing_is_written(admin_client, reference, message):
    response = admin_client.post("/watch", {"reference": reference}, follow=True)
    assert message in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert not Repository.objects.exists()


def test_a_bad_option_is_explained(admin_client):
    response = admin_client.post("/watch", {"reference": "127.0.0.1:5999/a", "include": "("}, follow=True)
    assert "not a valid regular expression" in response.content.decode()
    response = admin_client.post("/watch", {"reference": "127.0.0.1:5999/a", "interval": "5s"}, follow=True)
    assert "too short" in response.content.decode()
    assert not Repository.objects.exists()


# Patterns that answered a 500 (OverflowError, RecursionError), compiled into gigabytes, or
# could not be stored. tests/catalog/test_patterns.py has the full table.
HOSTILE_PATTERNS = [
    ("a{4294967295}", "repeat count too big"),
    ("(" * 5000, "longer than 500 characters"),
    ("(?:a{1000}){1000}", "its repeats are too large"),
    ("(" * 12 + "a" + ")+" * 12, "its repeats are too large"),
    ("(" * 400, "not a valid regular expression"),
    ("\\q", "bad escape"),
    ("(?V0V1)a", "mutually incompatible"),
    ("a\x00b", "contains a NUL"),
]


@pytest.mark.parametrize(("pattern", "message"), HOSTILE_PATTERNS, ids=lambda value: repr(value[:12]))
def test_a_hostile_pattern_is_explained_never_a_500_and_nothing_is_written(admin_client, pattern, message):
    for field in ("include", "exclude", "immutable"):
        response = admin_client.post("/watch", {"reference": "127.0.0.1:5999/demo/app", field: pattern})
        assert response.status_code == 302 and response["Location"] == "/"
        page = admin_client.get(response["Location"]).content.decode()
        assert f"Not watched: --{field}: " in page and message in page
    assert not Repository.objects.exists()


def test_a_hostile_pattern_leaves_a_watched_repository_as_it_was(admin_client, registry):
    repository = watch(registry, "demo/app", include_pattern="^3")
    reference = f"{registry.host}/demo/app"
    for pattern, _ in HOSTILE_PATTERNS:
        response = admin_client.post("/watch", {"reference": reference, "include": pattern, "interval": "1h"})
        assert response.status_code == 302
    repository.refresh_from_db()
    assert (repository.include_pattern, repository.interval.total_seconds()) == ("^3", 1800)


def test_unwatch_keeps_the_repository_and_poll_now_claims_it(admin_client, registry):
    repository = watch(registry, "demo/app")
    assert admin_client.post(f"/repositories/{repository.pk}/poll").status_code == 302
    repository.refresh_from_db()
    assert repository.lease_until is not None
    assert admin_client.post(f"/repositories/{repository.pk}/unwatch").status_code == 302
    repository.refresh_from_db()
    assert repository.enabled is False


def test_readers_and_anonymous_cannot_change_anything(client, public, registry):
    repository = watch(registry, "demo/app")
    User.objects.create_user("reader", password="pw-reader-123")
    for who in (client, _signed_in("reader", "pw-reader-123")):
        for url in [
            "/watch",
            f"/repositories/{repository.pk}/unwatch",
            f"/repositories/{repository.pk}/poll",
        ]:
            response = who.post(url, {"reference": "127.0.0.1:5999/x"})
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
    repository.refresh_from_db()
    assert repository.enabled and repository.lease_until is None
    assert Repository.objects.count() == 1


def test_actions_need_post_and_csrf(admin_user, registry):
    repository = watch(registry, "demo/app")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.get(f"/repositories/{repository.pk}/poll").status_code == 405
    assert browser.post(f"/repositories/{repository.pk}/unwatch").status_code == 403
    repository.refresh_from_db()
    assert repository.enabled


def _signed_in(username, password):
    browser = Client()
    # login throttling (axes) counts sign-ins by request, so authenticate() needs one
    assert browser.login(request=HttpRequest(), username=username, password=password)
    return browser
