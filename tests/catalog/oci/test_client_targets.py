"""Where a registry can send tagledger: token realms and redirects, by scheme and by address.

The registry names other hosts (the realm of its WWW-Authenticate challenge, the storage host a
blob redirects to). Credentials go to the realm, so a realm is followed only if it is HTTPS when
the registry is, and only if it resolves to public addresses or to the registry's own kind (a
loopback registry, as in these tests, may use a loopback realm). The same holds for redirects,
which never carry credentials.

Test registries all live on 127.0.0.1. To play a *public* registry, `public_registry` counts
127.0.0.1 as public (and nothing else changes); `hosts` answers DNS for made-up names, the way
/etc/hosts would, so an HTTPS registry can have a name its certificate carries.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Iterator

import pytest

import catalog.oci.transport as transport_module
from catalog.oci.auth import Credentials
from catalog.oci.client import RegistryClient
from catalog.oci.errors import BadResponse, UnsafeTarget
from history.models import PollRun
from history.polling import poll
from tests.history.factories import watch
from tests.support.faultproxy import Authority, FaultProxy, Respond, RewriteHeader

BLOBS = "/blobs/"
LOOPBACK_REGISTRY = ipaddress.ip_address("127.0.0.1")


@pytest.fixture
def hosts(monkeypatch) -> dict[str, object]:
    """Names this test resolves: name -> addresses, or a callable giving them at each lookup."""
    table: dict[str, object] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in table:
            return real(host, port, family, type, proto, flags)
        answer = table[host]
        addresses = answer() if callable(answer) else answer
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port or 0, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def public_registry(monkeypatch) -> None:
    """127.0.0.1, where the test registries and proxies listen, counts as a public address."""
    real = transport_module.address_kind
    monkeypatch.setattr(
        transport_module, "address_kind", lambda a: "public" if a == LOOPBACK_REGISTRY else real(a)
    )


@contextlib.contextmanager
def listener(host: str = "127.0.0.2") -> Iterator[socket.socket]:
    """A listening socket on another loopback address: a host nobody should reach."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def nobody_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()
    except BlockingIOError:
        return True
    return False


def nothing_sent(sock: socket.socket) -> bool:
    """A connection arrived (the kernel completes the handshake) but not one byte of a request."""
    connection, _ = sock.accept()
    with connection:
        connection.settimeout(5)
        return connection.recv(1024) == b""


@pytest.fixture
def token_front(token_registry, token_server) -> Iterator[tuple[FaultProxy, Credentials]]:
    """A proxy in front of the token registry; tests rewrite the realm of its challenges."""
    with FaultProxy(token_registry.url) as front:
        yield front, Credentials("tester", "s3cret-pass")


def with_realm(front: FaultProxy, token_server, realm: str) -> None:
    front.add_rule(RewriteHeader("WWW-Authenticate", token_server.realm, realm))


# --- realms -------------------------------------------------------------------------------------

INTERNAL_REALMS = [
    "http://10.0.0.1/token",
    "http://192.168.1.1:8080/token",
    "http://172.16.0.1/token",
    "http://100.64.0.1/token",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fe80::1]/token",
    "http://[fd00::1]/token",
    "http://0.0.0.0:5000/token",
    "http://224.0.0.1/token",
    "http://240.0.0.1/token",
    "http://[::ffff:169.254.169.254]/token",
    "http://[64:ff9b::a9fe:a9fe]/token",
    "http://[2002:a9fe:a9fe::]/token",
    "http://[::ffff:10.0.0.1]/token",
]


@pytest.mark.parametrize("realm", INTERNAL_REALMS)
def test_a_loopback_registry_cannot_send_credentials_to_another_kind_of_internal_address(
    token_front, token_server, repo_name, realm
):
    front, credentials = token_front
    with_realm(front, token_server, realm)

    with RegistryClient(front.host, credentials=credentials, max_attempts=1) as client:
        started = time.monotonic()
        with pytest.raises(UnsafeTarget) as refused:
            client.head_manifest(repo_name, "1.0")

    assert time.monotonic() - started < 2, "refused before any connection attempt"
    assert "refused the token realm" in str(refused.value)
    assert realm[:40] in str(refused.value), "the message names the realm"
    assert not refused.value.transient
    assert token_server.count() == 0


@pytest.mark.parametrize("realm", ["http://127.0.0.2:{port}/token", "http://[::ffff:127.0.0.2]:{port}/t"])
def test_a_public_registry_cannot_point_its_realm_at_loopback(
    public_registry, token_front, token_server, repo_name, realm
):
    front, credentials = token_front
    with listener() as internal:
        realm = realm.format(port=internal.getsockname()[1])
        with_realm(front, token_server, realm)

        with (
            RegistryClient(front.host, credentials=credentials) as client,
            pytest.raises(UnsafeTarget, match=r"loopback address"),
        ):
            client.head_manifest(repo_name, "1.0")

        assert nobody_connected(internal)


@pytest.mark.parametrize(
    "realm", ["http://10.1.2.3/token", "http://192.168.0.10/token", "http://169.254.169.254/token"]
)
def test_a_public_registry_cannot_point_its_realm_at_private_or_link_local_addresses(
    public_registry, token_front, token_server, repo_name, realm
):
    front, credentials = token_front
    with_realm(front, token_server, realm)

    with (
        RegistryClient(front.host, credentials=credentials) as client,
        pytest.raises(UnsafeTarget, match=r"(private|link-local) address"),
    ):
        client.head_manifest(repo_name, "1.0")


def test_a_realm_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(
    public_registry, hosts, token_front, token_server, repo_name
):
    """DNS answers a public address when tagledger checks and 127.0.0.2 when it connects."""
    answers = iter([["93.184.216.34"]])
    hosts["rebind.test"] = lambda: next(answers, ["127.0.0.2"])
    front, credentials = token_front
    with listener() as internal:
        with_realm(front, token_server, f"http://rebind.test:{internal.getsockname()[1]}/token")

        with (
            RegistryClient(front.host, credentials=credentials) as client,
            pytest.raises(UnsafeTarget, match=r"connected to 127\.0\.0\.2, a loopback address"),
        ):
            client.head_manifest(repo_name, "1.0")

        internal.setblocking(True)
        internal.settimeout(5)
        assert nothing_sent(internal), "the credentials never left"


def test_a_realm_with_a_user_name_is_refused(token_front, token_server, repo_name):
    front, credentials = token_front
    with_realm(front, token_server, token_server.realm.replace("http://", "http://evil:x@"))

    with (
        RegistryClient(front.host, credentials=credentials) as client,
        pytest.raises(UnsafeTarget, match="user name"),
    ):
        client.head_manifest(repo_name, "1.0")
    assert token_server.count() == 0


@pytest.mark.parametrize(
    "realm",
    [
        "ftp://127.0.0.1/token",
        "file:///etc/passwd",
        "/token",
        "http://[::1/token",
        "http://127.0.0.1:99999/token",
        "http://127.0.0.1:port/token",
        "http://a..b/token",
        "http://" + "a" * 300 + "/token",
    ],
)
def test_a_realm_that_is_not_an_http_url_is_a_bad_response(token_front, token_server, repo_name, realm):
    front, credentials = token_front
    with_realm(front, token_server, realm)

    with (
        RegistryClient(front.host, credentials=credentials, max_attempts=1) as client,
        pytest.raises(BadResponse),
    ):
        client.head_manifest(repo_name, "1.0")
    assert token_server.count() == 0


def test_a_loopback_registry_may_use_a_realm_on_another_loopback_address(
    token_front, token_server, repo_name, make_pusher, token_registry
):
    pushed = make_pusher(token_registry).push(repo_name, "1.0", "oci")
    front, credentials = token_front
    with FaultProxy(token_server.url) as tokens:
        with_realm(front, token_server, f"{tokens.url}/token")
        with RegistryClient(front.host, credentials=credentials) as client:
            assert client.head_manifest(repo_name, "1.0").digest == pushed.digest
        assert tokens.count("GET", "^/token$") == 1


# --- credentials go to the realm only -----------------------------------------------------------


def test_credentials_go_to_the_realm_and_never_to_a_storage_host(
    token_registry, token_server, make_pusher, registry, repo_name
):
    # The same seed gives the same blobs in both registries; the open one plays the storage host.
    pushed = make_pusher(token_registry).push(repo_name, "1.0", "oci", labels={"team": "a"})
    make_pusher(registry).push(repo_name, "1.0", "oci", labels={"team": "a"})
    token_server.requests.clear()
    with (
        FaultProxy(token_registry.url) as front,
        FaultProxy(token_server.url) as tokens,
        FaultProxy(registry.url) as storage,
    ):
        location = f"{storage.url}/v2/{repo_name}/blobs/{pushed.config_digest}"
        front.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)
        with_realm(
            front, token_server, f"{tokens.url}/token"
        )  # rules after the first that matches are skipped
        with RegistryClient(front.host, credentials=Credentials("tester", "s3cret-pass")) as client:
            assert client.get_config(repo_name, pushed.config_digest).labels == {"team": "a"}

    sent = {
        "realm": {r.headers.get("authorization", "").split(" ")[0] for r in tokens.records},
        "registry": {r.headers.get("authorization", "").split(" ")[0] for r in front.records},
        "storage": {r.headers.get("authorization", "").split(" ")[0] for r in storage.records},
    }
    assert sent == {"realm": {"Basic"}, "registry": {"", "Bearer"}, "storage": {""}}
    assert token_server.count(authenticated=True) >= 1


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/blob",
        "http://[::ffff:169.254.169.254]/blob",
        "http://0.0.0.0:1/blob",
    ],
)
def test_a_loopback_registry_cannot_redirect_to_another_kind_of_internal_address(
    fault_proxy, pusher, repo_name, location
):
    pushed = pusher.push(repo_name, "1.0", "oci")
    fault_proxy.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)

    with RegistryClient(fault_proxy.host, max_attempts=1) as client:
        started = time.monotonic()
        with pytest.raises(UnsafeTarget, match="refused a redirect to") as refused:
            client.get_config(repo_name, pushed.config_digest)

    assert time.monotonic() - started < 2
    assert location[:30] in str(refused.value)


def test_a_public_registry_cannot_redirect_to_loopback(public_registry, fault_proxy, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "oci")
    with listener() as internal:
        port = internal.getsockname()[1]
        location = f"http://127.0.0.2:{port}/v2/{repo_name}/blobs/{pushed.config_digest}"
        fault_proxy.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)

        with (
            RegistryClient(fault_proxy.host) as client,
            pytest.raises(UnsafeTarget, match="loopback address"),
        ):
            client.get_config(repo_name, pushed.config_digest)

        assert nobody_connected(internal)


def test_a_redirect_that_rebinds_to_loopback_is_refused_at_connect(
    public_registry, hosts, fault_proxy, pusher, repo_name
):
    pushed = pusher.push(repo_name, "1.0", "oci")
    answers = iter([["93.184.216.34"]])
    hosts["storage.test"] = lambda: next(answers, ["127.0.0.2"])
    with listener() as internal:
        location = f"http://storage.test:{internal.getsockname()[1]}/blob"
        fault_proxy.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)

        with (
            RegistryClient(fault_proxy.host, max_attempts=1) as client,
            pytest.raises(UnsafeTarget, match=r"connected to 127\.0\.0\.2"),
        ):
            client.get_config(repo_name, pushed.config_digest)

        internal.setblocking(True)
        assert nothing_sent(internal)


@pytest.mark.parametrize(
    "location",
    ["http://[::1", "http://a..b/x", "http://127.0.0.1:99999/x", "http://ex ample/x", "http://\x00/"],
)
def test_a_redirect_to_something_that_is_not_a_url_is_a_bad_response(
    fault_proxy, pusher, repo_name, location
):
    pushed = pusher.push(repo_name, "1.0", "oci")
    fault_proxy.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)

    with RegistryClient(fault_proxy.host, max_attempts=1) as client, pytest.raises(BadResponse):
        client.get_config(repo_name, pushed.config_digest)


# --- an HTTPS registry --------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path, hosts, monkeypatch) -> Authority:
    """registry.test and tokens.test resolve to 127.0.0.1 and carry a certificate the client trusts."""
    hosts["registry.test"] = ["127.0.0.1"]
    hosts["tokens.test"] = ["127.0.0.1"]
    hosts["storage.test"] = ["127.0.0.1"]
    authority = Authority(["registry.test", "tokens.test", "storage.test"], tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.ca_path))
    return authority


@pytest.fixture
def https_front(tls, token_registry) -> Iterator[FaultProxy]:
    with FaultProxy(token_registry.url, tls=tls.server_context()) as front:
        yield front


def https_client(front: FaultProxy, **options) -> RegistryClient:
    client = RegistryClient(
        f"registry.test:{front.port}", credentials=Credentials("tester", "s3cret-pass"), **options
    )
    assert client.base_url.startswith("https://")
    return client


def test_an_https_registry_with_an_https_realm_works(
    tls, https_front, token_server, token_registry, make_pusher, repo_name
):
    pushed = make_pusher(token_registry).push(repo_name, "1.0", "oci")
    with FaultProxy(token_server.url, tls=tls.server_context()) as tokens:
        with_realm(https_front, token_server, f"https://tokens.test:{tokens.port}/token")
        with https_client(https_front) as client:
            assert client.head_manifest(repo_name, "1.0").digest == pushed.digest
        assert {r.headers["authorization"].split(" ")[0] for r in tokens.records} == {"Basic"}


def test_an_https_registry_cannot_send_credentials_to_a_plain_http_realm(
    https_front, token_server, repo_name
):
    # token_server.realm is plain http://127.0.0.1:port/token, as the token registry announces it.
    with https_client(https_front) as client, pytest.raises(UnsafeTarget, match="plain HTTP") as refused:
        client.head_manifest(repo_name, "1.0")
    assert token_server.realm in str(refused.value)
    assert token_server.count() == 0
    assert https_front.count("GET", r"^/v2/$") == 1, "the registry itself was reached over HTTPS"


def test_an_https_registry_cannot_redirect_to_plain_http(
    tls, token_registry, registry, make_pusher, repo_name
):
    pushed = make_pusher(registry).push(repo_name, "1.0", "oci")
    with FaultProxy(registry.url, tls=tls.server_context()) as front, FaultProxy(registry.url) as storage:
        location = f"http://storage.test:{storage.port}/v2/{repo_name}/blobs/{pushed.config_digest}"
        front.add_rule(Respond(307, {"Location": location}), method="GET", path=BLOBS)
        with (
            RegistryClient(f"registry.test:{front.port}") as client,
            pytest.raises(UnsafeTarget, match="plain HTTP"),
        ):
            client.get_config(repo_name, pushed.config_digest)
        assert storage.records == []


def test_a_token_service_redirecting_elsewhere_is_not_followed(token_front, token_server, repo_name):
    front, credentials = token_front
    with listener() as elsewhere, FaultProxy(token_server.url) as tokens:
        location = f"http://127.0.0.2:{elsewhere.getsockname()[1]}/token"
        tokens.add_rule(Respond(307, {"Location": location}), path="^/token$")
        with_realm(front, token_server, f"{tokens.url}/token")

        with (
            RegistryClient(front.host, credentials=credentials, max_attempts=1) as client,
            pytest.raises(BadResponse, match="token request: HTTP 307"),
        ):
            client.head_manifest(repo_name, "1.0")

        assert nobody_connected(elsewhere), "the credentials went to the realm and no further"


@pytest.mark.django_db
def test_a_refused_realm_fails_the_poll_with_the_realm_in_its_error(
    token_front, token_server, token_registry, make_pusher, repo_name, settings, tmp_path
):
    make_pusher(token_registry).push(repo_name, "1.0", "oci")
    front, _ = token_front
    with_realm(front, token_server, "http://169.254.169.254/latest/meta-data/")
    settings.DOCKER_CONFIG = str(tmp_path)

    run = poll(watch(front, repo_name))

    assert run.status == PollRun.Status.FAILED
    assert "refused the token realm http://169.254.169.254/latest/meta-data/" in run.error
    assert "link-local" in run.error
