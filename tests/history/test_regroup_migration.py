"""Migration 0007: rows polled under the old tag grammar are regrouped as the grammar reads them now."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection

from catalog.models import Line, Version
from history.models import Build
from tests.history.factories import Image

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def regroup() -> None:
    migration = importlib.import_module("history.migrations.0007_regroup_for_the_tag_grammar")
    migration.regroup(apps, connection.schema_editor())


def rows(image: Image) -> list[tuple[str, str, str, int]]:
    """(line, version, variant, builds) of a repository, sorted."""
    return sorted(
        (version.line.name, version.name, version.variant, version.builds.count())
        for version in Version.objects.filter(repository=image.repository).select_related("line")
    )


def test_a_variant_per_build_becomes_one_variant_holding_every_build():
    image = Image("demo/python")
    old = []
    for day in range(3):
        stamp = f"202611{20 + day}1200"
        # what the old grammar stored: an exact tag of variant `dev-<stamp>`, one row per build
        version = image.version("3.14.4", f"dev-{stamp}")
        build = image.build(version, at=T0 + timedelta(days=day))
        image.tag(f"3.14.4-dev-{stamp}", build, kind="exact", version="3.14.4", variant=f"dev-{stamp}")
        old.append(build)
    image.tag("3.14.4-dev", old[-1], kind="exact", version="3.14.4", variant="dev")
    image.tag("3.14-dev", old[-1], kind="minor", version="3.14", variant="dev")

    regroup()

    assert rows(image) == [("3.14", "3.14.4", "dev", 3)]
    kinds = set(image.repository.tags.values_list("kind", "variant"))
    assert kinds == {("timestamp", "dev"), ("exact", "dev"), ("minor", "dev")}


def test_builds_of_two_part_releases_get_their_version_and_majors_their_lines():
    image = Image("demo/postgres")
    current = image.build(None, at=T0)
    for name in ("18.3", "18", "latest", "18.3-trixie"):
        image.tag(name, current)
    beta = image.build(None, at=T0)
    image.tag("19beta3", beta, kind="other", version="", variant="")

    regroup()
    regroup()  # again: nothing more changes

    assert rows(image) == [("18", "18.3", "", 1), ("19", "19beta3", "", 1)]
    assert Build.objects.get(pk=current.pk).version.name == "18.3"


def test_a_build_no_tag_names_keeps_its_version_and_empty_rows_go():
    image = Image("demo/app", depth=2)
    labelled = image.build(image.version("main"), at=T0)
    image.tag("main", labelled)
    jdk = image.build(image.version("26.0.1_5", line="26.0"), at=T0)  # the old depth: line 26.0
    for name in ("26.0.1_5-jdk", "26-jdk", "26"):
        image.tag(name, jdk)
    image.version("3.14.4", "dev-202611201200")  # a row left without builds

    regroup()

    assert rows(image) == [("26", "26.0.1_5", "jdk", 1), ("main", "main", "", 1)]
    assert not Line.objects.filter(repository=image.repository, name="26.0").exists()
