"""A cosign signature's build page and the page of the build it signs, at phone and desktop
widths: each links the other, the 77-character tag names wrap instead of scrolling the page
sideways, and axe finds nothing serious."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import serious_violations, shot
from tests.history.factories import Image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed():
    image = Image("acme/signed")
    release = image.release("1.0.0", "", "1.0.0", "latest")
    signature = image.build()
    name = f"sha256-{release.digest.removeprefix('sha256:')}.sig"
    image.tag(name, signature, subject_digest=release.digest)
    return release, signature


@pytest.mark.parametrize("width", [390, 1400])
def test_a_signature_and_its_build_link_each_other_and_fit(page: Page, signed, width):
    release, signature = signed
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/builds/{signature.pk}/")
    expect(page.locator("p.artifact-of")).to_contain_text("Cosign signature of build")
    shot(page, f"build-signature-{width}")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.locator("p.artifact-of a").click()
    expect(page).to_have_url(f"{page.url.split('/builds/')[0]}/builds/{release.pk}/")
    expect(page.get_by_role("heading", name="Artifact tags naming this build")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shot(page, f"build-signed-{width}")
    assert serious_violations(page) == []
