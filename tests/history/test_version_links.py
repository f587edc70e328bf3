"""Wherever a page names a version, the name leads to that version's digest history."""

import re

import pytest

from tests.history.factories import Image

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]


@pytest.fixture
def rebuilt():
    """3.14.4 built twice (the second build the one its tags point to now)."""
    image = Image("library/python")
    first = image.release("3.14.4", "", "3.14.4", "3.14")
    second = image.release("3.14.4", "", "3.14.4", "3.14")
    return image, first, second


PAGES = {
    "repository": lambda image, first, second: f"/repositories/{image.repository.pk}/",
    "changelog": lambda image, first, second: f"/changelog?repository={image.repository.pk}",
    "build": lambda image, first, second: f"/builds/{second.pk}/",
    "search": lambda image, first, second: f"/search?q={second.digest}",
    "compare": lambda image, first, second: f"/compare?a={first.digest}&b={second.digest}",
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_that_names_a_version_links_it_to_its_digest_history(client, rebuilt, page):
    image, first, second = rebuilt
    response = client.get(PAGES[page](image, first, second))
    assert response.status_code == 200, response.content[:500]
    content = response.content.decode()
    linked = re.findall(rf'<a [^>]*href="/versions/{second.version_id}/"[^>]*>\s*3\.14\.4\s*</a>', content)
    assert linked, f"3.14.4 is not a link to its version on the {page} page"
    # and nowhere as bare text in a table cell
    assert not re.search(r"<td>\s*3\.14\.4\s*</td>", content)
