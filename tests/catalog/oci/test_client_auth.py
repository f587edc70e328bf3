"""Basic and Bearer auth against registries that really check: credentials from docker's config.json."""

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from catalog.oci.client import RegistryClient
from catalog.oci.errors import AccessDenied, BadResponse
from tests.support.faultproxy import FaultProxy, Respond, RewriteHeader, TamperBody
from tests.support.oracle import skopeo_digest


def docker_config(tmp_path, registry, **entry):
    """A $DOCKER_CONFIG folder as `docker login` leaves it."""
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"http://{registry.host}": entry}}))
    return tmp_path


def basic_auth(username, password):
    return base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def pushed(make_pusher, repo_name, request):
    """An index pushed to the registry the test names in its `registry_kind` parameter."""
    registry = request.getfixturevalue(request.param)
    result = make_pusher(registry).push(repo_name, "1.0", "oci-index")
    creds = (registry.username, registry.password) if registry.auth == "basic" else None
    assert skopeo_digest(registry.host, repo_name, "1.0", creds=creds) == result.digest
    if registry.token_server:
        registry.token_server.requests.clear()  # count only what the client under test asks
    return registry, result


@pytest.mark.parametrize("pushed", ["basic_registry"], indirect=True)
def test_basic_auth_with_credentials_from_docker_config(pushed, repo_name, tmp_path):
    registry, result = pushed
    config = docker_config(tmp_path, registry, auth=basic_auth(registry.username, registry.password))
    with RegistryClient.from_docker_config(registry.host, config) as client:
        assert client.head_manifest(repo_name, "1.0").digest == result.digest
        assert client.list_tags(repo_name).tags == ("1.0",)
        assert client.ping().scheme == "basic"


@pytest.mark.parametrize("pushed", ["basic_registry"], indirect=True)
def test_basic_auth_without_or_with_wrong_credentials_is_denied(pushed, repo_name, tmp_path):
    registry, _ = pushed
    with RegistryClient(registry.host) as client, pytest.raises(AccessDenied, match="DOCKER_CONFIG"):
        client.head_manifest(repo_name, "1.0")
    config = docker_config(tmp_path, registry, username=registry.username, password="wrong")
    with RegistryClient.from_docker_config(registry.host, config) as client, pytest.raises(AccessDenied):
        client.get_manifest(repo_name, "1.0")


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_anonymous_bearer_token_is_fetched_once_per_scope(pushed, repo_name, token_server):
    registry, result = pushed
    with RegistryClient(registry.host, concurrency=8) as client:
        with ThreadPoolExecutor(8) as pool:
            digests = set(pool.map(lambda _: client.head_manifest(repo_name, "1.0").digest, range(32)))
        assert digests == {result.digest}
        client.list_tags(repo_name)
    scope = f"repository:{repo_name}:pull"
    assert token_server.count(scope=scope) == 1, "threads share one token"
    assert token_server.count(authenticated=True) == 0


@pytest.mark.parametrize("token_field", ["token", "access_token", "both"])
@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_token_field_variants_and_missing_expiry(pushed, repo_name, token_server, token_field):
    registry, result = pushed
    token_server.token_field = token_field
    token_server.expires_in = None
    token_server.include_issued_at = False
    with RegistryClient(registry.host) as client:
        assert client.get_manifest(repo_name, "1.0").digest == result.digest


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_credentialed_token_uses_basic_auth_at_the_token_service(pushed, repo_name, token_server, tmp_path):
    registry, result = pushed
    token_server.anonymous_actions = set()  # only known users may pull
    config = docker_config(tmp_path, registry, username="tester", password="s3cret-pass")
    with RegistryClient.from_docker_config(registry.host, config) as client:
        assert client.head_manifest(repo_name, "1.0").digest == result.digest
    assert token_server.count(authenticated=True) == 1


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_identity_token_uses_the_refresh_token_grant(pushed, repo_name, token_server, tmp_path):
    registry, result = pushed
    token_server.anonymous_actions = set()
    token_server.refresh_tokens = {"refresh-abc": "tester"}
    config = docker_config(tmp_path, registry, auth="", identitytoken="refresh-abc")
    with RegistryClient.from_docker_config(registry.host, config) as client:
        assert client.head_manifest(repo_name, "1.0").digest == result.digest
    assert [request.grant_type for request in token_server.requests] == ["refresh_token"]


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_wrong_password_at_the_token_service_is_denied(pushed, repo_name, tmp_path):
    registry, _ = pushed
    config = docker_config(tmp_path, registry, username="tester", password="wrong")
    with RegistryClient.from_docker_config(registry.host, config) as client, pytest.raises(AccessDenied):
        client.head_manifest(repo_name, "1.0")


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_a_token_without_access_is_retried_once_then_denied(pushed, repo_name, token_server):
    registry, _ = pushed
    token_server.anonymous_actions = set()  # the token service answers, but grants nothing
    with RegistryClient(registry.host) as client, pytest.raises(AccessDenied, match="HTTP 401"):
        client.head_manifest(repo_name, "1.0")
    assert token_server.count(scope=f"repository:{repo_name}:pull") == 2


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_a_revoked_token_is_replaced_once(pushed, repo_name, token_server):
    registry, result = pushed
    with FaultProxy(registry.url) as proxy, RegistryClient(proxy.host) as client:
        client.head_manifest(repo_name, "1.0")
        challenge = f'Bearer realm="{token_server.realm}",service="{token_server.service}"'
        proxy.add_rule(Respond(401, {"WWW-Authenticate": challenge}), method="HEAD", times=1)
        token_server.requests.clear()
        assert client.head_manifest(repo_name, "1.0").digest == result.digest
    assert token_server.count() == 1


def through_token_proxy(front: FaultProxy, token_server, tokens: FaultProxy) -> None:
    """The registry's challenges name `tokens` (a proxy in front of the token server) as realm."""
    front.add_rule(RewriteHeader("WWW-Authenticate", token_server.realm, f"{tokens.url}/token"))


@pytest.mark.parametrize(
    "field",
    [b'"expires_in": 1e400', b'"expires_in": -1e400', b'"expires_in": NaN', b'"expires_in": true',
     b'"expires_in": "300"', b'"expires_in": ' + b"9" * 5000, b'"expires_in": {"a": [1]}',
     b'"issued_at": "9999-12-31T23:59:59-23:59"', b'"issued_at": "0001-01-01T00:00:00+23:59"',
     b'"issued_at": 1e400'],
)  # fmt: skip
@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_a_token_answer_with_absurd_lifetime_fields_still_works(pushed, repo_name, token_server, field):
    registry, result = pushed
    name = field.split(b":")[0]
    # json.loads reads NaN and 1e400 (inf), as a hostile token service may well write them.
    tamper = TamperBody(lambda body: re.sub(name + rb": *(\d+|\"[^\"]*\")", field, body))
    with FaultProxy(registry.url) as front, FaultProxy(token_server.url) as tokens:
        through_token_proxy(front, token_server, tokens)
        tokens.add_rule(tamper, path="^/token$")
        with RegistryClient(front.host) as client:
            assert client.head_manifest(repo_name, "1.0").digest == result.digest
            assert client.head_manifest(repo_name, "1.0").digest == result.digest
        assert tokens.count("GET", "^/token$") == 1, "one token, kept for its (bounded) lifetime"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b'{"token": "ok\\r\\nX-Injected: 1"}', AccessDenied),
        ('{"token": "tök€n"}'.encode(), AccessDenied),
        (b'{"token": "a b"}', AccessDenied),
        (b'{"token": 5}', AccessDenied),
        (b'{"token": "' + b"a" * 20_000 + b'"}', AccessDenied),
        (b"[" * 50_000 + b"]" * 50_000, BadResponse),
        (b'{"token": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", BadResponse),
        (b"\xff\xfe", BadResponse),
        (b"<html>", BadResponse),
    ],
)
@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_a_token_answer_that_cannot_be_used_is_a_registry_error(
    pushed, repo_name, token_server, answer, error
):
    registry, _ = pushed
    with FaultProxy(registry.url) as front, FaultProxy(token_server.url) as tokens:
        through_token_proxy(front, token_server, tokens)
        tokens.add_rule(Respond(200, {"Content-Type": "application/json"}, answer), path="^/token$")
        with RegistryClient(front.host) as client, pytest.raises(error):
            client.head_manifest(repo_name, "1.0")
        assert all("x-injected" not in record.headers for record in front.records)


@pytest.mark.parametrize("pushed", ["token_registry"], indirect=True)
def test_a_password_beyond_latin_1_reaches_the_token_service_as_utf_8(
    pushed, repo_name, token_server, tmp_path
):
    registry, result = pushed
    token_server.users = {"tester": "pässwörd-€"}
    token_server.anonymous_actions = set()
    config = docker_config(tmp_path, registry, username="tester", password="pässwörd-€")
    with RegistryClient.from_docker_config(registry.host, config) as client:
        assert client.head_manifest(repo_name, "1.0").digest == result.digest
    assert token_server.count(authenticated=True) == 1
