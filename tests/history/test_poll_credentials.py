"""Credentials come from $DOCKER_CONFIG/config.json; a broken file fails the poll with its reason."""

import base64
import json

import pytest

from history.models import PollRun, TagEvent
from history.polling import poll
from tests.history.factories import watch


@pytest.mark.django_db
def test_a_basic_auth_registry_is_polled_with_config_json_credentials(
    basic_registry, make_pusher, repo_name, settings, tmp_path
):
    pushed = make_pusher(basic_registry).push(repo_name, "1.0", "oci")
    auth = base64.b64encode(f"{basic_registry.username}:{basic_registry.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    settings.DOCKER_CONFIG = str(tmp_path)
    run = poll(watch(basic_registry, repo_name))
    assert run.status == PollRun.Status.OK, run.error
    assert TagEvent.objects.get(tag__name="1.0").build.digest == pushed.digest


@pytest.mark.django_db
def test_missing_credentials_fail_the_poll_with_the_reason(basic_registry, repo_name, settings, tmp_path):
    settings.DOCKER_CONFIG = str(tmp_path)
    run = poll(watch(basic_registry, repo_name))
    assert run.status == PollRun.Status.FAILED
    assert "requires credentials" in run.error
    assert not TagEvent.objects.exists()


@pytest.mark.django_db
def test_a_broken_config_json_fails_the_poll_instead_of_crashing(registry, repo_name, settings, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    settings.DOCKER_CONFIG = str(tmp_path)
    run = poll(watch(registry, repo_name))
    assert run.status == PollRun.Status.FAILED
    assert "config.json" in run.error
    assert run.finished_at is not None
