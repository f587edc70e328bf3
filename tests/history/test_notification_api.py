"""The notification endpoints of the API: staff only on every instance (a session, or a staff user's
token, with staff scope to write), the secret in the creating answer only, URLs masked, the delivery
log in keyset pages, a 400 or 404 that says why for anything else, never a 500."""

import json
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
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

from catalog.models import Registry, Repository
from history.models import Delivery, Subscription
from tagledger.tokens.models import ApiToken
from tagledger.wsgi import application
from tests.support.sink import Sink

pytestmark = [pytest.mark.django_db]

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SLACK = "https://hooks.slack.com/services/T0000/B0000/abcdefghijklmnopqrstWXYZ"
OPERATIONS = [
    ("get", "/api/v1/subscriptions"),
    ("post", "/api/v1/subscriptions"),
    ("get", "/api/v1/subscriptions/{id}"),
    ("delete", "/api/v1/subscriptions/{id}"),
    ("post", "/api/v1/subscriptions/{id}/test"),
    ("get", "/api/v1/deliveries"),
]


@pytest.fixture(autouse=True)
def loopback(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]


def subscription(**fields) -> Subscription:
    return Subscription.objects.create(**{"url": SLACK, "secret": "s" * 32, **fields})


def delivery(to: Subscription, n: int, **fields) -> Delivery:
    fields = {"key": f"key-{to.pk}-{n}", "body": "{}", "created_at": START + timedelta(minutes=n), **fields}
    return Delivery.objects.create(subscription=to, **fields)


def bearer(user: User, *, staff: bool) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.objects.issue(user, 'ci', staff=staff).secret}"}


def call(client: Client, method: str, path: str, hook: Subscription, **extra):
    path = path.format(id=hook.pk)
    if method == "post" and path.endswith("subscriptions"):
        body = json.dumps({"url": "http://127.0.0.1:9/hook"})
        return client.post(path, body, content_type="application/json", **extra)
    return getattr(client, method)(path, **extra)


# --- who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", OPERATIONS)
@pytest.mark.parametrize("public", [True, False])
def test_the_anonymous_get_a_401_and_others_a_403_even_on_a_public_instance(
    settings, client, public, method, path
):
    settings.TAGLEDGER_PUBLIC = public
    hook = subscription(name="team")
    response = call(client, method, path, hook)
    assert response.status_code == 401 and response.json() == {"detail": "authentication required"}
    reader = User.objects.create_user("reader")
    client.force_login(reader)
    response = call(client, method, path, hook)
    assert response.status_code == 403 and "staff only" in response.json()["detail"]
    response = call(Client(), method, path, hook, **bearer(reader, staff=False))
    assert response.status_code == 403 and "staff only" in response.json()["detail"]
    assert Subscription.objects.get().enabled and not Delivery.objects.exists()


@pytest.mark.parametrize("method, path", [op for op in OPERATIONS if op[0] != "get"])
def test_a_read_only_token_of_a_staff_user_reads_but_does_not_write(method, path, admin_user):
    hook = subscription(name="team")
    token = bearer(admin_user, staff=False)
    assert Client().get("/api/v1/subscriptions", **token).status_code == 200
    response = call(Client(), method, path, hook, **token)
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert list(Subscription.objects.all()) == [hook] and not Delivery.objects.exists()


def test_a_session_write_needs_the_csrf_token(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    hook = subscription(name="team")
    for method, path in OPERATIONS:
        response = call(client, method, path, hook)
        assert response.status_code == (200 if method == "get" else 403), (method, path)
    assert list(Subscription.objects.all()) == [hook]


# --- subscriptions --------------------------------------------------------------------------------


def test_a_new_subscription_answers_its_secret_once(admin_user, settings):
    settings.TAGLEDGER_PUBLIC = True  # the staff endpoints read a token on a public instance too
    registry = Registry.objects.create(host="registry.example")
    repository = Repository.objects.create(registry=registry, name="python")
    token = bearer(admin_user, staff=True)
    body = {
        "url": "http://127.0.0.1:9/services/T0/B0/keypart1234",
        "format": "slack",
        "name": "<b>release</b> team",
        "repository": repository.pk,
        "tag_pattern": r"^3\.14",
        "kinds": ["deleted", "moved"],
    }
    response = Client().post(
        "/api/v1/subscriptions", json.dumps(body), content_type="application/json", **token
    )
    assert response.status_code == 201, response.content
    made = Subscription.objects.get()
    answer = response.json()
    assert answer["secret"] == made.secret and len(made.secret) >= 32
    assert answer["url"] == "http://127.0.0.1:9/…/1234" and made.url == body["url"]
    assert (answer["id"], answer["name"], answer["kinds"], answer["repository"]) == (
        made.pk, "<b>release</b> team", ["moved", "deleted"], "registry.example/python"
    )  # fmt: skip
    assert answer["filters"] == r"moved, deleted · in registry.example/python · tags matching ^3\.14"
    assert made.created_by == admin_user
    listed = Client().get("/api/v1/subscriptions", **token).json()
    one = Client().get(f"/api/v1/subscriptions/{made.pk}", **token).json()
    for shown in (listed[0], one):
        assert (
            "secret" not in shown
            and made.secret not in json.dumps(shown)
            and "keypart" not in json.dumps(shown)
        )
        assert shown == {key: value for key, value in answer.items() if key != "secret"}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"url": "ftp://127.0.0.1/x"}, "http"),
        ({"url": "http://10.0.0.8/hook"}, "private"),
        ({"url": "http://169.254.169.254/"}, "address"),
        ({"url": "http://127.0.0.1:9/x", "tag_pattern": "(open"}, "tag pattern"),
        ({"url": "http://127.0.0.1:9/x", "kinds": ["untracked"]}, "unknown kind"),
        ({"url": "http://127.0.0.1:9/x", "format": "xml"}, "format"),
        ({"url": "http://127.0.0.1:9/x", "secret": "short"}, "16 to 256"),
        ({"url": "http://127.0.0.1:9/x", "secret": ""}, "secret"),
        ({"url": "http://127.0.0.1:9/x", "name": "a\x00b"}, "NUL"),
        ({"url": "http://127.0.0.1:9/x", "tag_pattern": "a\x00"}, "NUL"),
        ({"url": "http://127.0.0.1:9/x", "repository": 424242}, "no repository with id 424242"),
        ({"url": "http://127.0.0.1:9/x", "repository": 2**64}, "repository"),
        ({"url": "http://127.0.0.1:9/x", "pin_list": 424242}, "no pin list with id 424242"),
        ({"url": "http://127.0.0.1:9/x", "line": "3.14"}, "give `repository` too"),
        ({"url": "http://127.0.0.1:9/x", "surprise": 1}, "surprise"),
        ({"url": ["http://127.0.0.1:9/x"]}, "url"),
        ({}, "url"),
    ],
)
def test_a_refused_subscription_is_a_400_that_says_why(admin_user, body, message):
    response = Client().post(
        "/api/v1/subscriptions",
        json.dumps(body),
        content_type="application/json",
        **bearer(admin_user, staff=True),
    )
    assert response.status_code == 400 and message in response.json()["detail"], response.content
    assert not Subscription.objects.exists()


@hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )
    | st.fixed_dictionaries({"url": st.text(max_size=60)}, optional={"kinds": st.lists(st.text(max_size=8))})
)
def test_no_body_makes_the_api_fail(body):
    admin, _ = User.objects.get_or_create(username="hyp-admin", is_staff=True)
    client = Client()
    client.force_login(admin)
    response = client.post("/api/v1/subscriptions", json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400), response.content
    assert "detail" in response.json() or "secret" in response.json()


def test_bodies_that_are_not_json_or_too_large_are_400s(admin_client):
    for raw in (b"{", b"\xff\xfe", b"[" * 10_000, b'{"url": "' + b"a" * 5_000_000 + b'"}'):
        response = admin_client.post("/api/v1/subscriptions", raw, content_type="application/json")
        assert response.status_code in (400, 413), (raw[:20], response.status_code)
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("pk", ["0", "-1", "abc", "1.0", "99999999999999999999", str(2**63), "%00"])
def test_a_malformed_id_is_a_400_or_404_never_a_500(admin_client, pk):
    for method, path in OPERATIONS:
        if "{id}" in path:
            response = getattr(admin_client, method)(path.replace("{id}", pk))
            assert response.status_code in (400, 404), (method, path, response.status_code)


def test_an_unknown_id_is_a_404(admin_client):
    for method, path in OPERATIONS:
        if "{id}" in path:
            response = getattr(admin_client, method)(path.format(id=424242))
            assert response.status_code == 404 and response.json() == {
                "detail": "no subscription with id 424242"
            }


def test_delete_removes_it_and_its_log(admin_client):
    hook, kept = subscription(name="old"), subscription(name="kept")
    delivery(hook, 1)
    assert admin_client.delete(f"/api/v1/subscriptions/{hook.pk}").status_code == 204
    assert list(Subscription.objects.all()) == [kept] and not Delivery.objects.exists()
    assert admin_client.delete(f"/api/v1/subscriptions/{hook.pk}").status_code == 404


def test_a_test_delivery_is_answered_as_the_log_records_it(admin_user):
    token = bearer(admin_user, staff=True)
    with Sink() as sink:
        hook = subscription(name="sink", url=sink.url)
        response = Client().post(f"/api/v1/subscriptions/{hook.pk}/test", **token)
        sink.wait_for(1)
    assert response.status_code == 200, response.content
    answer = response.json()
    sent = Delivery.objects.get()
    assert (answer["id"], answer["key"], answer["status"], answer["test"], answer["response_code"]) == (
        sent.pk, sent.key, "delivered", True, 200
    )  # fmt: skip
    assert answer["latency_ms"] is not None and answer["subscription"] == {
        "id": hook.pk, "name": "sink", "url": f"http://127.0.0.1:{sink.port}/…"
    }  # fmt: skip
    log = Client().get("/api/v1/deliveries", **token).json()
    assert log["items"] == [answer] and log["next"] is None


# --- the delivery log -----------------------------------------------------------------------------


def test_the_log_pages_newest_first_by_subscription_and_status(admin_client):
    one, two = subscription(name="one"), subscription(name="two")
    for n in range(120):
        delivery(one if n % 2 else two, n, status="delivered" if n % 3 else "failed", error="x" * 1000)
    seen, cursor = [], None
    while True:
        query = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        answer = admin_client.get("/api/v1/deliveries", query).json()
        seen += answer["items"]
        cursor = answer["next"]
        if cursor is None:
            break
    assert [item["key"] for item in seen] == [
        f"key-{(one if n % 2 else two).pk}-{n}" for n in reversed(range(120))
    ]
    assert all(len(item["error"]) == 300 for item in seen)
    failed = admin_client.get("/api/v1/deliveries", {"subscription": one.pk, "status": "failed"}).json()
    assert [item["key"] for item in failed["items"]] == [
        f"key-{one.pk}-{n}" for n in reversed(range(120)) if n % 2 and n % 3 == 0
    ]
    assert admin_client.get("/api/v1/deliveries").json()["next"] is not None  # 50 by default


@pytest.mark.parametrize(
    "query, status",
    [
        ({"status": "lost"}, 400),
        ({"subscription": "abc"}, 400),
        ({"subscription": "0"}, 400),
        ({"subscription": "99999999999999999999"}, 400),
        ({"subscription": "424242"}, 404),
        ({"cursor": "nonsense!"}, 400),
        ({"cursor": "a" * 201}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "201"}, 400),
        ({"limit": "1_0"}, 400),
    ],
)
def test_a_bad_log_query_is_refused_saying_why(admin_client, query, status):
    response = admin_client.get("/api/v1/deliveries", query)
    assert response.status_code == status and response.json()["detail"]


# --- the schema -----------------------------------------------------------------------------------


@pytest.fixture
def staff_app(admin_user):
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application, bearer(admin_user, staff=True)["HTTP_AUTHORIZATION"]
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_staff_endpoints_answer_generated_requests_as_the_schema_says(staff_app, mode):
    """Schemathesis with a staff token, at an existing subscription with deliveries: every answer
    matches the schema and none is a 5xx (a test delivery's receiver is a local sink)."""
    wsgi, authorization = staff_app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    with Sink() as sink:
        hook = subscription(name="sink", url=sink.url)
        for n in range(3):
            delivery(hook, n, status="failed", error="refused")
        seen = set()
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.lower(), operation.full_path) not in OPERATIONS:
                continue
            seen.add(operation.label)
            path = {"id": hook.pk} if "{id}" in operation.path else None
            strategy = st.one_of(
                operation.as_strategy(generation_mode=mode),
                operation.as_strategy(generation_mode=mode, path_parameters=path),
            )

            @hypothesis.settings(
                max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            @given(case=strategy)
            def check(case):
                if case.method == "DELETE" and case.path_parameters.get("id") == hook.pk:
                    return  # keep the subscription for the other cases
                case.call_and_validate(checks=checks, headers={"Authorization": authorization})

            check()
    assert len(seen) == len(OPERATIONS)
