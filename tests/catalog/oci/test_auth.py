"""Challenge parsing, docker config.json credentials and token lifetimes."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from catalog.oci.auth import (
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
