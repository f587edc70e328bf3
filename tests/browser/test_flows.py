"""What people do in a real browser, on data from real polls: find a build, compare, filter, check pins.

Every test fails on a console error, a CSP violation or a dialog (see conftest.py), and saves
screenshots of the pages it visits to tests/artifacts/ for a person to look at.
"""

import re
from xml.etree import ElementTree

import pytest
from playwright.sync_api import Page, expect

from catalog.models import Version
from history.models import Build
from history.polling import poll
from tests.browser.conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)

ATOM = "{http://www.w3.org/2005/Atom}"
IMG_PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT_PAYLOAD = "<script>alert(1)</script>"


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def version_of(repository, name: str = "3.14.4") -> Version:
    return Version.objects.get(repository=repository, name=name, variant="")


def test_home_leads_to_a_repository_and_its_versions(page: Page, python):
    page.goto("/")
    watched = page.locator("table.list").first.get_by_role("link", name=python.reference, exact=True)
    expect(watched).to_be_visible()
    expect(page.locator("table.changes tr.event-moved")).to_have_count(4)
    shot(page, "home")

    watched.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(python.reference)
    expect(page.locator("table.rows tbody th")).to_contain_text([re.compile(r"^3\.14\.4\b"), "3.13.9"])
    expect(page.locator("table.rows").first).to_contain_text("3.14.4-dev")
    shot(page, "repository")

    version = f"/versions/{version_of(python).pk}/"
    page.locator(f'table.rows a[href="{version}"]').first.click()
    page.wait_for_url(f"**{version}")
    expect(page.locator("table.builds tbody tr")).to_have_count(2)


def test_an_image_id_typed_in_the_header_leads_to_its_build(page: Page, python):
    arm_config = python.rebuilt.config_digests[1]  # the linux/arm64/v8 image of the rebuild
    build = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    page.goto("/")

    page.get_by_role("search").get_by_role("searchbox").fill(short(arm_config))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/search\?q={short(arm_config)}$"))
    results = page.locator("#results table.results")
    expect(results).to_contain_text(f"image ID {short(arm_config)} (linux/arm64/v8)")
    shot(page, "search")

    results.get_by_role("link", name=short(build.digest)).click()
    page.wait_for_url(re.compile(rf"/builds/{build.pk}/#platform-\d+$"))
    arm64 = page.locator("details.platform", has_text="linux/arm64/v8")
    expect(arm64.locator("summary")).to_contain_text(short(arm_config))
    expect(arm64).to_have_attribute("open", "")  # the matched platform is the one opened
    pinned = f"{python.reference}:latest@{build.digest}"
    copy = page.locator(f'button.copy[data-copy="{pinned}"]')
    expect(copy).to_be_visible()
    shot(page, "build")

    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == pinned
    expect(copy).to_have_text("Copy")


def test_the_search_page_answers_as_you_type_without_reloading(page: Page, python):
    build = Build.objects.get(repository=python, digest=python.first.digest)
    page.goto("/search")
    page.evaluate("window.sameDocument = true")

    page.locator("form.search-page input[name=q]").press_sequentially(short(build.digest), delay=20)
    expect(page.locator("#results")).to_contain_text("1 build")
    expect(page.locator("#results").get_by_role("link", name=short(build.digest))).to_have_attribute(
        "href", f"/builds/{build.pk}/"
    )
    assert page.evaluate("window.sameDocument") is True, "htmx swapped the results; the page stayed"
    expect(page).to_have_url(re.compile(rf"/search\?q={short(build.digest)}$"))


def test_ticking_two_builds_on_the_version_page_compares_them(page: Page, python):
    page.goto(f"/versions/{version_of(python).pk}/")
    bars = page.locator("figure.timeline svg rect")
    expect(bars.first).to_be_visible()
    assert bars.count() >= 2, "one bar per stretch a tag held a build"
    shot(page, "version")

    older = Build.objects.get(repository=python, digest=python.first.digest)
    newer = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    page.locator(f"#build-{newer.pk} input[data-compare]").check()
    page.locator(f"#build-{older.pk} input[data-compare]").check()
    page.get_by_role("button", name="Compare the two ticked builds").click()

    page.wait_for_url(re.compile(r"/compare\?a=.+&b=.+"))
    summary = page.locator("table.compare-summary")
    build_row = summary.locator("tr", has=page.get_by_role("rowheader", name="Build"))
    expect(build_row.locator("td").nth(0)).to_contain_text(short(older.digest))
    expect(build_row.locator("td").nth(1)).to_contain_text(short(newer.digest))
    expect(summary.locator(f'button.copy[data-copy$="@{older.digest}"]')).to_be_visible()
    expect(summary.locator(f'button.copy[data-copy$="@{newer.digest}"]')).to_be_visible()
    shot(page, "compare")


def test_the_changelog_filters_by_kind_and_offers_the_same_filter_as_atom(page: Page, python):
    page.goto("/")
    page.locator("header.top nav").get_by_role("link", name="Changelog").click()
    page.wait_for_url("**/changelog")
    rows = page.locator("#changelog-rows tbody tr")
    expect(rows.and_(page.locator(".event-created"))).not_to_have_count(0)

    page.locator("select[name=kind]").select_option("moved")
    expect(page.locator("#changelog-rows tbody tr:not(.event-moved)")).to_have_count(0)
    expect(rows).to_have_count(4)  # latest, 3.14.4, 3.14 and 3 followed the rebuild
    expect(page).to_have_url(re.compile(r"kind=moved"))
    shot(page, "changelog")

    href = page.locator("#changelog-rows a.feed").get_attribute("href")
    assert href and "kind=moved" in href
    response = page.request.get(href)
    assert response.ok
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.body())  # noqa: S314 - our own feed, from the live server
    assert feed.tag == f"{ATOM}feed"
    titles = [entry.findtext(f"{ATOM}title") for entry in feed.iter(f"{ATOM}entry")]
    moved = ("latest", "3.14.4", "3.14", "3")
    assert sorted(titles) == sorted(f"{tag} moved in {python.reference}" for tag in moved)


def test_the_pin_check_tells_a_current_pin_from_one_behind(page: Page, python):
    current = f"{python.reference}:latest@{python.rebuilt.digest}"
    behind = f"{python.reference}:3.14@{python.first.digest}"
    page.goto("/")
    page.locator("header.top nav").get_by_role("link", name="Pin check").click()
    page.wait_for_url("**/pins")

    page.get_by_label("References").fill(f"{current}\n{behind}\n")
    page.get_by_role("button", name="Check").click()

    expect(page.locator("tr.pins-row")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/pins$"))  # posted: the pasted lines are in no URL
    expect(page.locator("tr.pins-row-current")).to_contain_text(current)
    behind_row = page.locator("tr.pins-row-behind")
    expect(behind_row).to_contain_text(behind)
    expect(behind_row.locator(".pin-behind")).to_have_text("behind 1")
    expect(
        behind_row.locator(f'button.copy[data-copy="{python.reference}:3.14@{python.rebuilt.digest}"]')
    ).to_be_visible()
    shot(page, "pins")


def test_markup_from_a_registry_is_shown_as_text_and_never_runs(page: Page, python, pusher):
    hostile = pusher.push(
        python.name,
        "3.14.4",
        "oci-index",
        seed="day3",
        labels={"org.opencontainers.image.description": IMG_PAYLOAD, "org.example.note": SCRIPT_PAYLOAD},
        env=["PATH=/usr/local/bin:/usr/bin:/bin", f"GREETING={IMG_PAYLOAD}", f"NOTE={SCRIPT_PAYLOAD}"],
    )
    pusher.tag(python.name, "3.14.4", "3.14.4-202511271200")
    poll(python)
    build = Build.objects.get(repository=python, digest=hostile.digest)
    previous = Build.objects.get(repository=python, digest=python.rebuilt.digest)

    page.goto(f"/builds/{build.pk}/")
    platform = page.locator("details.platform").first
    expect(platform.get_by_text(f"GREETING={IMG_PAYLOAD}", exact=True)).to_be_visible()
    expect(platform.get_by_text(SCRIPT_PAYLOAD, exact=True)).to_be_visible()
    expect(page.locator("main img, main script")).to_have_count(0)
    shot(page, "build-hostile")

    page.get_by_role("link", name="compare with it").click()
    page.wait_for_url(re.compile(r"/compare\?a=.+&b=.+"))
    expect(page.locator("table.compare-summary")).to_contain_text(short(previous.digest))
    labels = page.locator("table.compare-labels").first
    expect(labels.get_by_text(IMG_PAYLOAD, exact=True)).to_be_visible()
    expect(labels.get_by_text(SCRIPT_PAYLOAD, exact=True)).to_be_visible()
    expect(page.locator("table.compare-env").first.get_by_text(IMG_PAYLOAD, exact=True)).to_be_visible()
    expect(page.locator("main img, main script")).to_have_count(0)
    shot(page, "compare-hostile")

    page.get_by_role("search").get_by_role("searchbox").fill(SCRIPT_PAYLOAD)
    page.keyboard.press("Enter")
    expect(page.locator("#results [role=alert]")).to_be_visible()
    expect(page.get_by_role("search").get_by_role("searchbox")).to_have_value(SCRIPT_PAYLOAD)
    expect(page.locator("main img, main script")).to_have_count(0)


def test_search_filters_and_compare_work_without_javascript(no_js_page: Page, python):
    page = no_js_page
    build = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    page.goto("/")
    page.get_by_role("search").get_by_role("searchbox").fill(short(build.digest))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/search\?q={short(build.digest)}$"))
    page.locator("#results").get_by_role("link", name=short(build.digest)).first.click()
    page.wait_for_url(f"**/builds/{build.pk}/")

    page.goto("/changelog")
    page.locator("select[name=kind]").select_option("moved")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"/changelog\?.*kind=moved"))
    expect(page.locator("#changelog-rows tbody tr")).to_have_count(4)
    expect(page.locator("#changelog-rows tbody tr:not(.event-moved)")).to_have_count(0)

    page.goto(f"/versions/{version_of(python).pk}/")
    for checkbox in page.locator("input[data-compare]").all():
        checkbox.check()
    page.get_by_role("button", name="Compare the two ticked builds").click()
    page.wait_for_url(re.compile(r"/compare\?a=.+&b=.+"))
    expect(page.locator("table.compare-summary")).to_contain_text(short(build.digest))


def test_a_short_reference_typed_in_the_header_leads_to_the_build_its_tag_points_to(page: Page, python):
    build = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    short_name = python.name.rpartition("/")[2]  # no registry host, no namespace: as people type it
    page.goto("/")
    page.get_by_role("search").get_by_role("searchbox").fill(f"{short_name}:3.14")
    page.keyboard.press("Enter")
    results = page.locator("#results table.results")
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(results).to_contain_text(short(build.digest))
    shot(page, "search-reference")
    results.get_by_role("link", name=short(build.digest)).click()
    page.wait_for_url(f"**/builds/{build.pk}/")


def settled(page: Page) -> None:
    expect(page.locator(".htmx-request, .htmx-settling, .htmx-swapping, .htmx-added")).to_have_count(0)


def pick(page: Page, side: str, repository, version: str) -> None:
    """Choose repository, then version, on one side's picker, each loading the next step in place."""
    picker = page.locator(f"#picker-{side}")
    picker.locator(f"select[name={side}_repository]").select_option(str(repository.pk))
    versions = picker.locator(f"select[name={side}_version]")
    expect(versions).to_be_visible()
    settled(page)  # htmx binds the new select's trigger as it settles
    versions.select_option(label=version)
    expect(page.locator(f"#picker-{side} select[name={side}_build]")).to_be_visible()


def test_the_compare_picker_leads_from_repositories_to_two_builds_compared(page: Page, python):
    newer = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    older = Build.objects.get(repository=python, digest=python.first.digest)
    page.goto("/compare")
    pick(page, "a", python, "3.14.4")
    page.locator("#picker-a select[name=a_build]").select_option(f"{python.reference}@{older.digest}")
    pick(page, "b", python, "3.14.4")
    expect(page.locator("#picker-b select[name=b_build] option").first).to_contain_text(short(newer.digest))
    shot(page, "compare-picker")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shot(page, "compare-picker-390")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("button", name="Compare", exact=True).click()
    summary = page.locator("table.compare-summary")
    expect(summary).to_contain_text(short(older.digest))
    expect(summary).to_contain_text(short(newer.digest))
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_the_compare_picker_works_without_javascript(no_js_page: Page, python):
    page = no_js_page
    newer = Build.objects.get(repository=python, digest=python.rebuilt.digest)
    page.goto("/compare")
    for side, version in (("a", "3.13.9"), ("b", "3.14.4")):
        page.locator(f"select[name={side}_repository]").select_option(str(python.pk))
        page.locator(f"#picker-{side}").get_by_role("button", name="Next").click()
        page.locator(f"select[name={side}_version]").select_option(label=version)
        page.locator(f"#picker-{side}").get_by_role("button", name="Next").click()
        expect(page.locator(f"select[name={side}_build]")).to_be_visible()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("table.compare-summary")).to_contain_text(short(newer.digest))
