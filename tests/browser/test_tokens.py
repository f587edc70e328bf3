"""The API tokens page in a real browser: a new token is shown once with a working copy button, revoking
keeps the row, and the page fits a phone and passes axe (failing on console errors, see conftest.py)."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Page, expect

from tagledger.tokens.models import ApiToken
from tests.browser.conftest import serious_violations, shot

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page: Page, live_server, user: User) -> None:
    """The browser carries a session made by Django's test client: signing in is not what this tests."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )


@pytest.mark.parametrize("width", [390, 1400])
def test_a_token_is_made_shown_once_copied_and_revoked(page: Page, live_server, width):
    admin = User.objects.create_user("ops-admin", is_staff=True)
    ApiToken.objects.issue(admin, "nightly <b>CI</b> for registry.example.com/very/long/repository/name")
    sign_in(page, live_server, admin)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", level=1)).to_be_visible()

    page.get_by_label("Name:", exact=True).fill("deploy job")
    page.get_by_label("Staff scope:", exact=True).check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text()
    token = ApiToken.objects.get(name="deploy job")
    assert secret.startswith("tl_" + token.prefix) and token.staff
    page.get_by_role("button", name="Copy the new token").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.locator("table.tokens")).to_contain_text("nightly <b>CI</b>")  # text, not markup

    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert serious_violations(page) == []
    shot(page, f"tokens-{width}")

    page.get_by_role("button", name=f"Revoke {token.display_prefix} (deploy job)").click()
    expect(page.locator(".messages")).to_contain_text(f"Revoked {token.display_prefix}")
    expect(page.locator("#token-secret")).to_have_count(0)  # shown once: gone after the redirect
    assert secret not in page.content()
    expect(page.locator("tr.token-revoked")).to_have_count(1)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
