"""The repository page's tags list: filtered and sorted in place with htmx, by a plain form
without JavaScript, on a phone and a desktop, and axe finds nothing serious in it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import serious_violations, shot
from tests.history.factories import Image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def busy():
    """Fifty versions (so the tags list is folded until asked for) and 60 commit tags, each
    newer than the one before, but `sha-0000000-newest` newer still: by name it comes first, and
    by change it comes before the last of the others."""
    image = Image("acme/busy")
    now = timezone.now()
    for patch in range(50):
        image.release(f"1.0.{patch}", "", f"1.0.{patch}", at=now - timedelta(days=60 - patch))
    loose = image.build(None, at=now - timedelta(days=30))
    for number in range(1, 60):
        image.tag(f"sha-{number:07x}", loose, at=now - timedelta(days=30, minutes=-number), kind="other")
    image.tag("sha-0000000-newest", image.build(None, at=now), kind="other")
    return image


def names(page: Page) -> list[str]:
    return page.locator("#tags table.tags tbody a.tag").all_inner_texts()


@pytest.mark.parametrize("width", [390, 1400])
def test_the_tags_list_filters_as_one_types_and_sorts_in_place(page: Page, busy, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/repositories/{busy.repository.pk}/")
    page.locator("#tags summary").click()
    # The list arrives by htmx, which binds the filter box's trigger once the swap has settled:
    # typing before then is lost with the box it was typed in.
    expect(page.locator("#tags table.tags tbody tr").first).to_be_visible()
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    expect(page.locator("#tags-filter")).to_be_visible()

    page.locator("#tags-filter").fill("sha-000000")
    expect(page.locator("#tags table.tags tbody tr")).to_have_count(16)  # sha-0000000-newest, sha-0000001…f
    assert all("sha-000000" in name for name in names(page))
    expect(page.locator("#tags-filter")).to_be_focused()  # typing goes on in the same box
    expect(page.locator("#tag-filter")).to_have_value("sha-000000")  # the page's filter box agrees
    assert "q=sha-000000" in page.url

    page.locator("#tags-sort").select_option("changed")
    expect(page.locator("#tags table.tags tbody a.tag").first).to_have_text("sha-0000000-newest")
    expect(page.locator("#tags table.tags tbody a.tag").nth(1)).to_have_text("sha-000000f")
    assert names(page)[1:4] == ["sha-000000f", "sha-000000e", "sha-000000d"]
    assert "sort=changed" in page.url
    expect(page.locator("#tag-filter-sort")).to_have_value("changed")

    shot(page, f"repository-tags-{width}")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, innerWidth]"
    )
    assert serious_violations(page) == []


def test_without_javascript_the_form_filters_sorts_and_pages(no_js_page: Page, busy, monkeypatch):
    page = no_js_page
    page.goto(f"/repositories/{busy.repository.pk}/?tags=1")
    page.locator("#tags-filter").fill("sha")
    page.locator("#tags-sort").select_option("changed")
    page.locator("#tags form button[type=submit]").click()
    expect(page.locator("#tags table.tags tbody a.tag").first).to_have_text("sha-0000000-newest")
    assert "sort=changed" in page.url and "q=sha" in page.url
    first = names(page)
    page.locator('#tags a[rel="next"]').click()
    following = names(page)
    assert following and not set(first) & set(following)
    assert following[0] == f"sha-{59 - len(first) + 1:07x}"  # newest first: 3b, 3a, …
