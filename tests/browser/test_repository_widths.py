"""The repository page fits a phone and a desktop: no sideways scrolling with dozens of variants."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.history.factories import Image

pytestmark = pytest.mark.django_db(transaction=True)

# eclipse-temurin publishes each release in ~26 variants, some with long names.
VARIANTS = [""] + [
    f"{kind}-{os}"
    for kind in ("jdk", "jre")
    for os in ("noble", "jammy", "focal", "alpine", "ubi9-minimal", "windowsservercore-ltsc2022",
               "nanoserver-ltsc2022", "windowsservercore-1809", "nanoserver-1809", "alpine-3.21",
               "ubi10-minimal", "noble-headless-with-a-very-long-variant-name-for-good-measure")
]  # fmt: skip


@pytest.fixture
def temurin():
    image = Image("library/eclipse-temurin")
    now = timezone.now()
    for line, releases in (("21", ("21.0.5_11", "21.0.4_7")), ("17", ("17.0.13_11",))):
        for age, name in enumerate(releases):
            for variant in VARIANTS:
                suffix = f"-{variant}" if variant else ""
                tags = [f"{name}{suffix}", f"{line}{suffix}"] if age == 0 else [f"{name}{suffix}"]
                if line == "21" and age == 0:
                    tags += [f"latest{suffix}" if variant else "latest", f"lts{suffix}" if variant else "lts"]
                image.release(name, variant, *tags, at=now - timedelta(days=1 + age * 200))
    loose = image.build(None, at=now)
    for number in range(40):
        name = f"sha-{number:07x}-a-long-branch-name-{number}"
        image.tag(name, loose, kind="other", version="", variant="")
    return image


@pytest.mark.parametrize("width", [390, 1400])
def test_the_repository_page_never_scrolls_sideways(page: Page, temurin, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/repositories/{temurin.repository.pk}/")
    expect(page.locator("table.rows tbody tr").first).to_be_visible()
    # What is folded must fit too: inactive versions and the tags list load when opened (htmx).
    page.locator("details.inactive-rows > summary").first.click()
    expect(page.locator("details.inactive-rows[open] table.rows").first).to_be_visible()
    page.locator("#tags summary").click()
    expect(page.locator("#tags table.tags tbody tr").first).to_be_visible()
    shot(page, f"repository-{width}")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, innerWidth]"
    )
