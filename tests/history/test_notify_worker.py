"""From a push to a webhook through a real Celery worker and the Redis broker: the poll queues the
fan-out after its commit, the worker matches and batches the events and sends the delivery, and the
receiver gets one signed message for the poll's three changes.

The worker is a separate process, so the test commits its rows (transaction=True)."""

import hashlib
import hmac
import json

import pytest

from history.models import Delivery, PollRun, Subscription
from history.tasks import run_poll
from tests.history.factories import polled, watch
from tests.support.sink import Sink
from tests.support.worker import redis_worker

SECRET = "worker-notify-secret"


@pytest.fixture(scope="module")
def notifying_worker(django_db_setup, tmp_path_factory):
    extra = {"TAGLEDGER_NOTIFY_ALLOW": "127.0.0.1", "TAGLEDGER_BASE_URL": "https://tagledger.example.com"}
    with redis_worker(tmp_path_factory, "notify", **extra) as processes:
        yield processes[0]


@pytest.mark.django_db(transaction=True)
def test_a_poll_notifies_through_a_real_worker(notifying_worker, registry, pusher, repo_name):
    for tag in ("latest", "1.0", "old"):
        pusher.push(repo_name, tag, "oci", seed="day1")
    repository = watch(registry, repo_name)
    polled(repository)
    with Sink() as sink:
        Subscription.objects.create(
            url=f"{sink.url}/hook", secret=SECRET, kinds=["moved", "created", "deleted"]
        )
        pusher.push(repo_name, "latest", "oci", seed="day2")
        pusher.push(repo_name, "2.0", "oci", seed="day2")
        pusher.delete(repo_name, pusher.push(repo_name, "old", "oci", seed="gone").digest)

        run = run_poll(repository)  # autocommit: after_poll's on_commit queues at once
        assert (run.status, run.changes) == (PollRun.Status.OK, 3), run.error

        try:
            (request,) = sink.wait_for(1, timeout=30)
        except AssertionError:
            raise AssertionError(notifying_worker.log[-4000:]) from None

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED
    assert request.header("X-Tagledger-Delivery") == delivery.key
    signature = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.header("X-Tagledger-Signature") == f"sha256={signature}"
    events = json.loads(request.body)["events"]
    assert sorted((event["tag"], event["kind"]) for event in events) == [
        ("2.0", "created"), ("latest", "moved"), ("old", "deleted")
    ]  # fmt: skip
    assert {event["id"] for event in events} == {str(pk) for pk in run.events.values_list("pk", flat=True)}
    assert all(event["links"]["changelog"].startswith("https://tagledger.example.com/") for event in events)
