"""A package search in a real browser, at phone and desktop widths: the builds that contain a
package, as cards on a phone and a table on a desktop, with no sideways scroll and nothing axe
calls serious; a hostile package name shown as text."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import serious_violations, shot
from tests.history.factories import Image, platform, sbom

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def released():
    """acme/app 1.4.1 with the older libssl3 on both platforms; its rebuild 1.4.2, which `latest`
    points to, with the newer one on amd64 only; and a package named as a registry may name one."""
    image = Image("acme/a-repository-with-a-rather-long-name/app")
    older = image.release("1.4", "", "1.4.1")
    newer = image.release("1.4", "", "1.4.2", "1.4", "latest")
    for build, arm64 in ((older, "3.3.1-r3"), (newer, "3.3.1-r3")):
        amd64 = "3.3.1-r3" if build is older else "3.3.2-r0"
        sbom(build, ("libssl3", amd64), ("busybox", "1.36.1-r29"), platform=platform(build, "linux/amd64"))
        sbom(build, ("libssl3", arm64), ("<b>bold</b>", "1"), platform=platform(build, "linux/arm64/v8"))
    return older, newer


@pytest.mark.parametrize("width", [390, 1400])
def test_the_builds_containing_a_package_fit_and_pass_axe(page: Page, released, width):
    _, newer = released
    page.set_viewport_size({"width": width, "height": 900})

    page.goto("/search?package=libssl3")
    results = page.locator("table.package-results tbody tr")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("3.3.1-r3, 3.3.2-r0")
    expect(results.first).to_contain_text("a tag points here")
    expect(results.last).to_contain_text("linux/amd64, linux/arm64/v8")
    expect(results.first.get_by_role("link", name=newer.digest[7:19])).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the results scroll sideways"
    shot(page, f"package-search-{width}")
    assert serious_violations(page) == []

    page.goto("/search?package=libssl3@3.3.2-r0")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("linux/amd64")

    page.goto("/search?package=<b>bold</b>@1")
    expect(page.locator("h2")).to_contain_text("containing <b>bold</b>@1")  # as text, never markup
    expect(results).to_have_count(2)
