"""The version page's timeline on a phone and a desktop: the picture scrolls in its own box (or
fits), nothing of it makes the page scroll sideways, its table opens, and axe finds nothing serious."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, serious_violations, shot
from tests.history.factories import Image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nightly():
    """A version imported on its 12th daily build (older ones known by their timestamp tags), then
    rebuilt twice while watched, with a floating tag whose name is far too long for its column."""
    image = Image("library/python")
    version = image.version("3.14.4")
    now = timezone.now()
    imported = now - timedelta(days=2)
    builds = []
    for day in range(12):
        built = imported - timedelta(days=12 - day, hours=3)
        made = image.build(version, at=imported, built_at=built)
        image.tag(f"3.14.4-{built:%Y%m%d%H%M}", made, at=imported)
        builds.append(made)
    for name in ("3.14.4", "3.14", "latest", "3.14.4-slim-bookworm-with-a-long-descriptive-suffix"):
        image.tag(name, builds[-1], at=imported)
    for day in (1, 2):
        at = imported + timedelta(days=day, hours=-1)
        made = image.build(version, at=at, built_at=at - timedelta(hours=1))
        image.tag(f"3.14.4-{at:%Y%m%d%H%M}", made, at=at)
        for name in ("3.14.4", "3.14", "latest"):
            image.tag(name, made, at=at)
    return version


@pytest.mark.parametrize("width", [390, 1400])
def test_the_timeline_fits_and_the_page_never_scrolls_sideways(page: Page, nightly, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/versions/{nightly.pk}/")
    svg = page.locator(".timeline-plot > svg")
    expect(svg).to_be_visible()
    page.locator("details.timeline-table > summary").click()
    expect(page.locator("details.timeline-table tbody tr").first).to_be_visible()
    shot(page, f"version-timeline-{width}")
    page.locator("figure.timeline").screenshot(path=str(ARTIFACTS / f"version-timeline-figure-{width}.png"))
    # The timeline's part of "the page never scrolls sideways": nothing in the figure reaches past
    # the window except inside its own scroll boxes. (The rest of the page is the page's CSS.)
    sticking_out = page.evaluate(
        """() => [...document.querySelectorAll("figure.timeline, figure.timeline *")]
          .filter((element) => element.getBoundingClientRect().right > innerWidth)
          .filter((element) => !element.parentElement.closest(".timeline-plot, .timeline-table-box"))
          .map((element) => element.tagName + "." + element.getAttribute("class"))"""
    )
    assert sticking_out == []
    plot = page.evaluate(
        "[...['scrollWidth', 'clientWidth']].map((key) => document.querySelector('.timeline-plot')[key])"
    )
    assert (plot[0] > plot[1]) == (width == 390), "a phone scrolls the picture in its box, a desktop fits it"
    # Every text of the picture is inside it: nothing clipped at either end.
    outside = page.evaluate(
        """() => {
          const svg = document.querySelector(".timeline-plot > svg");
          const frame = svg.getBoundingClientRect();
          return [...svg.querySelectorAll("text")]
            .map((text) => [text.textContent, text.getBoundingClientRect()])
            .filter(([, r]) => r.left < frame.left - 0.5 || r.right > frame.right + 0.5)
            .map(([label]) => label);
        }"""
    )
    assert outside == []
    assert serious_violations(page) == []


def test_the_compare_button_waits_for_two_ticked_builds(page: Page, nightly):
    page.goto(f"/versions/{nightly.pk}/")
    submit = page.locator("[data-compare-submit]")
    expect(submit).to_be_disabled()
    boxes = page.locator("input[data-compare]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(submit).to_be_enabled()
