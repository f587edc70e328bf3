"""Sign-in is throttled: wrong passwords lock out a (username, address), and an address, for a while."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tagledger.security import ADDRESS_FACTOR

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-staple"
SIGN_IN_PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Each wrong password costs a full hash otherwise; the throttle does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("ops", password=PASSWORD, is_staff=True)


def from_address(address: str, **headers) -> Client:
    return Client(REMOTE_ADDR=address, **headers)


def sign_in(browser: Client, username: str, password: str, page: str = "/accounts/login/"):
    return browser.post(page, {"username": username, "password": password})


def signed_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


@pytest.mark.parametrize("page", SIGN_IN_PAGES)
def test_wrong_passwords_lock_the_username_out_from_that_address(staff, page):
    limit = django_settings.AXES_FAILURE_LIMIT
    browser = from_address("203.0.113.7")

    answers = [sign_in(browser, "ops", f"guess-{n}", page).status_code for n in range(60)]

    assert answers[: limit - 1] == [200] * (limit - 1), "the form again, with its error"
    assert answers[limit - 1 :] == [429] * (60 - limit + 1)
    # the right password does not get through either: no password is checked while locked out
    response = sign_in(browser, "ops", PASSWORD, page)
    assert response.status_code == 429 and not signed_in(browser)


def test_the_defaults_are_ten_failures_and_fifteen_minutes():
    assert django_settings.AXES_FAILURE_LIMIT == 10
    assert timedelta(minutes=15) == django_settings.AXES_COOLOFF_TIME


def test_the_lockout_page_says_when_to_retry_and_is_not_an_error(staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    browser = from_address("203.0.113.7")
    sign_in(browser, "ops", "wrong")

    response = sign_in(browser, "ops", "wrong")

    html = response.content.decode()
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert response["Content-Type"].startswith("text/html")
    assert "Too many sign-in attempts" in html and "Try again in 15 minutes" in html
    assert "Content-Security-Policy" in response.headers


def test_other_users_and_other_addresses_are_not_locked_out_by_one_username(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("reader", password=PASSWORD)
    attacker = from_address("203.0.113.7")
    for _ in range(3):
        sign_in(attacker, "ops", "wrong")
    assert sign_in(attacker, "ops", PASSWORD).status_code == 429

    # another username from the same address: below the per-address bound
    colleague = from_address("203.0.113.7")
    assert sign_in(colleague, "reader", PASSWORD).status_code == 302 and signed_in(colleague)
    # the locked username from elsewhere: not locked, so nobody can lock the admin out
    owner = from_address("198.51.100.20")
    assert sign_in(owner, "ops", PASSWORD).status_code == 302 and signed_in(owner)


def test_one_address_trying_many_usernames_is_locked_out_at_the_higher_bound(staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    bound = 2 * ADDRESS_FACTOR
    sprayer = from_address("203.0.113.7")

    answers = [sign_in(sprayer, f"user{n}", "wrong").status_code for n in range(bound + 2)]

    # one failure per username, so only the address bound applies
    assert answers == [200] * (bound - 1) + [429] * 3
    assert sign_in(sprayer, "ops", PASSWORD).status_code == 429 and not signed_in(sprayer)
    assert sign_in(from_address("198.51.100.20"), "ops", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    browser = from_address("203.0.113.7")
    for _ in range(2):
        sign_in(browser, "ops", "wrong")
    assert sign_in(browser, "ops", PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))

    assert sign_in(browser, "ops", PASSWORD).status_code == 302 and signed_in(browser)


def test_failures_are_recorded_without_the_passwords(staff):
    sign_in(from_address("203.0.113.7"), "ops", "my-other-password")

    (attempt,) = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("ops", "203.0.113.7", 1)
    assert "my-other-password" not in attempt.post_data


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ops\x00", "x"),  # PostgreSQL refuses NUL in text
        ("x" * 10_000, "x"),
        ("", ""),
        ("ops", "x" * 100_000),
        ("<script>alert(1)</script>", "x"),
        ("\U0001d52c\U0001d52d\U0001d530", "x"),  # Fraktur "ops", NFKC-normalised by the form
        ("' OR 1=1 --", "x"),
    ],
)
@pytest.mark.parametrize("page", SIGN_IN_PAGES)
def test_hostile_sign_in_input_is_refused_without_an_error(staff, settings, page, username, password):
    settings.AXES_FAILURE_LIMIT = 2
    browser = from_address("203.0.113.7")
    for _ in range(3):
        response = sign_in(browser, username, password, page)
        assert response.status_code in {200, 429}
        assert "<script>alert(1)</script>" not in response.content.decode()
    assert not signed_in(browser)


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": ""},  # gunicorn on a unix socket
        {"REMOTE_ADDR": "unix:/run/tagledger.sock"},
        {"REMOTE_ADDR": "not an address", "HTTP_X_FORWARDED_FOR": "also not"},
        {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "\x00, 999.1.1.1"},
        {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "x" * 5000},
    ],
)
@pytest.mark.parametrize("behind_proxy", [False, True])
def test_odd_peer_addresses_and_headers_never_break_sign_in(staff, settings, meta, behind_proxy):
    settings.TAGLEDGER_BEHIND_PROXY = behind_proxy
    settings.AXES_FAILURE_LIMIT = 2
    browser = Client(**meta)
    assert [sign_in(browser, "ops", "wrong").status_code for _ in range(3)] == [200, 429, 429]
