"""A version with many builds shows them a page at a time, newest first, each build once."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Line, Registry, Repository, Version
from history.models import Build
from history.versions import PAGE_SIZE

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(public):
    repository = Repository.objects.create(
        registry=Registry.objects.create(host="127.0.0.1:9"), name="demo/app"
    )
    line = Line.objects.create(repository=repository, name="1.0")
    version = Version.objects.create(repository=repository, line=line, name="1.0.0")
    now = timezone.now()
    Build.objects.bulk_create(
        Build(repository=repository, version=version, digest=f"sha256:{n:064x}", media_type="x",
              size=1, first_seen_at=now - timedelta(hours=n))
        for n in range(PAGE_SIZE + 5)
    )  # fmt: skip
    return version


def shown(content: str) -> list[int]:
    return [int(hex_, 16) for hex_ in re.findall(r'data-copy="sha256:([0-9a-f]{64})"', content)]


def test_pages_walk_every_build_once_newest_first(client, version):
    first = client.get(f"/versions/{version.pk}/").content.decode()
    older = re.search(r'href="([^"]+cursor=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(older).content.decode()
    assert shown(first) == list(range(PAGE_SIZE))
    assert shown(second) == list(range(PAGE_SIZE, PAGE_SIZE + 5))
    assert 'rel="next"' not in second and "Newest builds" in second


def test_a_damaged_cursor_is_a_clear_400(client, version):
    response = client.get(f"/versions/{version.pk}/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400
