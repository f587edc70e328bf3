"""API tokens: stored hashed and shown once, sent as `Authorization: Bearer`, read-only unless staff-scoped,
refused with a 401 that says why (never a 500), made and revoked on a page and with `manage.py token`."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from ninja.errors import HttpError

from tagledger.tokens.auth import MAX_HEADER, TokenAuthenticationError, bearer_token, bearerAuth, check_method
from tagledger.tokens.models import LAST_USED_RESOLUTION, ApiToken, TokenRefused

pytestmark = pytest.mark.django_db

API = "/api/v1/repositories"


@pytest.fixture
def private(settings):
    settings.TAGLEDGER_PUBLIC = False


@pytest.fixture
def reader():
    return User.objects.create_user("reader")  # no password: hashing one costs 0.2 s a test


@pytest.fixture
def admin():
    return User.objects.create_user("admin", is_staff=True)


def bearer(client, secret: str, path: str = API):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


# --- storage ------------------------------------------------------------------------------------


def test_the_database_holds_a_hash_of_the_secret_never_the_secret(reader):
    issued = ApiToken.objects.issue(reader, "ci")
    secret = issued.secret
    assert secret.startswith("tl_") and len(secret) == 46
    row = ApiToken.objects.get(pk=issued.token.pk)
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert row.prefix == secret[3:11]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tokens_apitoken")
        stored = " ".join(str(value) for value in cursor.fetchone())
    assert secret not in stored and secret[11:] not in stored


def test_each_token_is_new_random_bytes(reader):
    secrets = {ApiToken.objects.issue(reader, f"ci {n}").secret for n in range(20)}
    assert len(secrets) == 20 and len({secret[3:11] for secret in secrets}) == 20


def test_staff_scope_is_only_for_staff_users(reader, admin):
    with pytest.raises(ValueError, match="not staff"):
        ApiToken.objects.issue(reader, "deploy", staff=True)
    assert ApiToken.objects.issue(admin, "deploy", staff=True).token.staff


# --- the API ------------------------------------------------------------------------------------


def test_a_token_reads_the_api_without_a_session(client, private, reader):
    secret = ApiToken.objects.issue(reader, "ci").secret
    assert client.get(API).status_code == 401
    response = bearer(client, secret)
    assert response.status_code == 200, response.content
    assert response.json() == []
    assert "_auth_user_id" not in client.session  # the token logs nobody in


def test_a_token_of_a_staff_user_without_staff_scope_reads_too(client, private, admin):
    assert bearer(client, ApiToken.objects.issue(admin, "ci").secret).status_code == 200


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer", "Bearer with no token"),
        ("Bearer ", "Bearer with no token"),
        ("bearer    ", "Bearer with no token"),
        ("Bearer tl_a tl_b", "one token after 'Bearer '"),
        ("Bearer\ttl_" + "a" * 43, "invalid token"),  # a tab separates as a space does
        ("Bearer " + "x" * 600, f"longer than {MAX_HEADER}"),
        ("Bearer " + "a" * 46, "not a tagledger API token"),
        ("Bearer tl_" + "a" * 42, "not a tagledger API token"),
        ("Bearer tl_" + "a" * 42 + "\x00", "not a tagledger API token"),
        ("Bearer tl_" + "a" * 42 + "é", "not a tagledger API token"),
        ("Bearer tl_" + "a" * 42 + "+", "not a tagledger API token"),
        ("Bearer tl_" + "a" * 43, "invalid token"),  # well formed, unknown prefix
    ],
)
def test_a_malformed_or_unknown_bearer_is_a_401_that_says_why(client, private, header, detail):
    response = client.get(API, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert detail in response.json()["detail"]


def test_a_token_with_a_known_prefix_and_a_wrong_rest_is_invalid(client, private, reader):
    secret = ApiToken.objects.issue(reader, "ci").secret
    forged = secret[:11] + ("A" if secret[11] != "A" else "B") + secret[12:]
    assert bearer(client, forged).json() == {"detail": "invalid token"}


def test_a_revoked_token_is_refused(client, private, reader):
    issued = ApiToken.objects.issue(reader, "ci")
    assert issued.token.revoke()
    response = bearer(client, issued.secret)
    assert (response.status_code, response.json()) == (401, {"detail": "token revoked"})
    first = ApiToken.objects.get(pk=issued.token.pk).revoked_at
    assert not issued.token.revoke()  # a second revocation keeps the first one's time
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at == first


def test_a_token_of_a_deactivated_user_is_refused(client, private, reader):
    secret = ApiToken.objects.issue(reader, "ci").secret
    User.objects.filter(pk=reader.pk).update(is_active=False)
    response = bearer(client, secret)
    assert (response.status_code, response.json()) == (401, {"detail": "the token's user is deactivated"})


def test_another_scheme_is_not_ours_to_judge(client, private):
    response = client.get(API, HTTP_AUTHORIZATION="Basic cmVhZGVyOnB3")
    assert (response.status_code, response.json()) == (401, {"detail": "authentication required"})


def test_a_bad_token_beside_a_session_is_still_refused(client, private, reader):
    client.force_login(reader)
    assert client.get(API).status_code == 200
    assert bearer(client, "tl_" + "a" * 43).status_code == 401


def test_a_public_instance_ignores_tokens(client, public, reader):
    """Reads need no credentials there, so a stale token in a script does not break them."""
    issued = ApiToken.objects.issue(reader, "ci")
    issued.token.revoke()
    assert bearer(client, issued.secret).status_code == 200
    assert bearer(client, "garbage").status_code == 200


@pytest.mark.parametrize(
    ("method", "staff_scope", "staff_user", "allowed"),
    [
        ("GET", False, False, True),
        ("HEAD", False, False, True),
        ("OPTIONS", False, False, True),
        ("POST", False, False, False),
        ("DELETE", False, True, False),
        ("PATCH", True, True, True),
        ("POST", True, False, False),  # staff scope, but the user is no longer staff
    ],
)
def test_only_a_staff_scoped_token_of_a_staff_user_may_do_more_than_read(
    admin, private, method, staff_scope, staff_user, allowed
):
    token = ApiToken.objects.issue(admin, "ci", staff=staff_scope).token
    User.objects.filter(pk=admin.pk).update(is_staff=staff_user)
    token = ApiToken.objects.select_related("user").get(pk=token.pk)
    assert token.may(method) is allowed
    if allowed:
        check_method(token, method)
    else:
        with pytest.raises(HttpError) as refused:
            check_method(token, method)
        assert refused.value.status_code == 403 and "read-only" in str(refused.value)


def test_the_auth_class_applies_the_scope_rule_to_a_write(private, reader):
    """Every API endpoint today is a GET; a future write endpoint inherits the rule from the auth class."""
    secret = ApiToken.objects.issue(reader, "ci").secret
    request = RequestFactory().post(API, HTTP_AUTHORIZATION=f"Bearer {secret}")
    with pytest.raises(HttpError) as refused:
        bearerAuth()(request)
    assert refused.value.status_code == 403
    request = RequestFactory().get(API, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert bearerAuth()(request).user == reader and request.user == reader
    with pytest.raises(TokenAuthenticationError, match="invalid token"):
        bearerAuth()(RequestFactory().get(API, HTTP_AUTHORIZATION="Bearer tl_" + "b" * 43))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer tl_x", "tl_x"),
        ("  bearer   tl_x  ", "tl_x"),
        ("BEARER tl_x", "tl_x"),
        ("Basic abc", None),
        ("", None),
    ],
)
def test_reading_the_header(header, token):
    assert bearer_token(header) == token


def test_reading_a_hostile_header_refuses_it_with_a_reason():
    for header in ("Bearer", "Bearer a b", "Bearer " + "a" * 1000):
        with pytest.raises(TokenRefused):
            bearer_token(header)


def test_last_used_is_written_at_most_once_a_minute(client, private, reader):
    issued = ApiToken.objects.issue(reader, "ci")
    assert issued.token.last_used_at is None
    assert bearer(client, issued.secret).status_code == 200
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert first is not None
    with CountingUpdates() as updates:
        for _ in range(3):
            assert bearer(client, issued.secret).status_code == 200
    assert updates.count == 0
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first

    # A stale copy of the row (another request's) does not write over a newer use: compare-and-set.
    stale = ApiToken.objects.get(pk=issued.token.pk)
    stale.last_used_at = None
    stale.touch(now=first + LAST_USED_RESOLUTION / 2)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first
    stale.touch(now=first + LAST_USED_RESOLUTION + timedelta(seconds=1))
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at > first


class CountingUpdates:
    def __enter__(self):
        self.count = 0
        self._wrapper = connection.execute_wrapper(self._count)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def _count(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("UPDATE") and "tokens_apitoken" in sql:
            self.count += 1
        return execute(sql, params, many, context)


# --- OpenAPI ------------------------------------------------------------------------------------


def test_a_private_instance_documents_the_bearer_scheme(client, private):
    document = client.get("/api/v1/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert operations and all({"bearerAuth": []} in operation["security"] for operation in operations)


def test_a_public_instance_documents_no_scheme_for_reading(client, public):
    """Only what needs credentials there too (writes, the staff-only notifications) declares a scheme."""
    document = client.get("/api/v1/openapi.json").json()
    assert "Readers" not in document.get("components", {}).get("securitySchemes", {})
    reads = document["paths"]["/api/v1/repositories"]["get"]
    assert "security" not in reads
    assert document["paths"]["/api/v1/subscriptions"]["get"]["security"][0] == {"bearerAuth": []}


# --- the page -----------------------------------------------------------------------------------


def test_the_page_needs_a_sign_in(client):
    response = client.get("/accounts/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_shows_a_new_secret_once_and_then_only_its_prefix(client, reader):
    client.force_login(reader)
    created = client.post("/accounts/tokens/", {"name": "nightly CI"})
    assert created.status_code == 201
    token = ApiToken.objects.get(user=reader)
    secret = created.context["issued"].secret
    assert secret in created.content.decode() and not token.staff
    listing = client.get("/accounts/tokens/").content.decode()
    assert secret not in listing and secret[11:] not in listing
    assert token.display_prefix in listing and "nightly CI" in listing and "read-only" in listing


def test_the_staff_scope_is_offered_to_staff_only(client, reader, admin):
    client.force_login(reader)
    assert 'name="staff"' not in client.get("/accounts/tokens/").content.decode()
    client.post("/accounts/tokens/", {"name": "sneaky", "staff": "on"})
    assert not ApiToken.objects.get(user=reader).staff
    client.force_login(admin)
    assert 'name="staff"' in client.get("/accounts/tokens/").content.decode()
    client.post("/accounts/tokens/", {"name": "deploy", "staff": "on"})
    assert ApiToken.objects.get(user=admin).staff


@pytest.mark.parametrize("name", ["", "   ", "a" * 101, "two\nlines", "nul\x00", "bidi\u202eevil"])
def test_a_bad_name_is_refused_on_the_form(client, reader, name):
    client.force_login(reader)
    response = client.post("/accounts/tokens/", {"name": name})
    assert response.status_code == 200 and response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_revoking_on_the_page_keeps_the_row_and_another_users_token_is_out_of_reach(client, reader, admin):
    mine = ApiToken.objects.issue(reader, "mine").token
    theirs = ApiToken.objects.issue(admin, "theirs").token
    client.force_login(reader)
    assert client.post(f"/accounts/tokens/{theirs.pk}/revoke").status_code == 404
    assert client.get(f"/accounts/tokens/{mine.pk}/revoke").status_code == 405
    assert client.post(f"/accounts/tokens/{mine.pk}/revoke").status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None
    listing = client.get("/accounts/tokens/").content.decode()
    assert "revoked" in listing and "theirs" not in listing


def test_the_page_refuses_a_post_without_csrf(reader):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reader)
    assert browser.post("/accounts/tokens/", {"name": "ci"}).status_code == 403
    assert not ApiToken.objects.exists()


# --- the command --------------------------------------------------------------------------------


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_secret_alone_on_stdout(client, private, reader):
    out, err = run("create", "reader", "--name", "ci")
    secret = out.strip()
    assert "\n" not in secret and secret.startswith("tl_")
    assert "shown this once" in err
    assert bearer(client, secret).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "nobody", "--name", "ci"], "no user 'nobody'"),
        (["create", "reader", "--name", "ci", "--staff"], "not staff"),
        (["create", "reader", "--name", "  "], "needs a name"),
        (["revoke", "999999"], "no token '999999'"),
        (["revoke", "tl_zzzzzzzz"], "no token"),
        (["revoke", "\x00"], "no token"),
        (["list", "nobody"], "no user 'nobody'"),
    ],
)
def test_errors_exit_1_with_a_clear_message(reader, args, message):
    with pytest.raises(CommandError, match=message) as failed:
        run(*args)
    assert failed.value.returncode == 1


def test_list_and_revoke_by_id_or_prefix(reader, admin):
    one = ApiToken.objects.issue(reader, "one").token
    two = ApiToken.objects.issue(admin, "two", staff=True).token
    out, _ = run("list")
    assert one.display_prefix in out and two.display_prefix in out and "staff" in out
    out, _ = run("list", "reader")
    assert one.display_prefix in out and two.display_prefix not in out

    assert "Revoked token" in run("revoke", str(one.pk))[0]
    assert "Revoked token" in run("revoke", two.display_prefix)[0]
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke", str(one.pk))
    out, _ = run("list")
    assert out.count(timezone.now().strftime("%Y-%m-%d")) >= 4  # created and revoked, each


def test_the_same_token_form_sent_again_makes_no_second_token(client, reader):
    """A reload of the page that showed the secret sends the form again: it makes no second token."""
    client.force_login(reader)
    page = client.get("/accounts/tokens/").content.decode()
    sent_once = re.search(r'name="once" value="([^"]+)"', page).group(1)

    assert client.post("/accounts/tokens/", {"name": "CI", "once": sent_once}).status_code == 201
    again = client.post("/accounts/tokens/", {"name": "CI", "once": sent_once}, follow=True)

    assert ApiToken.objects.filter(user=reader).count() == 1
    assert again.redirect_chain == [("/accounts/tokens/", 302)]
    assert "That form was sent already" in again.content.decode()
    # Forged or missing values are not told apart (a script posting directly): each makes one.
    for forged in ("", "x" * 22 + "!", None):
        client.post(
            "/accounts/tokens/", {"name": "script", **({"once": forged} if forged is not None else {})}
        )
    assert ApiToken.objects.filter(user=reader).count() == 4
