"""Notifications out: a subscription chooses events by repository, tag pattern, kind (signing flags
included), line or version; one poll's events become one batched delivery per subscription, made
once however often the fan-out runs; imported and untracked events are never sent; queuing the
fan-out never fails or slows a poll."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Tag
from history import notify, payloads
from history.models import Delivery, PinList, PollRun, Subscription, TagEvent, TagState
from tests.history.factories import Image, signature, tag_event
from tests.tagledger.test_env import run_check

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


def subscription(**fields) -> Subscription:
    """A subscription row written directly (subscribe's checks are tested on their own), made
    before the scene's events."""
    fields.setdefault("created_at", timezone.now() - timedelta(days=1))
    return Subscription.objects.create(url=URL, secret="s" * 32, **fields)


class Scene:
    """acme/app with builds of 1.0 (b1, signed) and 2.0 (b2, unsigned) and one poll that records
    one event of every kind, plus an untracked and an imported one that are never sent."""

    def __init__(self):
        self.image = Image("acme/app", depth=2)
        self.other = Image("acme/other")
        image = self.image
        self.v1, self.v2 = image.version("1.0"), image.version("2.0")
        start = timezone.now() - timedelta(hours=2)
        self.b1 = image.build(self.v1, at=start)
        self.b2 = image.build(self.v2, at=start)
        signature(self.b1, "alice@acme.example")
        for name in ("1.0", "latest", "gone", "back", "stamp-1", "hidden"):
            image.tag(name, self.b1, at=start)
        back = Tag.objects.get(repository=image.repository, name="back")
        TagState.objects.observe(back, None, at=start + timedelta(minutes=1), poll=None, immutable=False)
        now = timezone.now()
        self.run = PollRun.objects.create(
            repository=image.repository, started_at=now, finished_at=now, status=PollRun.Status.OK
        )
        self.point("latest", self.b2, now)
        self.point("2.0", self.b2, now)
        self.point("gone", None, now)
        self.point("back", self.b1, now)
        self.point("stamp-1", self.b2, now, immutable=True)
        TagState.objects.untrack([self.tag("hidden")], at=now, poll=self.run)
        tag_event(self.tag("imp"), self.b1, poll=self.run, imported=True, at=now)
        self.run.changes = self.run.events.count()
        self.run.save()

    def tag(self, name: str) -> Tag:
        return Tag.objects.get_or_create(
            repository=self.image.repository, name=name, defaults={"kind": "other"}
        )[0]

    def point(self, name, build, at, *, immutable=False):
        event = TagState.objects.observe(self.tag(name), build, at=at, poll=self.run, immutable=immutable)
        assert event is not None


@pytest.fixture
def scene():
    return Scene()


def sent_tags(delivery: Delivery) -> set[str]:
    return {item["tag"] for item in json.loads(delivery.body)["events"]}


def test_the_scene_records_one_event_of_each_kind(scene):
    kinds = {event.tag.name: event.kind for event in scene.run.events.select_related("tag")}
    assert kinds == {
        "latest": "moved", "2.0": "created", "gone": "deleted", "back": "restored",
        "stamp-1": "immutable_moved", "hidden": "untracked", "imp": "created",
    }  # fmt: skip


ALL = {"latest", "2.0", "gone", "back", "stamp-1"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({}, ALL),
        ({"kinds": ["created"]}, {"2.0"}),
        ({"kinds": ["moved"]}, {"latest"}),
        ({"kinds": ["deleted"]}, {"gone"}),
        ({"kinds": ["restored"]}, {"back"}),
        ({"kinds": ["immutable_moved"]}, {"stamp-1"}),
        # moves from the signed b1 to the unsigned b2, whatever their kind
        ({"kinds": ["unsigned"]}, {"latest", "stamp-1"}),
        ({"kinds": ["signer_changed"]}, set()),
        ({"kinds": ["created", "deleted"]}, {"2.0", "gone"}),
        ({"kinds": ["pin_behind"]}, set()),
        ({"tag_pattern": "^2"}, {"2.0"}),
        ({"tag_pattern": "a"}, {"latest", "back", "stamp-1"}),
        ({"tag_pattern": r"^(latest|2\.0)$", "kinds": ["created"]}, {"2.0"}),
        ({"tag_pattern": "nothing-matches"}, set()),
        ({"repository": "app"}, ALL),
        ({"repository": "other"}, set()),
        # a version or line: events whose build, before or after, is of it
        ({"version": "v2"}, {"latest", "2.0", "stamp-1"}),
        ({"version": "v1"}, {"latest", "gone", "back", "stamp-1"}),
        ({"line": "v2"}, {"latest", "2.0", "stamp-1"}),
        ({"line": "v1", "kinds": ["deleted"]}, {"gone"}),
        ({"enabled": False}, set()),
    ],
)
def test_what_a_subscription_chooses(scene, choice, expected):
    fields = dict(choice)
    if "repository" in fields:
        fields["repository"] = (scene.image if fields["repository"] == "app" else scene.other).repository
    if "version" in fields:
        fields["version"] = getattr(scene, fields["version"])
    if "line" in fields:
        fields["line"] = getattr(scene, fields["line"]).line
    wanted = subscription(**fields)
    made = notify.fan_out(scene.run.pk)
    if not expected:
        assert made == []
        return
    assert [delivery.subscription for delivery in made] == [wanted]
    assert sent_tags(made[0]) == expected
    assert {event.tag.name for event in made[0].events.select_related("tag")} == expected


def test_imported_and_untracked_events_are_never_sent(scene):
    subscription()
    (delivery,) = notify.fan_out(scene.run.pk)
    assert not sent_tags(delivery) & {"imp", "hidden"}
    assert not delivery.events.filter(kind=TagEvent.Kind.UNTRACKED).exists()
    assert not delivery.events.filter(imported=True).exists()


def test_a_delivery_lists_each_event_as_the_api_does_with_its_id_tags_and_links(scene, settings):
    settings.TAGLEDGER_BASE_URL = "https://tagledger.example.com"
    subscription(kinds=["moved"])
    (delivery,) = notify.fan_out(scene.run.pk)
    body = json.loads(delivery.body)
    assert (body["payload_version"], body["test"], body["count"]) == (1, False, 1)
    (item,) = body["events"]
    event = scene.run.events.get(kind="moved")
    reference = scene.image.repository.reference
    assert item["id"] == str(event.pk)
    assert (item["kind"], item["signing"], item["repository"], item["tag"]) == (
        "moved", "unsigned", reference, "latest"
    )  # fmt: skip
    assert (item["digest"], item["previous_digest"]) == (scene.b2.digest, scene.b1.digest)
    assert item["version"] == "2.0"
    assert "latest" in item["tags"] and "2.0" in item["tags"]
    assert {"1.0", "latest", "gone"} <= set(item["previous_tags"])
    assert item["detected_at"] == event.detected_at.isoformat()
    assert item["not_before"] == event.not_before.isoformat()
    base = "https://tagledger.example.com"
    assert item["links"]["build"] == f"{base}/builds/{scene.b2.pk}/"
    assert item["links"]["previous_build"] == f"{base}/builds/{scene.b1.pk}/"
    assert item["links"]["compare"].startswith(f"{base}/compare?a=")
    assert scene.b1.digest.replace(":", "%3A") in item["links"]["compare"]
    assert item["links"]["changelog"] == f"{base}/repositories/{scene.image.repository.pk}/changelog"
    assert item["links"]["tag"] == f"{base}/repositories/{scene.image.repository.pk}/tags/latest"


def test_without_a_base_url_links_are_paths(scene, settings):
    settings.TAGLEDGER_BASE_URL = ""
    subscription(kinds=["deleted"])
    (delivery,) = notify.fan_out(scene.run.pk)
    (item,) = json.loads(delivery.body)["events"]
    assert item["links"]["previous_build"] == f"/builds/{scene.b1.pk}/"
    assert "build" not in item["links"] and "compare" not in item["links"]
    assert item["digest"] is None


def test_fan_out_is_idempotent(scene):
    subscription()
    subscription(kinds=["moved"])
    first = notify.fan_out(scene.run.pk)
    assert len(first) == 2
    assert notify.fan_out(scene.run.pk) == []
    assert Delivery.objects.count() == 2
    assert all(delivery.status == Delivery.Status.PENDING for delivery in first)


def test_a_key_is_stable_and_names_the_subscription_and_events(scene):
    one, two = subscription(), subscription()
    made = {delivery.subscription_id: delivery for delivery in notify.fan_out(scene.run.pk)}
    assert made[one.pk].key != made[two.pk].key
    ids = list(made[one.pk].events.values_list("pk", flat=True))
    assert made[one.pk].key == notify.delivery_key(one, reversed(ids), poll_id=scene.run.pk)
    assert len(made[one.pk].key) == 40


def test_a_subscription_never_hears_what_happened_before_it_was_made(scene):
    subscription(created_at=timezone.now())
    assert notify.fan_out(scene.run.pk) == []


def test_catch_up_fans_out_finished_polls_whose_fan_out_was_lost(scene):
    later = timezone.now() + notify.CATCH_UP_GRACE + timedelta(seconds=1)
    assert notify.catch_up(now=later) == []  # no subscription
    wanted = subscription()
    running = PollRun.objects.create(repository=scene.image.repository, started_at=timezone.now())
    TagState.objects.observe(scene.tag("1.0"), scene.b2, at=timezone.now(), poll=running, immutable=False)
    assert notify.catch_up(now=timezone.now()) == []  # within the grace: the ordinary path's turn
    (made,) = notify.catch_up(now=later + timedelta(seconds=1))  # not the running poll's
    assert made.subscription == wanted and sent_tags(made) == ALL
    assert notify.catch_up(now=later + timedelta(seconds=1)) == []  # made once
    assert notify.catch_up(now=later + notify.CATCH_UP_WINDOW) == []  # too old to matter


def test_a_vanished_poll_or_no_subscription_makes_nothing(scene):
    assert notify.fan_out(scene.run.pk) == []
    subscription()
    assert notify.fan_out(10**9) == []


# --- batching -------------------------------------------------------------------------------------


@pytest.fixture
def fifty_moves():
    """One poll that moves 50 tags."""
    image = Image("acme/many")
    old, new = image.build(), image.build()
    tags = [image.tag(f"t{number}", old) for number in range(50)]
    now = timezone.now()
    run = PollRun.objects.create(repository=image.repository, started_at=now, status=PollRun.Status.OK)
    for tag in tags:
        TagState.objects.observe(tag, new, at=now, poll=run, immutable=False)
    run.changes = 50
    run.save()
    return run


def test_a_poll_that_moves_50_tags_sends_one_delivery_per_subscription(fifty_moves, settings):
    settings.TAGLEDGER_NOTIFY_BATCH = 100
    subscription(format="json"), subscription(format="slack"), subscription(format="cloudevents")
    made = notify.fan_out(fifty_moves.pk)
    assert len(made) == 3
    assert all(delivery.events.count() == 50 for delivery in made)
    by_format = {delivery.subscription.format: delivery.body for delivery in made}
    assert json.loads(by_format["json"])["count"] == 50
    assert len(json.loads(by_format["cloudevents"])) == 50
    assert len(json.loads(by_format["slack"])["attachments"]) == payloads.MAX_LISTED


@pytest.mark.parametrize(("size", "deliveries"), [(1, 50), (20, 3), (50, 1)])
def test_batch_size_is_the_most_events_in_one_delivery(fifty_moves, settings, size, deliveries):
    settings.TAGLEDGER_NOTIFY_BATCH = size
    subscription()
    made = notify.fan_out(fifty_moves.pk)
    assert len(made) == deliveries
    assert sorted(len(json.loads(d.body)["events"]) for d in made)[-1] == size
    assert sum(delivery.events.count() for delivery in made) == 50
    assert len({delivery.key for delivery in made}) == deliveries
    assert notify.fan_out(fifty_moves.pk) == []


def test_fan_out_reads_in_a_fixed_number_of_queries(fifty_moves, django_assert_max_num_queries):
    for number in range(10):
        subscription(tag_pattern=f"t{number}", kinds=["moved", "unsigned"])
    with django_assert_max_num_queries(12):
        made = notify.fan_out(fifty_moves.pk)
    assert len(made) == 10


# --- pins -----------------------------------------------------------------------------------------


def test_a_pin_list_is_checked_once_per_poll_and_its_pins_ride_with_the_events(scene, monkeypatch):
    pin_list = PinList.objects.create(name="prod", text="x")
    calls = []

    class Pin:
        line, reference, current_reference, builds_behind = 3, "r@sha256:a", "r@sha256:b", 2
        compare_url = "/compare?a=1&b=2"

    def fallen_behind(checked):
        calls.append(checked.pk)
        return [Pin()]

    import history.pin_lists

    monkeypatch.setattr(history.pin_lists, "fallen_behind", fallen_behind)
    both = subscription(pin_list=pin_list, kinds=["moved", "pin_behind"])
    pins_only = subscription(pin_list=pin_list, kinds=["pin_behind"])
    subscription(pin_list=pin_list, kinds=["moved"])  # does not ask for pins
    made = {delivery.subscription_id: delivery for delivery in notify.fan_out(scene.run.pk)}
    assert calls == [pin_list.pk]
    kinds = [item["kind"] for item in json.loads(made[both.pk].body)["events"]]
    assert kinds == ["moved", "pin_behind"]
    (pin,) = json.loads(made[pins_only.pk].body)["events"]
    assert (pin["reference"], pin["current_reference"], pin["builds_behind"]) == (
        "r@sha256:a",
        "r@sha256:b",
        2,
    )
    assert pin["links"] == {"compare": "/compare?a=1&b=2", "pin_list": f"/pins/lists/{pin_list.pk}"}
    assert pin["pin_list"] == {"id": pin_list.pk, "name": "prod"}
    assert made[pins_only.pk].events.count() == 0
    # again: the same events give the same keys; the pins did not fall further
    monkeypatch.setattr(history.pin_lists, "fallen_behind", lambda checked: [])
    assert notify.fan_out(scene.run.pk) == []


def test_a_failing_pin_check_costs_only_the_pins(scene, monkeypatch):
    import history.pin_lists

    def broken(pin_list):
        raise RuntimeError("boom")

    monkeypatch.setattr(history.pin_lists, "fallen_behind", broken)
    subscription(pin_list=PinList.objects.create(name="p", text="x"))
    (delivery,) = notify.fan_out(scene.run.pk)
    assert sent_tags(delivery) == ALL


# --- subscribing ----------------------------------------------------------------------------------


@pytest.fixture
def loopback(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.0/8"]


def test_subscribe_makes_a_secret_when_none_is_given(loopback):
    made, secret = notify.subscribe(url=URL)
    assert len(secret) >= 40 and made.secret == secret
    assert (made.format, made.kinds, made.enabled, made.repository) == ("json", [], True, None)
    _, given = notify.subscribe(url=URL, secret="x" * 16)
    assert given == "x" * 16


def test_subscribe_orders_and_deduplicates_kinds_and_reads_a_reference(loopback):
    image = Image("acme/app")
    made, _ = notify.subscribe(
        url=URL, kinds=["unsigned", "moved", "moved"], repository=f" {image.repository.reference} "
    )
    assert made.kinds == ["moved", "unsigned"]
    assert made.repository == image.repository


def test_a_line_or_version_implies_its_repository_and_must_agree(loopback):
    image, other = Image("acme/app"), Image("acme/other")
    v1, v2 = image.version("1.0"), image.version("2.0")
    made, _ = notify.subscribe(url=URL, version=v1)
    assert made.repository == image.repository
    made, _ = notify.subscribe(url=URL, line=v1.line, version=v1, repository=image.repository)
    assert (made.line, made.version) == (v1.line, v1)
    with pytest.raises(notify.SubscriptionError, match="not of the line"):
        notify.subscribe(url=URL, line=v2.line, version=v1)
    with pytest.raises(notify.SubscriptionError, match="is not of"):
        notify.subscribe(url=URL, line=v1.line, repository=other.repository)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": ""}, "give the URL"),
        ({"url": None}, "give the URL"),
        ({"url": "ftp://127.0.0.1/x"}, "http"),
        ({"url": "http:///nohost"}, None),  # the words are history.outbound's
        ({"url": "http://127.0.0.1/a b"}, "spaces or control"),
        ({"url": "http://127.0.0.1/\x1b[31m"}, "spaces or control"),
        ({"url": "http://127.0.0.1/" + "a" * 3000}, "longer than"),
        ({"format": "xml"}, "unknown format"),
        ({"format": "\x00" * 5}, "unknown format"),
        ({"secret": "short"}, "16 to 256"),
        ({"secret": "s" * 300}, "16 to 256"),
        ({"secret": "sécret-sécret-sécret"}, "ASCII"),
        ({"secret": "tab\tinside-the-secret"}, "printable"),
        ({"secret": " padded-secret-value "}, "space"),
        ({"kinds": ["moved", "untracked"]}, "unknown kind"),
        ({"kinds": ["<script>"]}, "unknown kind"),
        ({"kinds": ["pin_behind"]}, "pin list"),
        ({"tag_pattern": "("}, "not a valid regular expression"),
        ({"tag_pattern": "a{100000}"}, "too large"),
        ({"tag_pattern": "a" * 501}, "longer than"),
        ({"tag_pattern": "a\x00"}, "NUL"),
        ({"repository": "nowhere.example/none"}, "no watched repository"),
        ({"repository": "no-slash"}, "no watched repository"),
        ({"name": "n" * 101}, "longer than 100"),
        ({"name": "bell\x07"}, "control"),
    ],
)
def test_subscribe_refuses_with_a_reason(loopback, fields, message):
    arguments = {"url": URL, **fields}
    with pytest.raises(notify.SubscriptionError, match=message):
        notify.subscribe(**arguments)
    assert not Subscription.objects.exists()


def test_a_catastrophic_pattern_is_stored_but_a_match_that_runs_too_long_only_skips_the_event(scene):
    subscription(tag_pattern="^(a|aa)+$")
    long_name = "a" * 120 + "!"
    image = scene.image
    tag = image.tag(long_name, scene.b1)
    run = PollRun.objects.create(
        repository=image.repository, started_at=timezone.now(), status="ok", changes=1
    )
    TagState.objects.observe(tag, scene.b2, at=timezone.now(), poll=run, immutable=False)
    assert notify.fan_out(run.pk) == []


def test_enable_and_disable(loopback):
    made, _ = notify.subscribe(url=URL)
    notify.disable(made, "by hand")
    made.refresh_from_db()
    assert (made.enabled, made.disabled_reason) == (False, "by hand") and made.disabled_at
    Subscription.objects.filter(pk=made.pk).update(consecutive_failures=7)
    notify.enable(made)
    made.refresh_from_db()
    assert (made.enabled, made.disabled_reason, made.disabled_at, made.consecutive_failures) == (
        True,
        "",
        None,
        0,
    )


# --- after a poll ---------------------------------------------------------------------------------


def test_after_poll_queues_after_the_commit_only_what_may_send(
    scene, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(notify, "_queue", queued.append)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notify.after_poll(scene.run)  # no subscription yet
        subscription()
        for status, changes in (("failed", 5), ("running", 5), ("ok", 0)):
            notify.after_poll(
                PollRun(pk=1, repository=scene.image.repository, status=status, changes=changes)
            )
        notify.after_poll(None)
        assert callbacks == []
        notify.after_poll(scene.run)
        assert queued == []  # not before the commit
    assert queued == [scene.run.pk]
    scene.run.status = PollRun.Status.PARTIAL
    with django_capture_on_commit_callbacks(execute=True):
        notify.after_poll(scene.run)
    assert queued == [scene.run.pk, scene.run.pk]


def test_after_poll_swallows_any_error(scene, monkeypatch, caplog):
    subscription()

    def broken(callback):
        raise RuntimeError("no transaction for you")

    monkeypatch.setattr(notify.transaction, "on_commit", broken)
    notify.after_poll(scene.run)
    assert "notifications not queued" in caplog.text


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "tagledger.example.com",
        "ftp://tagledger.example.com",
        "https://tagledger.example.com/?a=1",
        "https://tagledger.example.com/#top",
        "https://user:pw@tagledger.example.com",
        "https://tagledger.example.com:port",
        "https://",
        "https://tagledger.example.com/a b",
    ],
)
def test_a_base_url_that_is_no_http_url_stops_start_up(tmp_path, value):
    result = run_check(tmp_path, TAGLEDGER_BASE_URL=value)
    assert result.returncode != 0
    assert "TAGLEDGER_BASE_URL=" in result.stderr and "must be an http(s) URL" in result.stderr


def test_a_base_url_is_read_without_its_trailing_slash(tmp_path):
    result = run_check(
        tmp_path, TAGLEDGER_BASE_URL="https://tagledger.example.com/tl/", TAGLEDGER_NOTIFY_BATCH="1"
    )
    assert result.returncode == 0, result.stderr
    result = run_check(tmp_path, TAGLEDGER_NOTIFY_BATCH="0")
    assert "TAGLEDGER_NOTIFY_BATCH=0 is below the minimum of 1" in result.stderr


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    url=st.text(max_size=60) | st.builds(lambda t: "http://127.0.0.1/" + t, st.text(max_size=40)),
    name=st.text(max_size=120),
    secret=st.none() | st.text(max_size=300),
    pattern=st.text(max_size=40),
    kinds=st.lists(st.sampled_from(list(notify.KINDS)) | st.text(max_size=12), max_size=4),
    format=st.sampled_from(["json", "slack", "cloudevents"]) | st.text(max_size=12),
)
def test_any_input_is_subscribed_or_refused_with_a_reason(
    loopback, url, name, secret, pattern, kinds, format
):
    try:
        with transaction.atomic():
            made, secret_shown = notify.subscribe(
                url=url, name=name, secret=secret, tag_pattern=pattern, kinds=kinds, format=format
            )
            made.full_clean(exclude=["url"])  # what was stored fits its columns (URLField's own rules aside)
            assert secret_shown == made.secret
            transaction.set_rollback(True)
    except notify.SubscriptionError as refused:
        assert str(refused)
