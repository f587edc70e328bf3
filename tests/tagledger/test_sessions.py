"""A session cookie is a client's to forge: one no session could have is no session, not a 500."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["\x00abcdefghijkl", "a" * 5000, "é" * 40, "short", "A" * 32, "%00" * 12])
@pytest.mark.parametrize("path", ["/", "/api/v1/repositories", "/accounts/login/"])
def test_any_session_cookie_is_no_session_rather_than_a_500(client, public, value, path):
    client.cookies["sessionid"] = value

    assert client.get(path).status_code in (200, 302, 401)


def test_a_real_session_still_signs_in(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(user)

    assert client.get("/accounts/login/").wsgi_request.user == user
