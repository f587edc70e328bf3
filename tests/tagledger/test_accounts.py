"""Accounts: sign in, sign out, change one's password. No password reset: tagledger sends no mail."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/MQ/abc-123/",
        "/accounts/reset/done/",
    ],
)
def test_password_reset_pages_do_not_exist(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "ops@example.com"}).status_code == 404


def test_the_admin_login_offers_no_password_reset(client):
    html = client.get("/admin/login/").content.decode()
    assert "password_reset" not in html and "Forgotten your password" not in html


def test_sign_in_change_password_and_sign_out_still_work(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("reader", password="old-password-4711")
    browser = Client(REMOTE_ADDR="203.0.113.7")

    old, new = "old-password-4711", "n3w-pa55-ph4se"
    assert browser.post("/accounts/login/", {"username": "reader", "password": old}).status_code == 302
    changed = browser.post(
        "/accounts/password_change/", {"old_password": old, "new_password1": new, "new_password2": new}
    )
    assert changed.status_code == 302 and changed["Location"] == "/accounts/password_change/done/"
    assert browser.get("/accounts/password_change/done/").status_code == 200
    assert browser.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in browser.session
    assert User.objects.get(username="reader").check_password(new)
