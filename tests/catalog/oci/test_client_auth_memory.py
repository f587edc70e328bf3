"""AuthMemory: what one client learnt of a registry's auth saves the next its ping and token
requests, and never sends a token past its lifetime or to other credentials."""

import json

import pytest

from catalog.oci.auth import AuthMemory, Token
from catalog.oci.client import RegistryClient
from tests.support.faultproxy import FaultProxy, Respond

PING = r"^/v2/?$"


@pytest.fixture
def pushed(token_registry, make_pusher, repo_name):
    result = make_pusher(token_registry).push(repo_name, "1.0", "oci")
    token_registry.token_server.requests.clear()
    return repo_name, result.digest


@pytest.fixture
def proxy(token_registry):
    with FaultProxy(token_registry.url) as front:
        yield front


def head(proxy, name, memory, **options) -> str:
    with RegistryClient(proxy.host, memory=memory, **options) as client:
        return client.head_manifest(name, "1.0").digest


def test_the_next_client_sends_no_ping_and_reuses_the_token(proxy, token_server, pushed):
    name, digest = pushed
    memory = AuthMemory()
    assert head(proxy, name, memory) == digest
    proxy.reset()

    assert head(proxy, name, memory) == digest

    assert proxy.count("GET", PING) == 0
    assert token_server.count() == 1
    assert [record.method for record in proxy.records] == ["HEAD"]


def test_without_a_memory_every_client_pings_and_asks_for_its_token(proxy, token_server, pushed):
    name, _ = pushed
    head(proxy, name, None)
    head(proxy, name, None)

    assert proxy.count("GET", PING) == 2
    assert token_server.count() == 2


def test_a_remembered_token_past_its_lifetime_is_never_sent(proxy, token_server, pushed):
    name, digest = pushed
    memory = AuthMemory()
    head(proxy, name, memory)
    sent = proxy.find("HEAD")[-1].headers["authorization"]
    (tokens,) = memory._tokens.values()
    scope = f"repository:{name}:pull"
    tokens.put(scope, Token(sent.removeprefix("Bearer "), expires_at=0.0))  # as if an hour had passed
    proxy.reset()

    assert head(proxy, name, memory) == digest

    assert token_server.count() == 2
    assert proxy.find("HEAD")[-1].headers["authorization"] != sent
    assert proxy.count(status=401) == 0  # the stale token never went out


def test_a_remembered_token_the_registry_refuses_is_replaced_once(proxy, token_server, pushed):
    name, digest = pushed
    memory = AuthMemory()
    head(proxy, name, memory)
    challenge = f'Bearer realm="{token_server.realm}",service="{token_server.service}"'
    proxy.add_rule(Respond(401, {"WWW-Authenticate": challenge}), method="HEAD", times=1)

    assert head(proxy, name, memory) == digest

    assert token_server.count() == 2
    assert proxy.count("HEAD", status=401) == 1


def test_other_credentials_never_get_a_remembered_token(proxy, token_server, pushed, tmp_path):
    name, _ = pushed
    memory = AuthMemory()
    head(proxy, name, memory)
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {proxy.host: {"username": "tester", "password": "s3cret-pass"}}})
    )

    with RegistryClient.from_docker_config(proxy.host, tmp_path, memory=memory) as client:
        client.head_manifest(name, "1.0")

    assert token_server.count() == 2
    assert token_server.count(authenticated=True) == 1


def test_a_remembered_challenge_is_trusted_only_for_a_while(proxy, token_server, pushed, monkeypatch):
    name, _ = pushed
    memory = AuthMemory()
    head(proxy, name, memory)
    monkeypatch.setattr(AuthMemory, "CHALLENGE_SECONDS", -1.0)
    memory.learn(AuthMemory.key(proxy.url, None), None)  # learnt just now, already too old
    proxy.reset()

    head(proxy, name, memory)

    assert proxy.count("GET", PING) == 1
