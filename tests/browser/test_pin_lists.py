"""Saved pin lists in a real browser, on data from real polls: a list is saved from the paste page,
opened, its current reference copied, found on the lists page, edited by its owner; each page fits a
phone without sideways scroll and passes axe (failing on console errors, see conftest.py)."""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from history.models import PinList
from tests.browser.conftest import serious_violations, shot
from tests.browser.test_tokens import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

ZERO = "sha256:" + "0" * 64


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert serious_violations(page) == []


@pytest.mark.parametrize("width", [390, 1400])
def test_a_list_saved_from_the_paste_page_shows_each_pin_and_copies_the_one_to_pin_now(
    page: Page, live_server, python, width
):
    ref = python.reference
    dockerfile = "\n".join(
        [
            "# syntax=docker/dockerfile:1",
            f"FROM {ref}:3.14@{python.first.digest} AS build",
            "RUN make",
            f"FROM {ref}:latest@{python.rebuilt.digest}",
            f"FROM {ref}:3.14.4@{ZERO}",
        ]
    )
    sign_in(page, live_server, User.objects.create_user("dev"))
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/pins")
    page.get_by_label("References").fill(dockerfile)
    page.get_by_role("button", name="Check").click()
    expect(page.locator("tr.pins-row")).to_have_count(3)
    page.get_by_label("Name").fill("api <img src=x onerror=alert(1)> Dockerfile")
    page.get_by_role("button", name="Save as a list").click()

    saved = PinList.objects.get()
    expect(page).to_have_url(re.compile(rf"/pins/lists/{saved.pk}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("api <img src=x onerror=alert(1)> Dockerfile")
    assert saved.text.replace("\r\n", "\n") == dockerfile  # a form sends its line breaks as CRLF
    rows = page.locator("tr.pins-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".pin")).to_have_text("behind 1")
    expect(rows.nth(1).locator(".pin")).to_have_text("current")
    expect(rows.nth(2).locator(".pin")).to_have_text("unknown")
    expect(page.locator(".pins-summary")).to_have_text("1 current · 1 behind · 1 unknown")
    expect(rows.nth(0).get_by_role("link", name="compare pinned → current")).to_be_visible()
    rows.nth(0).get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{ref}:3.14@{python.rebuilt.digest}"
    fits(page)
    shot(page, f"pin-list-{width}")

    page.get_by_role("link", name="Saved pin lists").first.click()
    row = page.locator("tr.pin-list-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("1 current · 1 behind · 1 unknown")
    expect(row).to_contain_text("dev (you)")
    fits(page)

    row.get_by_role("link").click()
    page.get_by_label("Name").fill("api Dockerfile")
    page.get_by_label("References", exact=True).fill(f"FROM {ref}:latest@{python.rebuilt.digest}")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".messages")).to_contain_text("Saved the pin list api Dockerfile.")
    expect(page.locator(".pins-summary")).to_have_text("1 current")
    saved.refresh_from_db()
    assert saved.behind == {"1": 0}


def test_a_list_is_read_only_to_others_and_its_owner_deletes_it(page: Page, live_server, python):
    owner = User.objects.create_user("owner")
    saved = PinList.objects.create(
        name="shared", text=f"{python.reference}:latest@{python.rebuilt.digest}", owner=owner
    )

    page.goto(f"/pins/lists/{saved.pk}")  # anonymous, on a public instance
    expect(page.locator("tr.pins-row .pin")).to_have_text("current")
    expect(page.get_by_role("button", name="Delete this list")).to_have_count(0)

    sign_in(page, live_server, owner)
    page.reload()
    page.get_by_role("button", name="Delete this list").click()
    expect(page.locator(".messages")).to_contain_text("Deleted the pin list shared.")
    expect(page.get_by_text("No saved lists yet.")).to_be_visible()
    assert not PinList.objects.exists()
