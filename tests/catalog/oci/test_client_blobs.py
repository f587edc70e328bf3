"""Image configs are fetched by digest, verified, and redirects never carry credentials elsewhere."""

import pytest

from catalog.oci.auth import Credentials
from catalog.oci.client import RegistryClient
from catalog.oci.errors import BadResponse, DigestMismatch
from tests.support.faultproxy import FaultProxy, Respond, TamperBody


def test_config_redirected_to_a_storage_host_is_fetched_without_credentials(
    basic_registry, registry, make_pusher, repo_name
):
    # The same seed gives the same blobs in both registries; the open one plays the storage host.
    pushed = make_pusher(basic_registry).push(repo_name, "1.0", "oci", labels={"team": "a"})
    make_pusher(registry).push(repo_name, "1.0", "oci", labels={"team": "a"})
    credentials = Credentials(basic_registry.username, basic_registry.password)
    with FaultProxy(basic_registry.url) as front, FaultProxy(registry.url) as storage:
        front.add_rule(
            Respond(307, {"Location": f"{storage.url}/v2/{repo_name}/blobs/{pushed.config_digest}"}),
            method="GET", path="/blobs/",
        )  # fmt: skip
        with RegistryClient(front.host, credentials=credentials) as client:
            config = client.get_config(repo_name, pushed.config_digest)
    assert config.labels == {"team": "a"}
    [at_front] = front.find(method="GET", path_regex="/blobs/")
    [at_storage] = storage.records
    assert at_front.headers["authorization"].startswith("Basic ")
    assert "authorization" not in at_storage.headers


def test_a_config_that_does_not_hash_to_its_digest_is_refused(registry, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "oci")
    with FaultProxy(registry.url) as proxy, RegistryClient(proxy.host, max_attempts=1) as client:
        proxy.add_rule(TamperBody(lambda body: body.replace(b"amd64", b"arm64")), path="/blobs/")
        with pytest.raises(DigestMismatch):
            client.get_config(repo_name, pushed.config_digest)


def test_a_config_over_the_cap_is_refused(registry, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "oci")
    with RegistryClient(registry.host) as client, pytest.raises(BadResponse, match="byte cap"):
        client.get_blob(repo_name, pushed.config_digest, max_bytes=10)


def test_redirect_loops_are_cut_short(registry, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "oci")
    with FaultProxy(registry.url) as proxy, RegistryClient(proxy.host) as client:
        location = f"{proxy.url}/v2/{repo_name}/blobs/{pushed.config_digest}"
        proxy.add_rule(Respond(302, {"Location": location}), path="/blobs/")
        with pytest.raises(BadResponse, match="redirects"):
            client.get_config(repo_name, pushed.config_digest)
