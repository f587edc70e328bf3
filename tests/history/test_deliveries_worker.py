"""A delivery sent and retried by a real Celery worker process through the Redis broker: the task
queued on commit sends it, deliver_due queues its retries, and the receiver sees one key.

The worker is a separate process, so the test commits its rows (transaction=True) and waits on
the database with a deadline. Its backoff base is 0 s (TAGLEDGER_NOTIFY_BACKOFF in its
environment), so each retry is due as soon as it is scheduled.
"""

import time

import pytest

from history import deliveries, tasks
from history.models import Delivery, Subscription
from tests.support.sink import Sink
from tests.support.worker import redis_worker

TIMEOUT = 30


@pytest.fixture(scope="module")
def delivering_worker(django_db_setup, tmp_path_factory):
    extra = {
        "TAGLEDGER_NOTIFY_ALLOW": "127.0.0.1",
        "TAGLEDGER_NOTIFY_BACKOFF": "0",
        "TAGLEDGER_NOTIFY_ATTEMPTS": "5",
    }
    with redis_worker(tmp_path_factory, "deliver", **extra) as processes:
        yield processes[0]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_through_deliver_due_until_the_receiver_takes_it(delivering_worker):
    with Sink() as sink:
        sink.respond(503, body=b"starting up", times=2)
        subscription = Subscription.objects.create(url=sink.url, secret="worker-secret")
        delivery = Delivery.objects.create(
            subscription=subscription, key="poll-9-batch-0", body='{"events":[]}'
        )

        deliveries.enqueue([delivery])  # on commit (now: autocommit): the worker's first attempt
        deadline = time.monotonic() + TIMEOUT
        while True:
            delivery.refresh_from_db()
            if delivery.status != "pending":
                break
            assert time.monotonic() < deadline, (
                f"still {delivery.status} after {delivery.attempts} attempts; "
                + (delivering_worker.log[-4000:])
            )
            tasks.deliver_due.delay()  # what beat sends every 15 s
            time.sleep(0.3)

        assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
        requests = sink.requests
        assert len(requests) == 3  # deliver_due ran many times; each attempt was sent once
        assert {r.header(deliveries.DELIVERY_HEADER) for r in requests} == {"poll-9-batch-0"}
        subscription.refresh_from_db()
        assert subscription.consecutive_failures == 0 and subscription.enabled
