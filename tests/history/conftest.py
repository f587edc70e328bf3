"""Fixtures of history tests. `public` (a readable instance) is in tests/conftest.py, as the
browser and project tests use it too; `polled()`, the helper for a poll that must end ok, is in
factories.py, as stories call it several times."""

import pytest

from catalog.models import Repository
from tests.history.factories import polled as poll_ok
from tests.history.factories import watch


@pytest.fixture
def polled(registry, pusher, repo_name) -> Repository:
    """A repository of the session registry holding one buildx index tagged 1.0 (a build, its
    platforms and their attestations), watched and polled once without error."""
    pusher.push_buildx_index(repo_name, "1.0", seed="day1")
    repository = watch(registry, repo_name)
    poll_ok(repository)
    return repository
