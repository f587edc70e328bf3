"""/metrics: the Prometheus text format, read from what the database records, for the API's readers
or a bearer token; a fixed number of queries whatever the data size."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import Registry, Repository, Tag
from history.models import Delivery, PollRun, Subscription, TagEvent
from history.polling import poll
from tagledger.metrics import ERROR_KINDS
from tagledger.tokens.models import ApiToken
from tests.history.factories import build, polled, tag_event, watch

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token-0123456789"


def scrape(client=None, **headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a successful scrape."""
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def by_label(values: dict, name: str, label: str) -> dict[str, float]:
    """{label value: sample value} of the samples `name`."""
    return {dict(labels)[label]: value for (sample, labels), value in values.items() if sample == name}


def repository(name: str, host: str = "registry.example", **fields) -> Repository:
    registry, _ = Registry.objects.get_or_create(host=host)
    return Repository.objects.create(registry=registry, name=name, **fields)


def poll_row(repo: Repository, status: str, *, ago: timedelta, took: float | None = 2.0, **fields) -> PollRun:
    started = timezone.now() - ago
    finished = None if took is None else started + timedelta(seconds=took)
    return PollRun.objects.create(
        repository=repo, status=status, started_at=started, finished_at=finished, **fields
    )


def test_polls_durations_errors_and_events_of_the_last_day_match_the_rows(public):
    app = repository("team/app")
    poll_row(app, "ok", ago=timedelta(hours=1), took=0.5)
    poll_row(app, "ok", ago=timedelta(hours=2), took=40)
    poll_row(app, "partial", ago=timedelta(hours=3), took=700, error=(
        "3 tags not checked: RateLimited: HTTP 429 (2 tags: a, b); Unavailable: HTTP 503 (1 tag: c)"
    ))  # fmt: skip
    poll_row(app, "failed", ago=timedelta(hours=4), error="AccessDenied: requires credentials")
    poll_row(app, "failed", ago=timedelta(hours=5), error="internal error: KeyError: 'x'")
    poll_row(app, "failed", ago=timedelta(hours=6), took=None, error="interrupted: the poll stopped")
    poll_row(app, "failed", ago=timedelta(hours=7), error="registry answered something odd")
    poll_row(app, "running", ago=timedelta(minutes=1), took=None)
    poll_row(app, "failed", ago=timedelta(hours=30), error="RateLimited: before the window")
    tag = Tag.objects.create(repository=app, name="latest")
    for kind, ago in [("created", 1), ("moved", 2), ("moved", 3), ("deleted", 30)]:
        tag_event(tag, build(app), kind, at=timezone.now() - timedelta(hours=ago))

    values = scrape()

    assert by_label(values, "tagledger_polls_24h", "status") == {
        "ok": 2,
        "partial": 1,
        "failed": 4,
        "running": 1,
    }
    histogram = by_label(values, "tagledger_poll_duration_seconds_bucket", "le")
    assert histogram["1.0"] == 1 and histogram["60.0"] == 5 and histogram["600.0"] == 5
    assert (
        histogram["1200.0"] == histogram["+Inf"] == values[("tagledger_poll_duration_seconds_count", ())] == 6
    )
    assert values[("tagledger_poll_duration_seconds_sum", ())] == pytest.approx(0.5 + 40 + 700 + 3 * 2)
    assert by_label(values, "tagledger_registry_errors_24h", "kind") == {
        **dict.fromkeys([*ERROR_KINDS, "other"], 0),
        **{
            "RateLimited": 1,
            "Unavailable": 1,
            "AccessDenied": 1,
            "internal": 1,
            "interrupted": 1,
            "other": 1,
        },
    }
    assert by_label(values, "tagledger_events_24h", "kind") == {
        **dict.fromkeys(TagEvent.Kind.values, 0),
        "created": 1,
        "moved": 2,
    }


def test_each_enabled_repository_reports_its_last_poll_its_age_and_interval(public):
    app = repository("team/app", interval=timedelta(minutes=10))
    poll_row(
        app, "ok", ago=timedelta(hours=2), tags_seen=9, heads=9, gets=1, requests=11, rate_limit_remaining=80
    )
    poll_row(app, "failed", ago=timedelta(minutes=30), took=60, error="Unavailable: HTTP 503", requests=4)
    poll_row(app, "running", ago=timedelta(minutes=1), took=None)  # not finished: not its last poll
    never = repository("team/never", host="other.example", interval=timedelta(hours=1))
    Repository.objects.filter(pk=never.pk).update(created_at=timezone.now() - timedelta(hours=5))
    off = repository("team/off", enabled=False)
    poll_row(off, "ok", ago=timedelta(minutes=5), rate_limit_remaining=70)

    values = scrape()

    def of(name, reference):
        return values.get((name, (("repository", reference),)))

    assert of("tagledger_last_poll_requests", "registry.example/team/app") == 4
    assert of("tagledger_last_poll_tags", "registry.example/team/app") == 0
    assert of("tagledger_last_good_poll_age_seconds", "registry.example/team/app") == pytest.approx(
        7198, abs=30
    )
    assert of("tagledger_poll_interval_seconds", "registry.example/team/app") == 600
    # never polled: no last poll; its age counts from when it was added, so the alert fires for it too
    assert of("tagledger_last_poll_requests", "other.example/team/never") is None
    assert of("tagledger_last_good_poll_age_seconds", "other.example/team/never") == pytest.approx(
        5 * 3600, abs=30
    )
    assert not any(dict(labels).get("repository") == "registry.example/team/off" for _, labels in values)
    # the registry's newest finished poll that carried the header: the disabled repository's counts
    assert values[("tagledger_rate_limit_remaining", (("registry", "registry.example"),))] == 70
    assert ("tagledger_rate_limit_remaining", (("registry", "other.example"),)) not in values


def test_a_real_poll_shows_in_the_metrics(public, registry, pusher, repo_name):
    pusher.push(repo_name, "1.0.0", "oci", seed="1.0.0")
    pusher.push(repo_name, "latest", "oci", seed="1.0.0")
    run = polled(watch(registry, repo_name))

    values = scrape()

    reference = (("repository", f"{registry.host}/{repo_name}"),)
    assert values[("tagledger_last_poll_tags", reference)] == run.tags_seen == 2
    assert values[("tagledger_last_poll_manifest_heads", reference)] == run.heads > 0
    assert values[("tagledger_last_poll_manifest_gets", reference)] == run.gets > 0
    assert values[("tagledger_last_poll_requests", reference)] == run.requests
    assert values[("tagledger_polls_24h", (("status", "ok"),))] == 1
    assert values[("tagledger_events_24h", (("kind", "created"),))] == 2
    assert values[("tagledger_last_good_poll_age_seconds", reference)] < 60


def test_a_failed_poll_is_counted_by_its_registry_error_kind(public, registry):
    run = poll(watch(registry, "no/such-repository"))
    assert run.status == PollRun.Status.FAILED and run.error.startswith("RepositoryNotFound: "), run.error

    assert scrape()[("tagledger_registry_errors_24h", (("kind", "RepositoryNotFound"),))] == 1


@pytest.mark.parametrize("repositories", [1, 30])
def test_a_scrape_costs_the_same_few_queries_whatever_the_data_size(
    public, django_assert_max_num_queries, repositories
):
    for number in range(repositories):
        repo = repository(f"team/app{number}", host=f"r{number % 3}.example")
        tag = Tag.objects.create(repository=repo, name="latest")
        for hours in range(3):
            poll_row(repo, "ok", ago=timedelta(hours=hours), rate_limit_remaining=number)
            tag_event(tag, build(repo), "moved", at=timezone.now() - timedelta(hours=hours))
        hook = Subscription.objects.create(url=f"https://hooks.example/{number}", secret="x")
        delivery(hook, "1", "delivered", ago=timedelta(hours=1), latency_ms=100)
    with django_assert_max_num_queries(6):  # repositories, their last polls, the window's polls, events,
        values = scrape()  # subscriptions, the window's deliveries
    assert values[("tagledger_polls_24h", (("status", "ok"),))] == 3 * repositories
    assert values[("tagledger_deliveries_24h", (("status", "delivered"),))] == repositories


def test_nothing_watched_still_scrapes(public, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        values = scrape()
    assert values[("tagledger_polls_24h", (("status", "ok"),))] == 0
    assert values[("tagledger_poll_duration_seconds_count", ())] == 0
    assert values[("tagledger_delivery_latency_seconds_count", ())] == 0
    assert by_label(values, "tagledger_subscriptions", "state") == {"enabled": 0, "disabled": 0}


def delivery(subscription, key: str, status: str, *, ago: timedelta, latency_ms: int | None) -> Delivery:
    return Delivery.objects.create(
        subscription=subscription, key=key, body="{}", status=status, latency_ms=latency_ms,
        created_at=timezone.now() - ago,
    )  # fmt: skip


def test_deliveries_of_the_last_day_by_status_their_latency_and_subscriptions_by_state(public):
    hook = Subscription.objects.create(url="https://hooks.example/a", secret="x")
    Subscription.objects.create(url="https://hooks.example/b", secret="x", enabled=False)
    Subscription.objects.create(url="https://hooks.example/c", secret="x", enabled=False)
    delivery(hook, "1", "delivered", ago=timedelta(hours=1), latency_ms=80)
    delivery(hook, "2", "delivered", ago=timedelta(hours=2), latency_ms=1200)
    delivery(hook, "3", "failed", ago=timedelta(hours=3), latency_ms=10_000)  # waited out its deadline
    delivery(hook, "4", "pending", ago=timedelta(minutes=1), latency_ms=None)  # not tried yet
    delivery(hook, "5", "pending", ago=timedelta(minutes=2), latency_ms=300)  # retrying
    delivery(hook, "6", "delivered", ago=timedelta(hours=25), latency_ms=50)  # before the window

    values = scrape()

    assert by_label(values, "tagledger_deliveries_24h", "status") == {
        "pending": 2,
        "delivered": 2,
        "failed": 1,
    }
    histogram = by_label(values, "tagledger_delivery_latency_seconds_bucket", "le")
    assert histogram == {
        "0.1": 1, "0.25": 1, "0.5": 2, "1.0": 2, "2.5": 3, "5.0": 3, "10.0": 4, "30.0": 4, "+Inf": 4,
    }  # fmt: skip
    assert values[("tagledger_delivery_latency_seconds_count", ())] == 4
    assert values[("tagledger_delivery_latency_seconds_sum", ())] == pytest.approx(0.08 + 1.2 + 10 + 0.3)
    assert by_label(values, "tagledger_subscriptions", "state") == {"enabled": 1, "disabled": 2}


def test_a_signed_in_session_may_scrape():
    browser = Client()
    browser.force_login(User.objects.create_user("reader"))
    scrape(browser)
    assert Client().get("/metrics").status_code == 401  # the same request without the session


def test_the_metrics_token_lets_a_scraper_in(settings):
    settings.TAGLEDGER_METRICS_TOKEN = TOKEN
    scrape(Authorization=f"Bearer {TOKEN}")
    scrape(Authorization=f"bearer  {TOKEN} ")


@pytest.mark.parametrize(
    "authorization",
    [
        None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN,
        f"Token {TOKEN}", "Bearer " + "A" * 100_000, "Bearer \u00e9\u00e8\u4e2d", "Bearer \x00\x01\x7f",
        "Bearer \udcff", "Bearer\t" + TOKEN, "Bearer " + TOKEN + "\u00e9",
    ],
)  # fmt: skip
def test_without_the_right_token_a_scrape_is_refused_with_401(settings, authorization):
    settings.TAGLEDGER_METRICS_TOKEN = TOKEN
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"tagledger_" not in response.content


def test_an_api_token_scrapes_as_it_reads_the_api_and_a_revoked_one_does_not():
    issued = ApiToken.objects.issue(User.objects.create_user("prometheus"), "scraper")
    scrape(Authorization=f"Bearer {issued.secret}")
    issued.token.revoke()
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {issued.secret}").status_code == 401


def test_without_a_configured_token_no_bearer_gets_in(settings):
    settings.TAGLEDGER_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_only_get_is_served(public):
    assert Client().post("/metrics").status_code == 405


@pytest.mark.parametrize(
    "token", ["short", "x" * 15, "sixteen chars ok", "tøken-with-ümlaut-1234", "a\tb" * 8]
)
def test_a_weak_or_unsendable_metrics_token_stops_start_up(tmp_path, token):
    from tests.tagledger.test_env import run_check

    result = run_check(tmp_path, TAGLEDGER_METRICS_TOKEN=token)
    assert result.returncode != 0 and "TAGLEDGER_METRICS_TOKEN must be" in result.stderr
