"""Builds no tag names take their version from the `org.opencontainers.image.version` label."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from history.models import Build
from history.polling import poll
from tests.history.factories import watch

pytestmark = pytest.mark.django_db

VERSION_LABEL = "org.opencontainers.image.version"


def test_a_label_names_the_version_and_unnamed_builds_cost_one_query_per_poll(registry, pusher, repo_name):
    for number in range(4):
        pusher.push_image(
            repo_name, f"sha-{number}abcdef", seed=number, labels={VERSION_LABEL: f"2.{number}.0"}
        )
    for number in range(4):
        pusher.push_image(repo_name, f"nightly-build-x{number}", seed=f"unlabelled-{number}")
    repository = watch(registry, repo_name)

    poll(repository)

    names = sorted(
        filter(None, Build.objects.filter(repository=repository).values_list("version__name", flat=True))
    )
    assert names == ["2.0.0", "2.1.0", "2.2.0", "2.3.0"]
    # the four unlabelled builds are asked again on the next poll: one query for all of them
    with CaptureQueriesContext(connection) as queries:
        poll(repository)
    platform_reads = [q for q in queries.captured_queries if 'FROM "history_platform"' in q["sql"]]
    assert len(platform_reads) == 1
