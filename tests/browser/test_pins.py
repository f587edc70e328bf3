"""The pin check's verdicts, in a real browser, on data from real polls: a pin the version page
lists is never called "not a build of this tag", one that is no build of it says what it is, and
the page fits a phone and passes axe.

Beside tests/browser/test_flows.py's current-or-behind check; every test fails on a console
error, a CSP violation or a dialog (see conftest.py) and saves screenshots to tests/artifacts/.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from history.models import Build
from history.polling import poll
from tests.browser.conftest import serious_violations, shot

pytestmark = pytest.mark.django_db(transaction=True)


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


@pytest.mark.parametrize("width", [390, 1400])
def test_the_pin_check_names_each_verdict_and_what_a_wrong_digest_is(page: Page, python, pusher, width):
    # A build of 3.14.4 the tag 3.14.4 was never seen on: only its timestamp tag, from before the
    # first poll's builds. The version page lists it; the pin check must agree.
    backfilled = pusher.push(python.name, "3.14.4-202511241200", "oci-index", seed="day0")
    poll(python)
    other_version = Build.objects.get(repository=python, version__name="3.13.9")
    arm64 = Build.objects.get(repository=python, digest=python.rebuilt.digest).platforms.get(
        architecture="arm64"
    )
    pins = {
        "current": f"{python.reference}:latest@{python.rebuilt.digest}",
        "floating": f"{python.reference}:3.14@{python.first.digest}",
        "backfilled": f"{python.reference}:3.14.4@{backfilled.digest}",
        "other version": f"{python.reference}:3.14.4@{other_version.digest}",
        "image id": f"{python.reference}:3.14.4@{arm64.config_digest}",
        "unknown": f"{python.reference}:3.14.4@sha256:{'0' * 64}",
    }
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/pins")
    page.get_by_label("References").fill("\n".join(pins.values()))
    page.get_by_role("button", name="Check").click()

    expect(page.locator("tr.pins-row")).to_have_count(len(pins))
    expect(page).to_have_url(re.compile(r"/pins$"))
    rows = {name: page.locator("tr.pins-row").nth(index) for index, name in enumerate(pins)}
    expect(rows["current"].locator(".pin")).to_have_text("current")
    expect(rows["floating"].locator(".pin")).to_have_text("behind 1")
    expect(rows["floating"]).to_contain_text("the tag 3.14 pointed to it until")

    backfilled_row = rows["backfilled"]
    expect(backfilled_row.locator(".pin")).to_have_text("behind 2")
    expect(backfilled_row).to_contain_text(
        "An older build of version 3.14.4 (built 2025-11-24 12:00:00 UTC), 2 newer"
    )
    expect(backfilled_row).to_contain_text(
        "tagledger knows it from its version's history (its timestamp tag 3.14.4-202511241200)"
    )
    now = f"{python.reference}:3.14.4@{python.rebuilt.digest}"
    expect(backfilled_row.locator(f'button.copy[data-copy="{now}"]')).to_be_visible()

    expect(rows["other version"].locator(".pin")).to_have_text("not a build of this tag")
    expect(rows["other version"]).to_contain_text(
        f"It is build {short(other_version.digest)} of version 3.13.9 (tag 3.13.9)."
    )
    expect(rows["image id"].locator(".pin")).to_have_text("not a build of this tag")
    expect(rows["image id"]).to_contain_text(
        "the digest is the image ID (config) of the linux/arm64/v8 image of build "
        f"{short(python.rebuilt.digest)} of version 3.14.4, where the tag points now"
    )
    expect(rows["image id"].get_by_role("link", name=re.compile("the build it belongs to"))).to_be_visible()
    expect(rows["unknown"].locator(".pin")).to_have_text("unknown")
    shot(page, f"pins-{width}")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, innerWidth]"
    )
    assert serious_violations(page) == []

    # the version page lists the pinned build, and compare goes from it to the tag's build now
    backfilled_row.get_by_role("link", name="compare pinned → current").click()
    page.wait_for_url(re.compile(r"/compare\?a=.+&b=.+"))
    summary = page.locator("table.compare-summary")
    build_row = summary.locator("tr", has=page.get_by_role("rowheader", name="Build"))
    expect(build_row.locator("td").nth(0)).to_contain_text(short(backfilled.digest))
    expect(build_row.locator("td").nth(1)).to_contain_text(short(python.rebuilt.digest))
    version = Build.objects.get(repository=python, digest=backfilled.digest).version
    page.goto(f"/versions/{version.pk}/")
    expect(
        page.locator(f"#build-{Build.objects.get(digest=backfilled.digest, repository=python).pk}")
    ).to_be_visible()
