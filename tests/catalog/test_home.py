"""The home page answers, and readers need a login unless the instance is public."""

import pytest


@pytest.mark.django_db
def test_home_asks_for_login_when_not_public(client, settings):
    settings.TAGLEDGER_PUBLIC = False
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


@pytest.mark.django_db
def test_home_is_readable_when_public(client, settings):
    settings.TAGLEDGER_PUBLIC = True
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
