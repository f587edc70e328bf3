"""Delivering a notification: signed, keyed for idempotency, retried with growing jittered waits or
as Retry-After asks, given up after its attempts, and a subscription that keeps failing disabled
where people see it. Against a real HTTP receiver on loopback (tests/support/sink.py)."""

import email.utils
import hashlib
import hmac
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from history import deliveries, outbound, payloads, tasks
from history.models import Delivery, Subscription
from tests.support.sink import Sink

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests"


@pytest.fixture
def notify_settings(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]  # the sink is on loopback
    settings.TAGLEDGER_NOTIFY_TIMEOUT = 5
    settings.TAGLEDGER_NOTIFY_ATTEMPTS = 4
    settings.TAGLEDGER_NOTIFY_BACKOFF = 30
    settings.TAGLEDGER_NOTIFY_DISABLE_AFTER = 6
    return settings


@pytest.fixture
def sink(notify_settings):
    with Sink() as running:
        yield running


def subscribe(url: str, **fields) -> Subscription:
    return Subscription.objects.create(url=url, secret=SECRET, **fields)


def queued(subscription: Subscription, key: str = "poll-1-batch-0", body: str = '{"events":[]}', **fields):
    return Delivery.objects.create(subscription=subscription, key=key, body=body, **fields)


def retried(delivery: Delivery) -> Delivery:
    """The next attempt, at the time it was scheduled for."""
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    return deliveries.attempt(delivery, now=delivery.next_attempt_at)


def verify(secret: str, request) -> None:
    """What a receiver does: both signatures, compared in constant time."""
    body = request.body
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.header(deliveries.SIGNATURE_HEADER), expected)
    timestamp = request.header(deliveries.TIMESTAMP_HEADER)
    signed = f"{timestamp}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.header(deliveries.TIMESTAMP_SIGNATURE_HEADER), expected)


# --- what is sent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["json", "slack", "cloudevents"])
def test_a_delivery_is_signed_keyed_and_typed_and_recorded_as_delivered(sink, format):
    body = '{"text":"tag 1.2 moved — ünïcödé 🚀","events":[{"id":7}]}'
    delivery = queued(subscribe(sink.url, format=format), body=body)
    now = timezone.now()

    delivery = deliveries.attempt(delivery, now=now)

    (request,) = sink.wait_for(1)
    assert request.method == "POST" and request.body == body.encode()  # the stored bytes, as UTF-8
    verify(SECRET, request)
    assert request.header(deliveries.TIMESTAMP_HEADER) == str(int(now.timestamp()))
    assert request.header(deliveries.DELIVERY_HEADER) == "poll-1-batch-0"
    assert request.header("Content-Type") == payloads.content_type(format, body.encode())
    assert request.header("User-Agent").startswith("tagledger")
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    assert delivery.delivered_at == now and delivery.next_attempt_at is None and delivery.error == ""
    assert delivery.latency_ms is not None


def test_a_signature_made_with_another_secret_or_body_does_not_verify(sink):
    deliveries.attempt(queued(subscribe(sink.url)))
    (request,) = sink.wait_for(1)
    with pytest.raises(AssertionError):
        verify("another-secret", request)
    tampered = type(request)(request.method, request.path, request.headers, request.body + b" ", request.at)
    with pytest.raises(AssertionError):
        verify(SECRET, tampered)


def test_the_idempotency_key_is_the_same_on_every_attempt_and_each_attempt_is_signed_anew(sink):
    sink.respond(500, body=b"busy", times=2)
    subscription = subscribe(sink.url)
    delivery = deliveries.attempt(queued(subscription, key="k-42"), now=timezone.now() - timedelta(hours=1))
    delivery = retried(delivery)
    delivery = retried(delivery)

    requests = sink.wait_for(3)
    assert {r.header(deliveries.DELIVERY_HEADER) for r in requests} == {"k-42"}
    assert len({r.header(deliveries.TIMESTAMP_HEADER) for r in requests}) == 3  # later each time
    for request in requests:
        verify(SECRET, request)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0  # a success ends the run of failures


# --- retries ----------------------------------------------------------------------------------------


@hypothesis_settings(max_examples=200, deadline=None)
@given(base=st.integers(min_value=1, max_value=600), attempts=st.integers(min_value=1, max_value=40))
def test_the_wait_doubles_per_attempt_up_to_an_hour_with_half_of_it_random(base, attempts):
    with override_settings(TAGLEDGER_NOTIFY_BACKOFF=base):
        ceiling = min(deliveries.MAX_BACKOFF, base * 2 ** (attempts - 1))
        waits = [deliveries.backoff(attempts) for _ in range(20)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 1  # jittered: twenty deliveries failing together do not retry together
        if (
            base * 2**attempts <= deliveries.MAX_BACKOFF
        ):  # below the cap, a wait is never shorter than the last
            assert min(deliveries.backoff(attempts + 1) for _ in range(20)) >= max(waits)


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("120", 120),
        ("0", 0),
        ("99999", deliveries.MAX_BACKOFF),
        ("9" * 400, deliveries.MAX_BACKOFF),
        ("  7 ", 7),
    ],
)
def test_retry_after_in_seconds_sets_the_next_attempt_capped_at_an_hour(sink, retry_after, seconds):
    sink.respond(503, headers={"Retry-After": retry_after})
    now = timezone.now()
    delivery = deliveries.attempt(queued(subscribe(sink.url)), now=now)
    assert delivery.status == "pending" and delivery.response_code == 503
    assert delivery.next_attempt_at == now + timedelta(seconds=seconds)


@pytest.mark.parametrize(("ahead", "expected"), [(600, 600), (86400, deliveries.MAX_BACKOFF), (-600, 0)])
def test_retry_after_as_an_http_date_is_honoured_and_capped(sink, ahead, expected):
    sink.respond(429, headers={"Retry-After": email.utils.formatdate(time.time() + ahead, usegmt=True)})
    now = timezone.now()
    delivery = deliveries.attempt(queued(subscribe(sink.url)), now=now)
    wait = (delivery.next_attempt_at - now).total_seconds()
    assert expected - 5 <= wait <= expected + 1  # the date has whole seconds, and the clock moved on


@pytest.mark.parametrize("retry_after", ["soon", "-5", "1e3", "Wed, 99 Foo 2026 00:00:00 GMT", "1.5", ""])
def test_a_retry_after_that_is_no_time_is_ignored_for_the_usual_backoff(sink, retry_after):
    sink.respond(503, headers={"Retry-After": retry_after})
    now = timezone.now()
    delivery = deliveries.attempt(queued(subscribe(sink.url)), now=now)
    wait = (delivery.next_attempt_at - now).total_seconds()
    assert 15 <= wait <= 30  # the first backoff step of 30 s, with equal jitter


def test_a_delivery_fails_after_its_last_attempt_saying_why(sink):
    sink.respond(500, body=b'{"error": "database is down"}\n' + b"x" * 10_000, times=10)
    delivery = deliveries.attempt(queued(subscribe(sink.url)))
    for _ in range(3):
        delivery = retried(delivery)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    assert delivery.error.startswith('HTTP 500: {"error": "database is down"}')
    assert len(delivery.error) < 400 and delivery.error.isprintable()
    assert len(sink.requests) == 4
    assert deliveries.attempt(delivery).attempts == 4  # a failed delivery is never sent again
    assert len(sink.requests) == 4


@hypothesis_settings(max_examples=300, deadline=None)
@given(answer=st.text(max_size=5000), status=st.sampled_from([400, 401, 404, 410, 429, 500, 502, 503]))
def test_any_answer_becomes_a_short_printable_error(answer, status):
    error = deliveries._http_error(outbound.Response(status, {}, answer, 0.1))
    assert error.startswith(f"HTTP {status}") and error.isprintable()
    assert len(error) <= deliveries.ERROR_TEXT + 10


def test_an_answer_in_any_script_is_kept_but_controls_and_bidi_overrides_are_not():
    answer = "Fehler: ungültig — 無効\x00\x1b[31m\u202egnp.exe\r\nnext"
    error = deliveries._http_error(outbound.Response(400, {}, answer, 0.1))
    assert error == "HTTP 400: Fehler: ungültig — 無効 [31m gnp.exe next"


def test_a_redirect_is_a_failure_that_says_where_it_pointed_and_is_not_followed(sink):
    with Sink() as elsewhere:
        sink.respond(307, headers={"Location": elsewhere.url})
        delivery = deliveries.attempt(queued(subscribe(sink.url)))
        assert delivery.status == "pending" and delivery.response_code == 307
        assert delivery.error == f"HTTP 307: redirects are not followed (to {elsewhere.url})"
        assert elsewhere.requests == []


def test_a_receiver_that_cannot_be_reached_is_a_failed_attempt_with_a_reason(notify_settings):
    with Sink() as gone:
        url = gone.url
    delivery = deliveries.attempt(queued(subscribe(url)))
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.response_code is None
    assert "Connection refused" in delivery.error or "ConnectionError" in delivery.error


def test_a_url_that_became_unsafe_is_refused_at_send_time_and_nothing_is_sent(sink, settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = []  # the operator took 127.0.0.1 off the list
    delivery = deliveries.attempt(queued(subscribe(sink.url)))
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert sink.requests == []


# --- disabling a subscription that keeps failing -------------------------------------------------------


def test_after_n_failures_in_a_row_the_subscription_is_disabled_visibly_and_its_pending_ones_fail(sink):
    sink.respond(500, body=b"Internal Server Error", times=100)
    subscription = subscribe(sink.url)
    first = queued(subscription, key="a")
    second = queued(subscription, key="b")
    third = queued(subscription, key="c")
    at = timezone.now()

    first = deliveries.attempt(first, now=at)
    # While it fails, the older delivery goes first: the others are not sent, and not due.
    assert deliveries.attempt(second, now=at).attempts == 0
    assert set(deliveries.due(at + timedelta(hours=2))) == {first.pk}
    for _ in range(3):
        first = retried(first)
    assert first.status == "failed"
    # Then the next in line carries on counting: 4 + 2 = TAGLEDGER_NOTIFY_DISABLE_AFTER.
    second = deliveries.attempt(second, now=at)
    second = retried(second)

    subscription.refresh_from_db()
    assert not subscription.enabled and subscription.disabled_at is not None
    assert subscription.disabled_reason == "6 consecutive failures; last: HTTP 500: Internal Server Error"
    second.refresh_from_db()
    third.refresh_from_db()
    assert (second.status, third.status) == ("failed", "failed")
    assert third.attempts == 0 and third.error.startswith("not sent: the subscription was disabled (6 consec")
    assert len(sink.requests) == 6
    assert deliveries.due(at + timedelta(days=1)) == []


def test_a_re_enabled_subscription_delivers_again(sink):
    sink.respond(500, times=6)
    subscription = subscribe(sink.url)
    for key in "abcdef":
        delivery = queued(subscription, key=key)
        for _ in range(5):
            delivery = deliveries.attempt(delivery, now=delivery.next_attempt_at)
            if delivery.status != "pending":
                break
    subscription.refresh_from_db()
    assert not subscription.enabled

    # What history.notify.enable does (the pages' and the API's door).
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=True, disabled_at=None, disabled_reason="", consecutive_failures=0
    )
    delivery = deliveries.attempt(queued(subscription, key="after"))
    assert delivery.status == "delivered"
    assert sink.requests[-1].header(deliveries.DELIVERY_HEADER) == "after"


def test_a_pending_delivery_of_a_subscription_disabled_by_hand_fails_unsent_but_a_test_is_sent(sink):
    subscription = subscribe(sink.url, enabled=False, disabled_reason="paused for maintenance")
    delivery = deliveries.attempt(queued(subscription))
    assert delivery.status == "failed" and delivery.attempts == 0
    assert delivery.error == "not sent: the subscription is disabled (paused for maintenance)"
    assert sink.requests == []

    test = deliveries.attempt(queued(subscription, key="test-1", test=True))
    assert test.status == "delivered" and len(sink.requests) == 1


def test_a_failed_test_delivery_is_tried_once_and_does_not_count_against_the_subscription(sink):
    sink.respond(404, body=b"no_service")
    subscription = subscribe(sink.url)
    test = deliveries.attempt(queued(subscription, key="test-1", test=True))
    assert (test.status, test.attempts, test.error) == ("failed", 1, "HTTP 404: no_service")
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0 and subscription.enabled


# --- what deliver_due picks -------------------------------------------------------------------------


def test_deliver_due_never_picks_a_delivered_one_and_the_task_does_not_resend_it(sink):
    delivery = deliveries.attempt(queued(subscribe(sink.url)))
    assert delivery.status == "delivered"
    assert delivery.pk not in deliveries.due(timezone.now() + timedelta(days=30))
    tasks.deliver(delivery.pk)  # a duplicate message: claimed already, so nothing is sent
    assert len(sink.requests) == 1


def test_due_picks_retries_whose_time_came_and_new_ones_whose_task_was_lost(sink):
    subscription = subscribe(sink.url)
    now = timezone.now()
    later = queued(subscription, key="later", attempts=1, next_attempt_at=now + timedelta(minutes=5))
    ready = queued(subscription, key="ready", attempts=1, next_attempt_at=now - timedelta(seconds=1))
    fresh = queued(subscription, key="fresh")  # its task is on the way
    lost = queued(subscription, key="lost", created_at=now - deliveries.LOST_TASK_AFTER)
    queued(subscription, key="done", status="delivered", next_attempt_at=now - timedelta(hours=1))
    queued(subscription, key="gave-up", status="failed", next_attempt_at=now - timedelta(hours=1))

    assert deliveries.due(now) == [ready.pk, lost.pk]
    assert later.pk in deliveries.due(now + timedelta(minutes=5))
    assert fresh.pk in deliveries.due(timezone.now() + deliveries.LOST_TASK_AFTER)


def test_an_attempt_that_is_not_due_yet_is_not_sent(sink):
    sink.respond(503)
    delivery = deliveries.attempt(queued(subscribe(sink.url)))
    again = deliveries.attempt(delivery)  # the task of a duplicate message, before the retry time
    assert again.attempts == 1 and len(sink.requests) == 1


def test_a_vanished_delivery_is_a_quiet_return():
    tasks.deliver(10**9)
    assert deliveries.attempt_by_id(10**9) is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_attempting_the_same_delivery_at_once_send_it_once(sink):
    sink.respond(200, delay=0.5)  # the first is still sending when the second would start
    delivery = queued(subscribe(sink.url))
    start = threading.Barrier(4)
    results = []

    def worker():
        try:
            start.wait()
            results.append(deliveries.attempt(Delivery.objects.get(pk=delivery.pk)).status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(sink.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(results) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [200, 500])
def test_a_subscription_removed_while_its_delivery_is_in_flight_ends_the_attempt_quietly(sink, status):
    sink.respond(status, delay=0.5)
    subscription = subscribe(sink.url)
    delivery = queued(subscription)
    finished = []

    def send():
        try:
            finished.append(deliveries.attempt(delivery))
        finally:
            connections.close_all()  # this thread's connection

    sending = threading.Thread(target=send)
    sending.start()
    try:
        sink.wait_for(1)
        subscription.delete()  # its delivery log goes with it
    finally:
        sending.join(30)
    assert finished and finished[0].pk == delivery.pk
    assert not Delivery.objects.filter(pk=delivery.pk).exists()


def test_beat_queues_the_due_deliveries_every_15_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["deliver-due"]
    assert entry["task"] == tasks.deliver_due.name  # a registered task's name, not a typo
    assert entry["schedule"] == 15.0 and entry["options"]["expires"] < 15
