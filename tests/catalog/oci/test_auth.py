"""Challenge parsing, docker config.json credentials and token lifetimes."""

import base64
import json
import math
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.oci.auth import (
    MAX_TOKEN_LIFETIME,
    Challenge,
    Credentials,
    canonical_registry,
    load_credentials,
    parse_challenge,
    token_from_response,
)
from catalog.oci.errors import AccessDenied


def test_bearer_challenge_with_all_parameters():
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull",error="insufficient_scope"'
    )
    assert parse_challenge(header) == Challenge(
        "bearer", "https://auth.docker.io/token", "registry.docker.io",
        "repository:library/python:pull", "insufficient_scope",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="basic-realm"', Challenge("basic", realm="basic-realm")),
        ("basic realm=registry", Challenge("basic", realm="registry")),
        (
            'Bearer realm="http://a/token", service="x \\"q\\""',
            Challenge("bearer", "http://a/token", 'x "q"'),
        ),
        ("Negotiate abc", None),
        ("", None),
        (None, None),
    ],
)
def test_challenge_variants(header, expected):
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "index.docker.io"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("Quay.IO", "quay.io"),
    ],
)
def test_config_keys_match_registries_in_any_spelling(tmp_path, key, registry):
    auth = base64.b64encode(b"alice:s3cr:et").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {key: {"auth": auth}}}))
    assert load_credentials(registry, tmp_path) == Credentials("alice", "s3cr:et")


def test_username_password_and_identity_token_entries(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "a.example": {"username": "bob", "password": "pw"},
                    "b.example": {"auth": "", "identitytoken": "refresh-me"},
                    "c.example": {},
                }
            }
        )
    )
    assert load_credentials("a.example", tmp_path) == Credentials("bob", "pw")
    assert load_credentials("b.example", tmp_path) == Credentials(identity_token="refresh-me")
    assert load_credentials("c.example", tmp_path) is None
    assert load_credentials("d.example", tmp_path) is None


def test_missing_config_means_anonymous(tmp_path):
    assert load_credentials("quay.io", tmp_path) is None
    assert load_credentials("quay.io", None) is None


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"auths": {"q.io": {"auth": "!!!"}}}),
        json.dumps({"auths": {"q.io": {"auth": base64.b64encode(b"nocolon").decode()}}}),
    ],
)
def test_broken_config_is_a_clear_error(tmp_path, content):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(AccessDenied, match=r"config\.json"):
        load_credentials("q.io", tmp_path)


def test_credentials_never_show_secrets():
    text = repr(Credentials("alice", "hunter2", "tok"))
    assert "hunter2" not in text and "tok'" not in text


def test_canonical_registry():
    assert canonical_registry("HTTPS://Index.Docker.IO/v1/") == "docker.io"
    assert canonical_registry("127.0.0.1:5000") == "127.0.0.1:5000"


def test_token_lifetime_defaults_to_60_seconds_and_accepts_access_token():
    now = time.monotonic()
    token = token_from_response({"access_token": "abc"}, received_at=now)
    assert token.value == "abc"
    assert token.expires_at == pytest.approx(now + 60)
    assert token_from_response({"token": "t", "expires_in": 10}, received_at=now).expires_at == pytest.approx(
        now + 60
    ), "lifetimes under the spec's minimum are raised to it"


def test_token_lifetime_counts_time_since_issue():
    now = time.monotonic()
    issued = (datetime.now(UTC) - timedelta(seconds=100)).isoformat().replace("+00:00", "Z")
    token = token_from_response({"token": "t", "expires_in": 300, "issued_at": issued}, received_at=now)
    assert token.expires_at == pytest.approx(now + 200, abs=2)


def test_expired_token_is_not_fresh():
    assert not token_from_response({"token": "t", "expires_in": 60}, received_at=time.monotonic() - 58).fresh


@pytest.mark.parametrize("document", [[], {"token": ""}, {"token": 5}, {"expires_in": 300}])
def test_token_responses_without_a_token_are_refused(document):
    with pytest.raises(AccessDenied):
        token_from_response(document)


# --- hostile token answers and challenges -----------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
NUMBERS = (
    st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.sampled_from(["300", "²", "1e400", "inf", ""])
)
TIMES = st.text(max_size=80) | st.sampled_from(
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01",
        "2024-13-01T00:00:00Z",
        "Z",
        "2024-01-01T00:00:00",
    ]
)
TOKENS = st.text() | st.sampled_from(["ok\r\nX-Injected: 1", "tök€n", "a b", "\x00", "a" * 20_000])
TOKEN_ANSWERS = st.fixed_dictionaries(
    {},
    optional={
        "token": TOKENS | JSON,
        "access_token": TOKENS | JSON,
        "expires_in": NUMBERS | JSON,
        "issued_at": TIMES | JSON,
    },
)


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(TOKEN_ANSWERS, JSON))
def test_any_token_answer_gives_a_sendable_token_with_a_bounded_lifetime_or_access_denied(document):
    now = time.monotonic()
    try:
        token = token_from_response(document, received_at=now)
    except AccessDenied:
        return
    assert re.fullmatch(r"[!-~]+", token.value), "fits in an Authorization header"
    token.value.encode("latin-1")
    assert math.isfinite(token.expires_at)
    assert now < token.expires_at <= now + MAX_TOKEN_LIFETIME


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (float("inf"), MAX_TOKEN_LIFETIME),
        (1e400, MAX_TOKEN_LIFETIME),  # what json.loads makes of the literal 1e400
        (10**400, MAX_TOKEN_LIFETIME),
        (86400 * 365, MAX_TOKEN_LIFETIME),
        (float("nan"), 60),
        (float("-inf"), 60),
        (-300, 60),
        (True, 60),
        ("300", 60),
        (None, 60),
        ([300], 60),
        (300, 300),
        (300.5, 300.5),
    ],
)
def test_token_lifetimes_are_bounded_whatever_expires_in_says(expires_in, lifetime):
    now = time.monotonic()
    token = token_from_response({"token": "t", "expires_in": expires_in}, received_at=now)
    assert token.expires_at == pytest.approx(now + lifetime)


def test_expires_in_of_1e400_in_the_json_text_is_an_hour():
    document = json.loads('{"token": "t", "expires_in": 1e400}')
    now = time.monotonic()
    assert token_from_response(document, received_at=now).expires_at == pytest.approx(
        now + MAX_TOKEN_LIFETIME
    )


@pytest.mark.parametrize(
    "issued_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2999-01-01T00:00:00Z", "x" * 10_000, 5, None],
)
def test_an_unusable_issued_at_is_ignored(issued_at):
    now = time.monotonic()
    token = token_from_response({"token": "t", "expires_in": 300, "issued_at": issued_at}, received_at=now)
    assert token.expires_at == pytest.approx(now + 300)


@pytest.mark.parametrize(
    "value", ["ok\r\nX-Injected: 1", "ok\nx", "tök€n", "tök", "a b", "\x00", "\t", "a" * 20_000]
)
def test_a_token_that_cannot_go_in_a_header_is_refused(value):
    with pytest.raises(AccessDenied, match="header"):
        token_from_response({"token": value})


def test_a_usable_access_token_is_taken_when_token_is_not_a_string():
    assert token_from_response({"token": 5, "access_token": "abc"}).value == "abc"


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.text()
    | st.sampled_from(['Bearer realm="', 'Bearer realm="a\\', "Basic", "Bearer ,,,===", "bearer\x00"])
)
def test_any_challenge_parses_to_a_challenge_or_none(header):
    challenge = parse_challenge(header)
    assert challenge is None or (
        challenge.scheme in {"bearer", "basic"}
        and all(isinstance(value, str) for value in (challenge.realm, challenge.service, challenge.scope))
    )


def test_repeated_challenges_keep_the_first_realm():
    header = 'Bearer realm="https://auth.example/token",service="r", Basic realm="https://elsewhere/"'
    assert parse_challenge(header).realm == "https://auth.example/token"
