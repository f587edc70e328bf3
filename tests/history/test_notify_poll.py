"""Notifications end to end: a push to a real registry, a poll, the fan-out and the POSTs a webhook
receives (each format, signed); and a poll that ends while the broker is down still succeeds, its
notifications made later by the catch-up."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from history import deliveries, notify
from history.models import Delivery, PollRun, Subscription
from history.tasks import run_poll
from tests.history.factories import polled, watch
from tests.support.sink import Sink

ROOT = Path(__file__).resolve().parents[2]
SECRET = "webhook-secret-of-the-test"


@pytest.fixture
def loopback(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.0/8"]
    settings.TAGLEDGER_BASE_URL = "https://tagledger.example.com"


@pytest.mark.django_db
def test_a_pushed_move_reaches_each_receiver_signed(
    registry, pusher, repo_name, loopback, django_capture_on_commit_callbacks
):
    pusher.push(repo_name, "1.0", "oci", seed="day1")
    first = pusher.push(repo_name, "latest", "oci", seed="day1")
    repository = watch(registry, repo_name)
    polled(repository)  # the import: never sent
    with Sink() as sink:
        for format in ("json", "slack", "cloudevents"):
            notify.subscribe(
                url=f"{sink.url}/{format}", format=format, secret=SECRET, kinds=["moved", "created"]
            )
        second = pusher.push(repo_name, "latest", "oci", seed="day2")
        pusher.push(repo_name, "2.0", "oci", seed="day2")

        with django_capture_on_commit_callbacks() as queued:
            run = run_poll(repository)
        assert (run.status, run.changes) == (PollRun.Status.OK, 2)
        assert len(queued) == 1  # after_poll's, run by the commit in a worker's poll

        made = notify.fan_out(run.pk)
        assert len(made) == 3 and notify.fan_out(run.pk) == []
        for delivery in made:
            assert deliveries.attempt(delivery).status == Delivery.Status.DELIVERED
        received = {request.path.rsplit("/", 1)[-1]: request for request in sink.requests}

    assert set(received) == {"json", "slack", "cloudevents"}
    for format, request in received.items():
        delivery = next(d for d in made if d.subscription.format == format)
        assert request.body == delivery.body.encode()
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.header("X-Tagledger-Signature") == f"sha256={expected}"
        timestamp = request.header("X-Tagledger-Timestamp")
        timestamped = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
        assert request.header("X-Tagledger-Timestamp-Signature") == f"sha256={timestamped.hexdigest()}"
        assert request.header("X-Tagledger-Delivery") == delivery.key

    events = json.loads(received["json"].body)["events"]
    assert sorted((e["tag"], e["kind"]) for e in events) == [("2.0", "created"), ("latest", "moved")]
    moved = next(e for e in events if e["kind"] == "moved")
    assert (moved["digest"], moved["previous_digest"]) == (second.digest, first.digest)
    assert moved["repository"] == repository.reference
    assert moved["links"]["compare"].startswith("https://tagledger.example.com/compare?a=")
    assert received["json"].header("Content-Type") == "application/json"
    assert received["cloudevents"].header("Content-Type") == "application/cloudevents-batch+json"
    types = sorted(event["type"] for event in json.loads(received["cloudevents"].body))
    assert types == ["dev.tagledger.tag.created", "dev.tagledger.tag.moved"]
    slack = json.loads(received["slack"].body)
    assert slack["text"] == f"tagledger: 2 changes in `{repository.reference}`"


# transaction=True: the poll runs in its own process, on the test database.
@pytest.mark.django_db(transaction=True)
def test_a_poll_succeeds_while_the_broker_is_down_and_catch_up_sends_later(registry, pusher, repo_name):
    pusher.push(repo_name, "latest", "oci", seed="day1")
    repository = watch(registry, repo_name)
    polled(repository)
    Subscription.objects.create(url="http://127.0.0.1:9/hook", secret=SECRET)
    pusher.push(repo_name, "latest", "oci", seed="day2")
    database = connection.settings_dict
    environment = dict(os.environ) | {
        "DATABASE_URL": f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "TAGLEDGER_LOG_LEVEL": "warning",
    }

    done = subprocess.run(
        [sys.executable, "manage.py", "poll", "--wait", "0", repository.reference],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{repository.reference}: ok" in done.stdout
    assert "notifications not queued: the broker refused" in done.stderr
    run = PollRun.objects.filter(repository=repository).latest("started_at")
    assert run.changes == 1 and not Delivery.objects.exists()
    (made,) = notify.catch_up(now=timezone.now() + notify.CATCH_UP_GRACE + timedelta(seconds=1))
    assert [event.kind for event in made.events.all()] == ["moved"]
