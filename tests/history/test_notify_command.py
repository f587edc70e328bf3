"""`manage.py notify`: add prints the id and the secret once; list masks URLs and never shows a
secret; test sends now and exits 1 when not delivered; remove, enable and disable by id. Bad or
hostile input is a usage error (exit 2) saying why, never a traceback."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from history.models import Delivery, PinList, Subscription
from tests.history.factories import Image
from tests.support.sink import Sink

pytestmark = pytest.mark.django_db

PROJECT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:9/services/T000/B000/very-secret-path"


@pytest.fixture(autouse=True)
def loopback(settings):
    settings.TAGLEDGER_NOTIFY_ALLOW = ["127.0.0.0/8"]


def notify(*args) -> str:
    out = StringIO()
    call_command("notify", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args) -> CommandError:
    with pytest.raises(CommandError) as caught:
        notify(*args)
    return caught.value


def test_add_prints_the_id_and_a_made_secret_once():
    out = notify("add", URL, "--name", "ops")
    made = Subscription.objects.get()
    assert f"Subscription {made.pk}:" in out
    assert out.strip().splitlines()[-1] == made.secret and len(made.secret) >= 40
    assert "very-secret-path" not in out  # the URL is masked
    assert made.secret not in notify("list") + notify("list", "--json")


def test_add_with_every_choice():
    image = Image("acme/app")
    version = image.version("3.14.2", "slim")
    pins = PinList.objects.create(name="prod", text="x")
    out = notify(
        "add", URL, "--format", "slack", "--secret", "k" * 20, "--repository", image.repository.reference,
        "--tag", r"^3\.", "--kind", "moved", "unsigned", "--kind", "pin_behind", "--line", str(version.line),
        "--version", "3.14.2-slim", "--pin-list", str(pins.pk), "--json",
    )  # fmt: skip
    shown = json.loads(out)
    made = Subscription.objects.get()
    assert shown["id"] == made.pk and shown["secret"] == "k" * 20
    assert (made.format, made.repository, made.tag_pattern) == ("slack", image.repository, r"^3\.")
    assert made.kinds == ["moved", "unsigned", "pin_behind"]
    assert (made.line, made.version, made.pin_list) == (version.line, version, pins)


def test_list_shows_state_and_masks_urls():
    assert "no subscriptions" in notify("list")
    notify("add", URL, "--kind", "deleted")
    second = Subscription.objects.create(
        url=URL, secret="x" * 20, enabled=False, disabled_reason="failing\x1b[2J"
    )
    out = notify("list")
    assert "enabled" in out and "disabled" in out and "very-secret-path" not in out
    assert "\x1b" not in out and f"{second.pk}: disabled: failing?[2J" in out
    listed = json.loads(notify("list", "--json"))
    assert [item["id"] for item in listed] == [second.pk - 1, second.pk]
    assert listed[0]["kinds"] == ["deleted"] and "secret" not in listed[0]


def test_remove_enable_and_disable():
    notify("add", URL)
    made = Subscription.objects.get()
    assert "is disabled" in notify("disable", str(made.pk), "--reason", "maintenance")
    made.refresh_from_db()
    assert (made.enabled, made.disabled_reason) == (False, "maintenance")
    assert "is enabled" in notify("enable", str(made.pk))
    assert "was already enabled" in notify("enable", str(made.pk))
    made.refresh_from_db()
    assert made.enabled and made.disabled_at is None
    assert "Removed subscription" in notify("remove", str(made.pk))
    assert not Subscription.objects.exists()
    assert refused("remove", str(made.pk)).returncode == 2


def test_test_delivers_now_and_exits_1_when_refused():
    with Sink() as sink:
        notify("add", sink.url + "/hook", "--format", "cloudevents")
        made = Subscription.objects.get()
        assert "delivered: HTTP 200" in notify("test", str(made.pk))
        body = json.loads(sink.requests[0].body)
        assert body["type"] == "dev.tagledger.test"
        sink.respond(500)
        error = refused("test", str(made.pk))
        assert error.returncode == 1 and "not delivered" in str(error)
        shown = json.loads(notify("test", str(made.pk), "--json"))
    assert (shown["status"], shown["test"], shown["response_code"]) == ("delivered", True, 200)
    assert Delivery.objects.filter(test=True).count() == 3


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["add", "ftp://127.0.0.1/x"], "http"),
        (["add", "http://10.0.0.1/x"], "private"),
        (["add", URL, "--format", "xml"], "invalid choice"),
        (["add", URL, "--kind", "untracked"], "unknown kind"),
        (["add", URL, "--kind", "pin_behind"], "pin list"),
        (["add", URL, "--tag", "("], "not a valid regular expression"),
        (["add", URL, "--tag", "(a{1000}){1000}"], "too large"),
        (["add", URL, "--tag", "x" * 10_000], "longer than"),
        (["add", URL, "--secret", "short"], "16 to 256"),
        (["add", URL, "--name", "\x1b]0;pwned\x07"], "control"),
        (["add", URL + "\r\nX-Injected: 1"], "control"),
        (["add", URL, "--repository", "nowhere.example/x"], "no watched repository"),
        (["add", URL, "--repository", "reg\x00istry/x"], "NUL"),
        (["add", URL, "--repository", "evil\x1b[31m/x"], "control"),
        (["add", URL, "--line", "3.14"], "give --repository"),
        (["add", URL, "--pin-list", "999999"], "no pin list"),
        (["add", URL, "--pin-list", "-1"], "not an id"),
        (["test", "abc"], "not an id"),
        (["test", "0"], "not an id"),
        (["remove", "99999999999999999999"], "not an id"),
        (["enable", "4"], "no subscription 4"),
    ],
)
def test_bad_input_is_a_usage_error(args, said):
    error = refused(*args)
    assert said in str(error)
    assert error.returncode == 2
    assert not Subscription.objects.exists()


def test_a_line_or_version_must_be_of_the_repository():
    image = Image("acme/app")
    image.version("1.0")
    error = refused("add", URL, "--repository", image.repository.reference, "--version", "9.9")
    assert error.returncode == 2 and "has no version '9.9'" in str(error)


def test_exit_code_2_from_the_command_line():
    """argparse's own refusals end the process with 2 too (no database needed to refuse)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "notify", "test", "not-a-number"],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not an id" in done.stderr
