"""A tag's history in a real browser: from a tag chip on the version page to the tag's page, and
from one of its moves to the comparison of the two builds, at phone and desktop widths."""

import re

import pytest
from playwright.sync_api import Page, expect

from catalog.models import Version
from history.models import Build
from tests.browser.conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def fits(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_a_tag_chip_leads_to_its_history_and_its_move_to_the_comparison(page: Page, python):
    version = Version.objects.get(repository=python, name="3.14.4", variant="")
    older = Build.objects.get(repository=python, digest=python.first.digest)
    newer = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    page.goto(f"/versions/{version.pk}/")
    page.locator(f"#build-{newer.pk}").get_by_role("link", name="3.14", exact=True).click()

    page.wait_for_url(re.compile(rf"/repositories/{python.pk}/tags/3\.14$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("3.14")
    rows = page.locator("table.tag-history tr.period")
    expect(rows).to_have_count(2)  # moved to the rebuild, and first seen on the first build
    expect(rows.nth(0)).to_contain_text(short(newer.digest))
    expect(rows.nth(0)).to_contain_text("between")
    expect(rows.nth(1)).to_contain_text("first seen")
    pin = f"{python.reference}:3.14@{newer.digest}"
    expect(rows.nth(0).locator(f'button.copy[data-copy="{pin}"]')).to_be_visible()
    expect(rows.nth(0).locator(f'button.copy[data-copy="{newer.digest}"]')).to_be_visible()
    for width, name in ((1400, "tag-1400"), (390, "tag-390")):
        page.set_viewport_size({"width": width, "height": 900})
        assert fits(page), f"the tag page scrolls sideways at {width} px"
        shot(page, name)
    page.set_viewport_size({"width": 1400, "height": 900})

    rows.nth(0).get_by_role("link", name="compare with previous").click()
    page.wait_for_url(re.compile(r"/compare\?a=.+&b=.+"))
    summary = page.locator("table.compare-summary")
    build_row = summary.locator("tr", has=page.get_by_role("rowheader", name="Build"))
    expect(build_row.locator("td").nth(0)).to_contain_text(short(older.digest))
    expect(build_row.locator("td").nth(1)).to_contain_text(short(newer.digest))
