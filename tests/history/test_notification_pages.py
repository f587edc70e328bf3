"""The staff notification pages: subscriptions (made with the secret shown once, tested, disabled,
re-enabled, removed) and the delivery log (filters, keyset pages). Staff only on every instance; URLs
masked, hostile values shown as text, a fixed number of queries whatever the number of rows."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository
from history.delivery_log import masked_url
from history.keyset import Cursor
from history.models import Delivery, PinList, Subscription, TagEvent
from tests.history.factories import Image
from tests.support.sink import Sink

pytestmark = [pytest.mark.django_db]

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SLACK = "https://hooks.slack.com/services/T0000/B0000/abcdefghijklmnopqrstWXYZ"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def loopback(settings):
    """Notifications may reach 127.0.0.1 (tests' sinks), as TAGLEDGER_NOTIFY_ALLOW lets an operator."""
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.1"]


@pytest.fixture
def staff_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def user_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    return client


def subscription(**fields) -> Subscription:
    return Subscription.objects.create(**{"url": SLACK, "secret": "s" * 32, **fields})


def delivery(to: Subscription, n: int, **fields) -> Delivery:
    fields = {"key": f"key-{to.pk}-{n}", "body": "{}", "created_at": START + timedelta(minutes=n), **fields}
    return Delivery.objects.create(subscription=to, **fields)


def text_of(response) -> str:
    return response.content.decode()


# --- who may -------------------------------------------------------------------------------------


PAGES = ["/notifications/", "/notifications/deliveries"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("public", [True, False])
def test_only_staff_see_the_pages_even_on_a_public_instance(
    path, public, settings, client, user_client, staff_client
):
    settings.TAGLEDGER_PUBLIC = public
    subscription(name="team")
    for someone in (client, user_client):
        response = someone.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]
    response = staff_client.get(path)
    assert response.status_code == 200


@pytest.mark.parametrize("action", ["test", "disable", "enable", "remove"])
def test_actions_are_staff_only_posts(action, client, user_client, staff_client):
    hook = subscription(name="team")
    for someone in (client, user_client):
        assert someone.post(f"/notifications/{hook.pk}/{action}").status_code == 302
    assert staff_client.get(f"/notifications/{hook.pk}/{action}").status_code == 405
    assert Subscription.objects.filter(pk=hook.pk, enabled=True).exists()
    assert not Delivery.objects.exists()


def test_the_nav_links_the_page_for_staff_only(user_client, staff_client):
    assert "/notifications/" not in text_of(user_client.get("/accounts/tokens/"))
    assert 'href="/notifications/"' in text_of(staff_client.get("/accounts/tokens/"))


def test_a_post_without_the_csrf_token_is_refused(admin_user, loopback):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    hook = subscription(name="team")
    assert client.post("/notifications/", {"url": "http://127.0.0.1:9/hook"}).status_code == 403
    for action in ("disable", "remove", "test"):
        assert client.post(f"/notifications/{hook.pk}/{action}").status_code == 403
    assert list(Subscription.objects.values_list("pk", "enabled")) == [(hook.pk, True)]
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("pk", ["0", "99999999999999999999999", "-1", "abc"])
def test_unknown_or_malformed_ids_are_404s(staff_client, pk):
    for action in ("test", "disable", "enable", "remove"):
        assert staff_client.post(f"/notifications/{pk}/{action}").status_code == 404


# --- adding ---------------------------------------------------------------------------------------


def test_a_new_subscription_shows_its_secret_once_and_its_url_masked(staff_client, admin_user, loopback):
    url = "http://127.0.0.1:9/services/T0/B0/secretpathpart1234"
    form = {"name": "release team", "url": url, "format": "slack", "kinds": ["moved", "deleted"]}
    response = staff_client.post("/notifications/", form)
    assert response.status_code == 201
    made = Subscription.objects.get()
    assert (made.name, made.url, made.format, made.kinds, made.created_by) == (
        "release team", url, "slack", ["moved", "deleted"], admin_user
    )  # fmt: skip
    page = text_of(response)
    assert page.count(made.secret) == 2  # shown, and the copy button's data
    assert 'id="subscription-secret"' in page and 'data-copy="' + made.secret in page
    assert "secretpathpart" not in page and "http://127.0.0.1:9/…/1234" in page
    again = text_of(staff_client.get("/notifications/"))
    assert made.secret not in again and "subscription-secret" not in again
    assert "secretpathpart" not in again and "http://127.0.0.1:9/…/1234" in again
    assert "moved, deleted" in again


def test_the_same_form_sent_again_makes_nothing_more(staff_client, loopback):
    """A reload of the page that showed the secret sends the form again: it makes no second one."""
    page = text_of(staff_client.get("/notifications/"))
    sent_once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    form = {"url": "http://127.0.0.1:9/hook", "format": "json", "once": sent_once}

    assert staff_client.post("/notifications/", form).status_code == 201
    again = staff_client.post("/notifications/", form, follow=True)

    assert Subscription.objects.count() == 1
    assert again.redirect_chain == [("/notifications/", 302)]
    assert "That form was sent already" in text_of(again)
    assert Subscription.objects.get().secret not in text_of(again)
    fresh = re.search(r'name="once" value="([^"]+)"', text_of(again)).group(1)
    assert fresh != sent_once
    assert staff_client.post("/notifications/", {**form, "once": fresh}).status_code == 201
    assert Subscription.objects.count() == 2


def test_a_given_secret_is_kept_and_scope_fields_resolve(staff_client, loopback):
    registry = Registry.objects.create(host="registry.example")
    repository = Repository.objects.create(registry=registry, name="python")
    pins = PinList.objects.create(name="prod", text="python:3.14")
    form = {
        "url": "http://127.0.0.1:9/hook",
        "format": "json",
        "secret": "a-secret-of-enough-length",
        "repository": repository.pk,
        "tag_pattern": r"^3\.14",
        "pin_list": pins.pk,
        "kinds": ["pin_behind"],
    }
    assert staff_client.post("/notifications/", form).status_code == 201
    made = Subscription.objects.get()
    assert (made.secret, made.repository, made.tag_pattern, made.pin_list) == (
        "a-secret-of-enough-length", repository, r"^3\.14", pins
    )  # fmt: skip
    page = text_of(staff_client.get("/notifications/"))
    assert "pin_behind · in registry.example/python · tags matching ^3\\.14 · pins of prod" in unescape(page)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("url", "ftp://127.0.0.1/hook", "http"),
        ("url", "http://10.1.2.3/hook", "private"),
        ("url", "http://169.254.169.254/latest/meta-data", "address"),
        ("url", "", "This field is required"),
        ("tag_pattern", "(unclosed", "tag pattern"),
        ("secret", "short", "16 to 256"),
        ("line", "3.14", "choose the repository too"),
        ("name", "a\u2028b", "control characters"),
    ],
)
def test_a_refused_field_is_explained_beside_it_and_the_input_kept(
    staff_client, loopback, field, value, message
):
    form = {"url": "http://127.0.0.1:9/hook", "format": "json", "tag_pattern": "^v", field: value}
    response = staff_client.post("/notifications/", form)
    assert response.status_code == 200 and not Subscription.objects.exists()
    page = text_of(response)
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page, re.S)
    assert errors and message in unescape(errors.group(1)), page
    if value and field != "secret":
        assert f'value="{value}"' in unescape(page)  # kept for correcting


def test_an_unknown_kind_or_format_is_refused(staff_client, loopback):
    for form in ({"kinds": ["untracked"]}, {"format": "xml"}):
        response = staff_client.post(
            "/notifications/", {"url": "http://127.0.0.1:9/h", "format": "json", **form}
        )
        assert response.status_code == 200 and "errorlist" in text_of(response)
    assert not Subscription.objects.exists()


# --- the list and its actions ----------------------------------------------------------------------


def test_a_disabled_subscription_is_marked_with_its_reason_and_can_be_re_enabled(staff_client):
    hook = subscription(
        name="chat",
        enabled=False,
        disabled_at=START,
        disabled_reason="disabled after 10 failed deliveries in a row: 500 Internal Server Error",
        consecutive_failures=10,
    )
    page = text_of(staff_client.get("/notifications/"))
    row = re.search(r'<tr class="subscription-row subscription-disabled".*?</tr>', page, re.S).group(0)
    assert "disabled</span>" in row and "after 10 failed deliveries" in row and "2026-11-30 12:00" in row
    assert "10 failures in a row" in row and "Re-enable" in row
    response = staff_client.post(f"/notifications/{hook.pk}/enable", follow=True)
    assert "Enabled chat again." in text_of(response)
    hook.refresh_from_db()
    assert (hook.enabled, hook.disabled_at, hook.disabled_reason, hook.consecutive_failures) == (
        True,
        None,
        "",
        0,
    )
    assert "subscription-disabled" not in text_of(response)


def test_disabling_by_hand_says_who(staff_client, admin_user):
    hook = subscription(name="chat")
    response = staff_client.post(f"/notifications/{hook.pk}/disable", follow=True)
    hook.refresh_from_db()
    assert not hook.enabled and hook.disabled_reason == f"disabled by {admin_user.username}"
    assert f"disabled by {admin_user.username}" in text_of(response)


def test_removing_takes_its_log_with_it(staff_client):
    hook, other = subscription(name="old"), subscription(name="kept")
    delivery(hook, 1)
    delivery(other, 2)
    response = staff_client.post(f"/notifications/{hook.pk}/remove", follow=True)
    assert "Removed old and its delivery log." in text_of(response)
    assert list(Subscription.objects.all()) == [other]
    assert list(Delivery.objects.values_list("subscription", flat=True)) == [other.pk]


def test_send_test_reaches_the_receiver_and_the_log_shows_it(staff_client, loopback):
    with Sink() as sink:
        hook = subscription(name="sink", url=sink.url)
        response = staff_client.post(f"/notifications/{hook.pk}/test", follow=True)
        received = sink.wait_for(1)
    assert response.redirect_chain[-1][0] == f"/notifications/deliveries?subscription={hook.pk}"
    page = text_of(response)
    assert "Test message to sink: delivered (200)." in page
    row = re.search(r'<tr class="delivery-row delivery-row-delivered">.*?</tr>', page, re.S).group(0)
    assert "test message" in row and ">200" in row and " ms" in row
    sent = Delivery.objects.get()
    assert sent.test and sent.key in row and received[0].headers["X-Tagledger-Delivery"] == sent.key


def test_a_disabled_subscription_can_be_tested_before_it_is_re_enabled(staff_client, loopback):
    with Sink() as sink:
        hook = subscription(
            name="back?", url=sink.url, enabled=False, disabled_reason="failing", disabled_at=START
        )
        response = staff_client.post(f"/notifications/{hook.pk}/test", follow=True)
        sink.wait_for(1)
    assert "Test message to back?: delivered (200)." in text_of(response)
    hook.refresh_from_db()
    assert not hook.enabled and hook.disabled_reason == "failing"  # re-enabling stays a choice


def test_send_test_to_a_dead_receiver_says_it_failed(staff_client, loopback):
    with Sink() as sink:
        hook = subscription(name="down", url=sink.url)
        sink.respond(503, times=10)
        response = staff_client.post(f"/notifications/{hook.pk}/test", follow=True)
    page = text_of(response)
    assert "Test message to down: failed (503): " in page
    assert Delivery.objects.get().response_code == 503


# --- hostile values -------------------------------------------------------------------------------


def test_hostile_values_are_text_on_both_pages(staff_client):
    hook = subscription(
        name=HOSTILE,
        url=f"https://hooks.example/{HOSTILE}",
        tag_pattern=HOSTILE,
        enabled=False,
        disabled_reason=HOSTILE,
        disabled_at=START,
    )
    delivery(hook, 1, status="failed", error=HOSTILE * 100, key=HOSTILE)
    for path in PAGES:
        page = text_of(staff_client.get(path))
        assert "<script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    log = text_of(staff_client.get("/notifications/deliveries"))
    assert len(re.search(r'<div class="small delivery-error">(.*?)</div>', log, re.S).group(1)) < 600


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        (SLACK, "https://hooks.slack.com/…/WXYZ"),
        ("https://chat.example.org:8065/hooks/xyz123abcd", "https://chat.example.org:8065/…/abcd"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/abc", "https://example.com/…"),
        ("https://example.com/hook?token=supersecret", "https://example.com/…/cret"),
        ("http://[::1]:8080/hook/secretvalue", "http://[::1]:8080/…/alue"),
        ("http://user:pass@example.com/x/yyyy1", "http://…@example.com/…/yyy1"),
        ("http://example.com:99999/x", "…"),
    ],
)
def test_a_url_is_masked_to_its_host_and_last_four_characters(url, shown):
    assert masked_url(url) == shown


@settings(max_examples=200, deadline=None)
@given(path=st.text(min_size=5, max_size=60))
def test_masking_never_shows_more_than_four_characters_of_the_path(path):
    shown = masked_url(f"https://hooks.example.com/{path}")
    assert shown.startswith("https://hooks.example.com/")
    assert len(shown) <= len("https://hooks.example.com/…/") + 4


# --- the delivery log -----------------------------------------------------------------------------


def test_the_log_is_newest_first_with_each_column(staff_client):
    hook = subscription(name="team")
    delivery(hook, 1, status="delivered", attempts=1, response_code=204, latency_ms=87)
    waiting = delivery(
        hook, 2, status="pending", attempts=2, response_code=502, latency_ms=1200,
        next_attempt_at=START + timedelta(hours=1), error="502 Bad Gateway",
    )  # fmt: skip
    delivery(hook, 3, status="failed", attempts=5, error="connection refused", test=True)
    page = text_of(staff_client.get("/notifications/deliveries"))
    rows = re.findall(r'<tr class="delivery-row delivery-row-(\w+)">(.*?)</tr>', page, re.S)
    assert [status for status, _ in rows] == ["failed", "pending", "delivered"]
    failed, pending, delivered = (row for _, row in rows)
    assert ">failed</span>" in failed and "connection refused" in failed and "test message" in failed
    assert (
        "502" in pending
        and "1200 ms" in pending
        and '2026-11-30</span> <span class="moment">13:00:00' in pending
    )
    assert waiting.key in pending and "0 events" in pending
    assert "204" in delivered and "87 ms" in delivered and "hooks.slack.com/…/WXYZ" in delivered


def test_the_log_counts_each_delivery_s_events_in_the_page_and_the_api(staff_client):
    image = Image("library/python")
    for n in range(3):
        image.release(f"3.14.{n}", "", f"3.14.{n}", "3.14", "latest", at=START + timedelta(hours=n))
    events = list(TagEvent.objects.order_by("pk"))
    hook = subscription(name="team")
    batch, single, none = delivery(hook, 1), delivery(hook, 2), delivery(hook, 3)
    batch.events.set(events[:5])
    single.events.set(events[5:6])
    page = text_of(staff_client.get("/notifications/deliveries"))
    assert re.findall(r'data-label="Sent">([^<]*)</td>', page) == ["0 events", "1 event", "5 events"]
    items = staff_client.get("/api/v1/deliveries").json()["items"]
    assert [(item["id"], item["events"]) for item in items] == [(none.pk, 0), (single.pk, 1), (batch.pk, 5)]


def test_the_log_filters_by_subscription_and_status_and_pages_older(staff_client):
    one, two = subscription(name="one"), subscription(name="two")
    for n in range(60):
        delivery(one if n % 2 else two, n, status="delivered" if n % 3 else "failed")
    first = text_of(staff_client.get(f"/notifications/deliveries?subscription={one.pk}"))
    assert first.count('class="delivery-row ') == 30 and 'rel="next"' not in first
    everything = staff_client.get("/notifications/deliveries")
    page = text_of(everything)
    assert page.count('class="delivery-row ') == 50
    older = re.search(r'href="\?([^"]+)" rel="next"', page).group(1)
    rest = text_of(staff_client.get("/notifications/deliveries?" + unescape(older)))
    assert rest.count('class="delivery-row ') == 10 and "Newest" in rest
    failed = text_of(staff_client.get(f"/notifications/deliveries?status=failed&subscription={two.pk}"))
    expected = len([n for n in range(60) if n % 2 == 0 and n % 3 == 0])
    assert failed.count('class="delivery-row delivery-row-failed"') == expected
    assert 'class="delivery-row delivery-row-delivered"' not in failed


@pytest.mark.parametrize(
    "query, message",
    [
        ("status=lost", "status: one of pending, delivered, failed"),
        ("subscription=abc", "subscription:"),
        ("subscription=99999999999999999999999", "subscription:"),
        ("subscription=424242", "no subscription with id 424242"),
        ("subscription=%00", "subscription:"),
        ("cursor=nonsense!", "start again from the first page"),
        ("cursor=" + Cursor(datetime(1970, 1, 2, tzinfo=UTC), 1).encode()[:-2], "start again"),
    ],
)
def test_a_bad_filter_is_a_400_that_says_why(staff_client, query, message):
    subscription(name="team")
    response = staff_client.get(f"/notifications/deliveries?{query}")
    assert response.status_code == 400 and message in unescape(text_of(response))


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=40))
def test_no_query_value_makes_the_log_fail(value):
    client = Client()
    client.force_login(User.objects.get_or_create(username="hyp-admin", is_staff=True)[0])
    for name in ("subscription", "status", "cursor"):
        assert client.get("/notifications/deliveries", {name: value}).status_code in (200, 400)


# --- queries --------------------------------------------------------------------------------------


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_each_page_costs_the_same_queries_whatever_the_number_of_rows(staff_client):
    registry = Registry.objects.create(host="registry.example")
    pins = PinList.objects.create(name="prod", text="python:3.14")

    def grow(count: int) -> None:
        for _ in range(count):
            repository = Repository.objects.create(registry=registry, name=f"app{Repository.objects.count()}")
            hook = subscription(name="hook", repository=repository, pin_list=pins, kinds=["moved"])
            for n in range(3):
                delivery(hook, n, status="failed")

    grow(2)
    few = {path: queries(staff_client, path) for path in PAGES}
    grow(20)
    assert {path: queries(staff_client, path) for path in PAGES} == few
