"""The API's OpenAPI schema holds: generated requests never get a 5xx, and every answer matches it.

Schemathesis reads the schema from the WSGI app and generates requests from it, valid and
invalid, sent in-process to the same app; the data comes from a real poll of the real registry.
Three kinds: random valid requests, random invalid ones, and its coverage phase, which walks
each parameter's edges (bounds and one past them, wrong types, missing and repeated parameters,
methods the schema does not list).
"""

from datetime import datetime, timedelta, timezone

import hypothesis
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CoveragePhaseData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from history.keyset import Cursor, NameCursor
from history.models import PollRun, TagEvent
from history.polling import poll
from tagledger.tokens.models import ApiToken
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
def app(public, registry, pusher, repo_name):
    """The WSGI app, public, over one polled repository; requests share the test's transaction."""
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


def pasted(repository) -> list[dict[str, str]]:
    """What readers paste and pass back: a digest prefix, a reference, `next` of a page (the tags'
    cursors differ from the events' and the builds': each operation gets its own and the other's), and cursors
    that decode but name what the database refuses (a NUL in a tag name, a +23:59 offset)."""
    build = repository.builds.latest("first_seen_at")
    event = TagEvent.objects.newest_first().filter(tag__repository=repository).first()
    far_east = datetime(1970, 1, 2, tzinfo=timezone(timedelta(hours=23, minutes=59)))
    cursors = [
        NameCursor("latest").encode(),
        Cursor(event.detected_at, event.pk).encode(),
        NameCursor("a\x00b").encode(),
        Cursor(far_east, event.pk).encode(),
    ]
    texts = {"q": build.digest, "a": build.digest[:20], "b": f"{repository.reference}:latest"}
    return [texts, *({"cursor": cursor} for cursor in cursors)]


def real_path(repository) -> dict:
    """Path parameters naming what the poll recorded: the repository, its version, its tag latest,
    and its newest build."""
    digest = repository.builds.latest("first_seen_at").digest
    return {"id": repository.pk, "version": "1.0.0", "name": "latest", "digest": digest}


def fuzz(
    schema, repository, mode: GenerationMode, *, checks, examples: int = 40, expect=None, headers=None
) -> None:
    """Each operation on its own, so each gets its share: anything the schema allows, and the same
    aimed at the polled repository, its version, its builds and its tag `latest`."""
    real = real_path(repository)
    queries = pasted(repository)
    for result in schema.get_all_operations():
        operation = result.ok()
        parameters = {parameter.name for parameter in operation.iter_parameters()}
        if mode is GenerationMode.NEGATIVE and not parameters:
            continue  # nothing to get wrong
        path = {k: v for k, v in real.items() if k in parameters}
        strategies = [
            operation.as_strategy(generation_mode=mode),
            operation.as_strategy(generation_mode=mode, path_parameters=path),
            *(
                operation.as_strategy(
                    generation_mode=mode,
                    path_parameters=path,
                    query={k: v for k, v in query.items() if k in parameters} or None,
                )
                for query in queries
            ),
        ]

        @hypothesis.settings(BOUNDED, max_examples=examples)
        @given(case=st.one_of(strategies))
        def check(case):
            response = case.call_and_validate(checks=checks, headers=headers)
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
    assert all(takes_a_token_or_a_session(operation) for operation in operations(schema.raw_schema))

    def refused(response):
        # Schemathesis also sends the bearer scheme's header, with made-up tokens: a 401 saying why.
        assert response.status_code == 401 and response.json()["detail"]
        if not response.request.headers.get("Authorization", "").lower().startswith("bearer"):
            assert response.json()["detail"] == "authentication required"

    fuzz(schema, repository, GenerationMode.POSITIVE, checks=CHECKS, examples=5, expect=refused)


def test_a_private_instance_answers_an_api_token_as_the_schema_says(app, settings):
    """A script's request: no session, only `Authorization: Bearer` with a read-only token."""
    settings.TAGLEDGER_PUBLIC = False
    wsgi, repository = app
    secret = ApiToken.objects.issue(User.objects.create_user("ci"), "schemathesis").secret
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)

    def answered(response):
        assert response.status_code != 401, response.text

    headers = {"Authorization": f"Bearer {secret}"}
    fuzz(
        schema,
        repository,
        GenerationMode.POSITIVE,
        checks=CHECKS,
        examples=5,
        expect=answered,
        headers=headers,
    )


def test_every_parameter_at_its_edges_gets_an_answer_that_matches_the_schema(app):
    """Schemathesis's coverage phase, as generated and again at the polled repository and version
    (unless the case is about the path parameter itself): every case, not a sample."""
    wsgi, repository = app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    real = real_path(repository)
    checks = [*CHECKS, negative_data_rejection, unsupported_method, missing_required_header]
    failures, operations, count = [], set(), 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.add(operation.label)
        generation = schema.config.generation_for(operation=operation, phase="coverage")
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=generation,
        )
        for case in cases:
            data = case.meta.phase.data
            about = data.parameter if isinstance(data, CoveragePhaseData) else None
            variants = [dict(case.path_parameters or {})]
            if case.path_parameters and about not in real:
                variants.append({name: real.get(name, value) for name, value in case.path_parameters.items()})
            for path in variants:
                case.path_parameters = path
                count += 1
                try:
                    case.call_and_validate(checks=checks)
                except BaseException as failure:  # a FailureGroup, listed below
                    failures.append(f"{case.method} {case.formatted_path} {case.query}: {failure}"[:600])
    assert len(operations) == 24 and count > 200, (operations, count)
    assert not failures, "\n\n".join(failures)


def operations(document: dict) -> list[dict]:
    return [operation for operations in document["paths"].values() for operation in operations.values()]


READERS = [{"bearerAuth": []}, {"Readers": []}]


def staff_only(operation: dict) -> bool:
    """Notifications (subscriptions, deliveries): staff only on every instance, reads too."""
    return "notifications" in operation.get("tags", [])


def takes_a_token_or_a_session(operation: dict) -> bool:
    """A token first, then a session: the readers' for a read, staff's or a signed-in user's otherwise."""
    security = operation["security"]
    return security[0] == {"bearerAuth": []} and len(security) == 2 and "401" in operation["responses"]


def test_a_public_instance_declares_no_credentials_for_reading(client, public):
    """Swagger draws a lock on each operation that lists `security` and an Authorize button for a
    security scheme: a public instance's reads need neither, and never answer 401."""
    document = client.get("/api/v1/openapi.json").json()
    reads = [
        operation
        for methods in document["paths"].values()
        for method, operation in methods.items()
        if method == "get" and not staff_only(operation)
    ]
    assert len(reads) >= 8
    assert all("security" not in operation for operation in reads)
    assert all("401" not in operation["responses"] for operation in reads)
    # Subscriptions hold webhook URLs and secrets: no public instance lets the anonymous read them.
    assert all(
        takes_a_token_or_a_session(operation) for operation in operations(document) if staff_only(operation)
    )
    assert "Readers" not in document.get("components", {}).get("securitySchemes", {})
    assert client.get("/api/v1/repositories").status_code == 200
    assert client.get("/api/v1/subscriptions").status_code == 401


def test_a_private_instance_declares_its_session_and_tokens_for_every_operation(client, settings):
    settings.TAGLEDGER_PUBLIC = False
    document = client.get("/api/v1/openapi.json").json()
    assert all(takes_a_token_or_a_session(operation) for operation in operations(document))
    assert all(
        operation["security"] == READERS
        for methods in document["paths"].values()
        for method, operation in methods.items()
        if method == "get" and not staff_only(operation)
    )
    session = {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    bearer = {"type": "http", "scheme": "bearer"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == bearer and schemes["Readers"] == session and schemes["Staff"] == session
    assert client.get("/api/v1/repositories").status_code == 401
