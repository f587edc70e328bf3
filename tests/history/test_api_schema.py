"""The API's OpenAPI schema holds: generated requests never get a 5xx, and every answer matches it.

Schemathesis reads the schema from the WSGI app and generates requests from it, valid and
invalid, sent in-process to the same app; the data comes from a real poll of the real registry.
"""

from datetime import timedelta

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from history.models import PollRun
from history.polling import poll
from tagledger.wsgi import application
from tests.history.factories import watch

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = hypothesis.settings(
    deadline=timedelta(seconds=5),  # one request takes milliseconds; slack for a busy machine
    database=None,  # leave no .hypothesis/ folder behind
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def app(settings, registry, pusher, repo_name):
    """The WSGI app, public, over one polled repository; requests share the test's transaction."""
    settings.TAGLEDGER_PUBLIC = True
    pusher.push(repo_name, "1.0.0", "oci-index", seed="one")
    pusher.tag(repo_name, "1.0.0", "latest")
    repository = watch(registry, repo_name)
    assert poll(repository).status == PollRun.Status.OK
    pusher.push(repo_name, "1.0.0", "oci-index", seed="two")
    assert poll(repository).status == PollRun.Status.OK
    # As django.test.Client does: closing "old" connections would end the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application, repository
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def fuzz(schema, repository, mode: GenerationMode, *, checks, examples: int = 40, expect=None) -> None:
    """Each operation on its own, so each gets its share: anything the schema allows, and the same
    aimed at the polled repository, its version and its builds."""
    build = repository.builds.latest("first_seen_at")
    real = {"id": repository.pk, "version": "1.0.0"}
    pasted = {"q": build.digest, "a": build.digest[:20], "b": f"{repository.reference}:latest"}
    for result in schema.get_all_operations():
        operation = result.ok()
        parameters = {parameter.name for parameter in operation.iter_parameters()}
        if mode is GenerationMode.NEGATIVE and not parameters:
            continue  # nothing to get wrong
        strategies = [
            operation.as_strategy(generation_mode=mode),
            operation.as_strategy(
                generation_mode=mode, path_parameters={k: v for k, v in real.items() if k in parameters}
            ),
            operation.as_strategy(
                generation_mode=mode,
                path_parameters={k: v for k, v in real.items() if k in parameters},
                query={k: v for k, v in pasted.items() if k in parameters} or None,
            ),
        ]

        @hypothesis.settings(BOUNDED, max_examples=examples)
        @given(case=st.one_of(strategies))
        def check(case):
            response = case.call_and_validate(checks=checks)
            if expect:
                expect(response)

        check()


def test_valid_requests_get_answers_that_match_the_schema(app):
    wsgi, repository = app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    fuzz(schema, repository, GenerationMode.POSITIVE, checks=CHECKS)


def test_invalid_requests_are_refused_with_a_4xx_that_matches_the_schema(app):
    wsgi, repository = app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    fuzz(schema, repository, GenerationMode.NEGATIVE, checks=[*CHECKS, negative_data_rejection])


def test_a_private_instance_refuses_anonymous_requests_as_the_schema_says(app, settings):
    settings.TAGLEDGER_PUBLIC = False
    wsgi, repository = app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    assert all(
        operation["security"] == [{"Readers": []}]
        for operations in schema.raw_schema["paths"].values()
        for operation in operations.values()
    )

    def refused(response):
        assert (response.status_code, response.json()) == (401, {"detail": "authentication required"})

    fuzz(schema, repository, GenerationMode.POSITIVE, checks=CHECKS, examples=5, expect=refused)
