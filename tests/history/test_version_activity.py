"""A version is inactive (end of life) when its builds stopped and no floating tag points into it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Registry, Repository, Tag, Version
from history.models import TagState, with_activity
from tests.history import factories

NOW = timezone.now()


@pytest.fixture
def repository():
    registry = Registry.objects.create(host="127.0.0.1:9")
    return Repository.objects.create(registry=registry, name="demo/app")


def version_with_build(repository, name, *, days_ago, tags=(), built_days_ago=None):
    version = factories.version(repository, name, line=name.rsplit(".", 1)[0])
    build = factories.build(
        repository, version=version, first_seen_at=NOW - timedelta(days=days_ago),
        built_at=NOW - timedelta(days=built_days_ago) if built_days_ago is not None else None,
    )  # fmt: skip
    for tag_name, kind in tags:
        tag = Tag.objects.create(repository=repository, name=tag_name, kind=kind)
        TagState.objects.create(tag=tag, build=build, since=build.first_seen_at, confirmed_at=NOW)
    return version


def activity(repository):
    return {v.name: v.inactive for v in with_activity(Version.objects.filter(repository=repository), now=NOW)}


@pytest.mark.django_db
def test_old_versions_without_floating_tags_are_inactive(repository, settings):
    settings.TAGLEDGER_INACTIVE_AFTER_DAYS = 90
    version_with_build(repository, "3.14.4", days_ago=1, tags=[("3.14.4", "exact"), ("latest", "latest")])
    version_with_build(repository, "3.13.9", days_ago=200, tags=[("3.13", "minor")])
    version_with_build(repository, "3.12.1", days_ago=200, tags=[("3.12.1", "exact")])
    version_with_build(repository, "3.11.0", days_ago=30, tags=[("3.11.0", "exact")])
    assert activity(repository) == {"3.14.4": False, "3.13.9": False, "3.12.1": True, "3.11.0": False}


@pytest.mark.django_db
def test_a_backfilled_build_time_counts_over_first_sighting(repository, settings):
    settings.TAGLEDGER_INACTIVE_AFTER_DAYS = 90
    version_with_build(repository, "1.0.0", days_ago=1, built_days_ago=400, tags=[("1.0.0", "exact")])
    assert activity(repository) == {"1.0.0": True}


@pytest.mark.django_db
def test_a_deleted_floating_tag_keeps_nothing_active(repository, settings):
    settings.TAGLEDGER_INACTIVE_AFTER_DAYS = 90
    version_with_build(repository, "2.0.0", days_ago=200, tags=[("2", "major")])
    TagState.objects.update(present=False)
    assert activity(repository) == {"2.0.0": True}
