"""The notification pages in a real browser: a staff member adds a subscription, sees its secret once
and copies it, sends a test to a local receiver and finds it delivered (200) in the log; a disabled
subscription is marked with its reason; both pages fit a phone and pass axe (failing on console
errors, see conftest.py); hostile names are text."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from history.models import Delivery, Subscription
from tests.browser.conftest import serious_violations, shot
from tests.browser.test_tokens import sign_in
from tests.support.sink import Sink

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = "<img src=x onerror=alert(1)> chat"
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def fits(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= innerWidth")


@pytest.mark.parametrize("width", [390, 1400])
def test_a_subscription_is_added_shown_once_tested_and_logged(page: Page, live_server, settings, width):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]
    admin = User.objects.create_user("ops-admin", is_staff=True)
    broken = Subscription.objects.create(
        name=HOSTILE,
        url="https://hooks.slack.com/services/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athXYZW",
        format="slack",
        secret="s" * 32,
        enabled=False,
        disabled_at=START,
        disabled_reason="disabled after 10 failed attempts in a row: 404 Not Found (no_service)",
        consecutive_failures=10,
    )
    for n in range(3):
        Delivery.objects.create(
            subscription=broken,
            key=f"batch-{n}",
            body="{}",
            status="failed",
            attempts=5,
            response_code=404,
            latency_ms=120,
            error="404 Not Found: no_service " + "x" * 400,
            created_at=START + timedelta(minutes=n),
        )
    sign_in(page, live_server, admin)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    disabled = page.locator("tr.subscription-disabled")
    expect(disabled).to_contain_text(HOSTILE)  # text, not markup
    expect(disabled).to_contain_text("disabled after 10 failed attempts")
    expect(disabled).to_contain_text("https://hooks.slack.com/…/XYZW")
    expect(disabled.get_by_role("button", name=f"Re-enable {HOSTILE}")).to_be_visible()
    assert "averyvery" not in page.content()

    with Sink() as sink:
        page.get_by_label("Name:", exact=True).fill("deploy hooks")
        page.get_by_label("Webhook URL:", exact=True).fill(sink.url)
        page.locator("input[name=kinds][value=moved]").check()
        page.locator("input[name=kinds][value=immutable_moved]").check()
        page.get_by_role("button", name="Add subscription").click()
        secret = page.locator("#subscription-secret").inner_text()
        made = Subscription.objects.get(name="deploy hooks")
        assert secret == made.secret and made.kinds == ["moved", "immutable_moved"]
        page.get_by_role("button", name="Copy the signing secret").click()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        assert fits(page)
        assert serious_violations(page) == []
        shot(page, f"notifications-{width}")

        page.goto("/notifications/")  # the secret is shown once: in the POST's answer, not the page
        expect(page.locator("#subscription-secret")).to_have_count(0)
        assert secret not in page.content()
        row = page.locator(f"#subscription-{made.pk}")
        expect(row).to_contain_text("moved, immutable_moved")
        row.get_by_role("button", name="Send a test to deploy hooks").click()
        sink.wait_for(1)

    expect(page.get_by_role("heading", name="Delivery log", level=1)).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("Test message to deploy hooks: delivered (200).")
    delivered = page.locator("tr.delivery-row-delivered")
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("delivered")  # the word, not only the colour
    expect(delivered).to_contain_text("200")
    expect(delivered).to_contain_text("test message")
    assert fits(page)
    assert serious_violations(page) == []

    page.goto("/notifications/deliveries")
    expect(page.locator("tr.delivery-row")).to_have_count(4)
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.delivery-row-failed")).to_have_count(3)
    expect(page.locator("tr.delivery-row-delivered")).to_have_count(0)
    assert fits(page)
    assert serious_violations(page) == []
    shot(page, f"deliveries-{width}")


def test_removing_asks_first_and_works_without_javascript(no_js_page: Page, live_server):
    admin = User.objects.create_user("ops-admin", is_staff=True)
    gone = Subscription.objects.create(
        name="old hook", url="https://example.com/hook/abcd1234", secret="s" * 32
    )
    sign_in(no_js_page, live_server, admin)
    no_js_page.goto("/notifications/")
    remove = no_js_page.get_by_role("button", name="Remove old hook for good")
    expect(remove).to_be_hidden()  # inside a closed <details>: one click to open, one to confirm
    no_js_page.get_by_text("Remove…").click()
    remove.click()
    expect(no_js_page.locator(".messages")).to_contain_text("Removed old hook and its delivery log.")
    assert not Subscription.objects.filter(pk=gone.pk).exists()
