"""Proof that the registry test utilities in tests/support/ work against a real registry."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

import pytest
import requests

from tests.support.faultproxy import (
    AddHeaders,
    Delay,
    DropHeader,
    FaultProxy,
    Paginate,
    Reset,
    Respond,
    SetHeader,
    TamperBody,
    Truncate,
    registry_error,
)
from tests.support.oracle import skopeo_config, skopeo_digest, skopeo_inspect
from tests.support.pusher import (
    DEFAULT_PLATFORMS,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    SHAPES,
    Pusher,
    PushResult,
    sha256_digest,
)
from tests.support.registry import RunningRegistry, free_port
from tests.support.tokenserver import SigningIdentity, TokenServer

T = 10  # seconds; every request in here is loopback-fast


def head(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    """HEAD a manifest the way a modern client does: with every manifest type accepted."""
    return requests.head(url, headers={"Accept": MANIFEST_ACCEPT} | (headers or {}), timeout=T)


# -- pusher + oracle --------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_pushed_digest_matches_skopeo_and_head(
    registry: RunningRegistry, pusher: Pusher, repo_name: str, shape: str
) -> None:
    result = pusher.push(repo_name, "v1", shape, annotations={"org.example.shape": shape})

    assert result.digest == sha256_digest(result.manifest)
    assert skopeo_digest(registry.host, repo_name, "v1") == result.digest
    resp = head(f"{registry.url}/v2/{repo_name}/manifests/v1")
    assert resp.status_code == 200
    assert resp.headers["Docker-Content-Digest"] == result.digest
    assert resp.headers["Content-Type"] == result.media_type
    assert json.loads(result.manifest)["mediaType"] == result.media_type
    if result.is_index:
        assert len(result.child_digests) == len(result.config_digests) == 2
        assert json.loads(result.manifest)["manifests"][1]["platform"] == DEFAULT_PLATFORMS[1]
        for child in result.child_digests:
            assert skopeo_digest(registry.host, repo_name, child) == child


def test_config_carries_labels_and_a_new_seed_is_a_rebuild(
    registry: RunningRegistry, pusher: Pusher, repo_name: str
) -> None:
    labels = {"org.opencontainers.image.version": "1.0"}
    first = pusher.push_image(repo_name, "v1", labels=labels, env=["A=1"])
    config = skopeo_config(registry.host, repo_name, "v1")
    assert config["config"]["Labels"] == labels
    assert config["config"]["Env"] == ["A=1"]
    # Same inputs, same bytes: only a new seed (a "rebuild") moves the digest.
    assert pusher.push_image(repo_name, "v1", labels=labels, env=["A=1"]).digest == first.digest
    rebuilt = pusher.push_image(repo_name, "v1", seed=1)
    assert rebuilt.digest != first.digest
    assert skopeo_digest(registry.host, repo_name, "v1") == rebuilt.digest


def test_index_config_per_platform(registry: RunningRegistry, pusher: Pusher, repo_name: str) -> None:
    result = pusher.push(repo_name, "multi", "oci-index")
    arm = skopeo_config(registry.host, repo_name, "multi", arch="arm64")
    assert arm["architecture"] == "arm64"
    assert arm["variant"] == "v8"
    raw = skopeo_inspect(
        registry.host, repo_name, "multi", "--config", global_args=("--override-arch", "arm64")
    )
    assert sha256_digest(raw) == result.config_digests[1]


def test_tag_then_delete(registry: RunningRegistry, pusher: Pusher, repo_name: str) -> None:
    result = pusher.push(repo_name, "a", "docker")
    assert pusher.tag(repo_name, "a", "b") == result.digest
    assert (
        head(f"{registry.url}/v2/{repo_name}/manifests/b").headers["Docker-Content-Digest"] == result.digest
    )

    assert pusher.delete(repo_name, "a") == result.digest
    # Deleting the manifest drops every tag pointing at it.
    assert head(f"{registry.url}/v2/{repo_name}/manifests/a").status_code == 404
    assert head(f"{registry.url}/v2/{repo_name}/manifests/b").status_code == 404


def test_raw_manifests_with_odd_media_types(
    registry: RunningRegistry, pusher: Pusher, repo_name: str
) -> None:
    # An artifact-style OCI manifest (Helm-like config/layer types) is accepted as is.
    helm = pusher.push_image(
        repo_name,
        "chart",
        config_media_type="application/vnd.cncf.helm.config.v1+json",
        layer_media_type="application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    )
    assert skopeo_digest(registry.host, repo_name, "chart") == helm.digest
    # A Content-Type distribution 2.8 does not know is rejected, not stored.
    resp = pusher.put_manifest(repo_name, "weird", helm.manifest, "application/x-weird", check=False)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["code"] == "MANIFEST_INVALID"


# -- auth modes ----------------------------------------------------------------------------
def test_basic_registry_needs_credentials(
    basic_registry: RunningRegistry, make_pusher: Callable[..., Pusher], repo_name: str
) -> None:
    url = f"{basic_registry.url}/v2/"
    unauth = requests.get(url, timeout=T)
    assert unauth.status_code == 401
    assert unauth.headers["WWW-Authenticate"].startswith("Basic ")
    assert requests.get(url, auth=("tester", "wrong"), timeout=T).status_code == 401
    creds = (basic_registry.username or "", basic_registry.password or "")
    assert requests.get(url, auth=creds, timeout=T).status_code == 200

    result = make_pusher(basic_registry).push(repo_name, "v1", "oci-index")
    assert skopeo_digest(basic_registry.host, repo_name, "v1", creds=creds) == result.digest


def _token(server: TokenServer, scope: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(
        server.realm, params={"service": server.service, "scope": scope}, auth=auth, timeout=T
    )


def test_token_registry_anonymous_pull_and_authenticated_push(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    make_pusher: Callable[..., Pusher],
    repo_name: str,
) -> None:
    result = make_pusher(token_registry).push(repo_name, "v1", "oci")
    assert token_server.count(scope=f"repository:{repo_name}:pull,push,delete", authenticated=True) == 1
    manifest_url = f"{token_registry.url}/v2/{repo_name}/manifests/v1"
    assert head(manifest_url).status_code == 401
    challenge = head(manifest_url).headers["WWW-Authenticate"]
    assert f'realm="{token_server.realm}"' in challenge
    assert f'scope="repository:{repo_name}:pull"' in challenge

    anon = _token(token_server, f"repository:{repo_name}:pull,push")
    assert anon.status_code == 200
    assert set(anon.json()) == {"token", "expires_in", "issued_at"}
    bearer = {"Authorization": f"Bearer {anon.json()['token']}"}
    resp = head(manifest_url, headers=bearer)
    assert resp.headers["Docker-Content-Digest"] == result.digest
    upload_url = f"{token_registry.url}/v2/{repo_name}/blobs/uploads/"
    assert requests.post(upload_url, headers=bearer, timeout=T).status_code == 401  # pull only

    creds = (token_registry.username or "", token_registry.password or "")
    assert _token(token_server, f"repository:{repo_name}:push", ("tester", "nope")).status_code == 401
    pushy = _token(token_server, f"repository:{repo_name}:pull,push", creds).json()["token"]
    assert (
        requests.post(upload_url, headers={"Authorization": f"Bearer {pushy}"}, timeout=T).status_code == 202
    )
    assert token_server.count(authenticated=False) == 2  # anonymous 200 + wrong password 401


@pytest.mark.parametrize(
    "forgery", ["foreign-key", "expired", "wrong-audience", "wrong-issuer", "other-repository"]
)
def test_token_registry_rejects_bad_tokens(
    token_registry: RunningRegistry, token_server: TokenServer, forgery: str
) -> None:
    access = [{"type": "repository", "name": "t/any", "actions": ["pull"]}]
    mint: dict[str, Callable[[], str]] = {
        "foreign-key": lambda: token_server.mint(access, identity=SigningIdentity.generate("impostor")),
        # distribution allows 60 s of clock skew, so expire well beyond that.
        "expired": lambda: token_server.mint(access, issued_at=time.time() - 3600),
        "wrong-audience": lambda: token_server.mint(access, audience="someone-else"),
        "wrong-issuer": lambda: token_server.mint(access, issuer="someone-else"),
        "other-repository": lambda: token_server.mint([{**access[0], "name": "t/other"}]),
    }
    url = f"{token_registry.url}/v2/t/any/tags/list"
    good = token_server.mint(access)
    # 404 (unknown repository) proves the good token got past authentication.
    assert requests.get(url, headers={"Authorization": f"Bearer {good}"}, timeout=T).status_code == 404
    bad = mint[forgery]()
    assert requests.get(url, headers={"Authorization": f"Bearer {bad}"}, timeout=T).status_code == 401


def test_token_server_response_variants_and_refresh_grant(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    make_pusher: Callable[..., Pusher],
    repo_name: str,
) -> None:
    token_server.token_field = "access_token"
    token_server.expires_in = None
    token_server.include_issued_at = False
    body = _token(token_server, f"repository:{repo_name}:pull").json()
    assert set(body) == {"access_token"}
    make_pusher(token_registry).push(repo_name, "v1", "docker")  # the pusher copes too

    token_server.refresh_tokens["refresh-me"] = "tester"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-me",
        "service": token_server.service,
        "scope": f"repository:{repo_name}:pull",
        "client_id": "tagledger",
    }
    resp = requests.post(token_server.realm, data=form, timeout=T)
    assert resp.status_code == 200
    bearer = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    assert requests.get(f"{token_registry.url}/v2/{repo_name}/tags/list", headers=bearer, timeout=T).json()[
        "tags"
    ] == ["v1"]
    form["refresh_token"] = "stolen"
    assert requests.post(token_server.realm, data=form, timeout=T).status_code == 401


# -- fault proxy -----------------------------------------------------------------------------
@pytest.fixture
def pushed(pusher: Pusher, repo_name: str) -> PushResult:
    return pusher.push(repo_name, "v1", "oci-index")


def manifest_url(proxy: FaultProxy, result: PushResult, ref: str = "v1") -> str:
    return f"{proxy.url}/v2/{result.repository}/manifests/{ref}"


def test_proxy_keeps_connections_alive_and_records(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    with requests.Session() as session:
        heads = [
            session.head(manifest_url(fault_proxy, pushed), headers={"Accept": MANIFEST_ACCEPT}, timeout=T)
            for _ in range(3)
        ]
    for resp in heads:
        assert resp.status_code == 200
        assert resp.headers["Docker-Content-Digest"] == pushed.digest
        assert resp.headers["Content-Length"] == str(len(pushed.manifest))
        assert resp.content == b""
    records = fault_proxy.find("HEAD", r"/manifests/v1$")
    assert len(records) == 3
    assert {r.conn_id for r in records} == {records[0].conn_id}  # one reused TCP connection
    assert records[0].headers["accept"] == MANIFEST_ACCEPT
    assert fault_proxy.count(status=200) == 3
    fault_proxy.reset()
    assert fault_proxy.count() == 0


def test_pushing_through_the_proxy_rewrites_location(
    registry: RunningRegistry, fault_proxy: FaultProxy, make_pusher: Callable[..., Pusher], repo_name: str
) -> None:
    result = make_pusher(registry, base_url=fault_proxy.url).push(repo_name, "v1", "docker")
    # The registry answers with absolute Locations; they must lead back to the proxy.
    starts = fault_proxy.find("POST", r"/blobs/uploads/$")
    assert starts
    assert all(r.response_headers["location"].startswith(fault_proxy.url + "/v2/") for r in starts)
    assert fault_proxy.count("PUT", r"/blobs/uploads/") == len(starts)
    assert fault_proxy.count("PUT", r"/manifests/v1$", status=201) == 1
    assert skopeo_digest(registry.host, repo_name, "v1") == result.digest


def test_rules_fire_in_order_and_run_out(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    once = fault_proxy.add_rule(Respond(503), method="HEAD", path=r"/manifests/", times=1)
    fault_proxy.add_rule(Respond(500), method="HEAD", path=r"/manifests/", times=2)
    statuses = [head(manifest_url(fault_proxy, pushed)).status_code for _ in range(4)]
    assert statuses == [503, 500, 500, 200]
    assert once.hits == 1
    assert [r.rule for r in fault_proxy.records] == [0, 1, 1, None]


def test_respond_429_with_retry_after(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": "1"}, registry_error("TOOMANYREQUESTS", "slow down")), times=1
    )
    resp = head(manifest_url(fault_proxy, pushed))
    assert (resp.status_code, resp.headers["Retry-After"]) == (429, "1")
    resp = requests.get(manifest_url(fault_proxy, pushed), timeout=T)
    assert resp.status_code == 404  # real upstream answer: no Accept => OCI index hidden


def test_respond_404_body(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(Respond(404, body=registry_error("MANIFEST_UNKNOWN", "manifest unknown")))
    resp = requests.get(manifest_url(fault_proxy, pushed), headers={"Accept": MANIFEST_ACCEPT}, timeout=T)
    assert resp.status_code == 404
    assert resp.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_reset_closes_without_response(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(Reset(), times=1)
    with pytest.raises(requests.ConnectionError):
        head(manifest_url(fault_proxy, pushed))
    assert fault_proxy.records[0].status is None
    assert head(manifest_url(fault_proxy, pushed)).status_code == 200


def test_delay(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(Delay(0.3), times=1)
    started = time.monotonic()
    assert head(manifest_url(fault_proxy, pushed)).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_tamper_body_keeps_headers(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(TamperBody(), method="GET")
    resp = requests.get(manifest_url(fault_proxy, pushed), headers={"Accept": MANIFEST_ACCEPT}, timeout=T)
    assert resp.headers["Docker-Content-Digest"] == pushed.digest
    assert len(resp.content) == len(pushed.manifest)
    assert sha256_digest(resp.content) != pushed.digest
    assert json.loads(resp.content)["mediaType"] == OCI_INDEX  # still valid JSON


def test_header_actions(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    url = manifest_url(fault_proxy, pushed)
    fault_proxy.add_rule(DropHeader("Docker-Content-Digest"), times=1)
    fault_proxy.add_rule(SetHeader("Docker-Content-Digest", "sha256:" + "0" * 64), times=1)
    fault_proxy.add_rule(SetHeader("Content-Type", "text/plain"), times=1)
    limits = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}
    fault_proxy.add_rule(AddHeaders(limits), times=1)
    assert "Docker-Content-Digest" not in head(url).headers
    assert head(url).headers["Docker-Content-Digest"] == "sha256:" + "0" * 64
    assert head(url).headers["Content-Type"] == "text/plain"
    resp = head(url)
    assert resp.headers["ratelimit-remaining"] == "76;w=21600"
    assert resp.headers["Docker-Content-Digest"] == pushed.digest


def test_truncate(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    url = manifest_url(fault_proxy, pushed)
    fault_proxy.add_rule(Truncate(keep=20), times=1)
    fault_proxy.add_rule(Truncate(keep=20, fix_length=True), times=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=T)
    short = requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=T)
    assert short.content == pushed.manifest[:20]
    assert short.headers["Docker-Content-Digest"] == pushed.digest


def test_max_concurrent(fault_proxy: FaultProxy, pushed: PushResult) -> None:
    fault_proxy.add_rule(Delay(0.3))
    threads = [threading.Thread(target=head, args=(manifest_url(fault_proxy, pushed),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fault_proxy.max_concurrent == 4


# -- tags pagination ------------------------------------------------------------------------
TAGS = ["v1", "v2", "v3", "v4", "v5"]


@pytest.fixture
def many_tags(pusher: Pusher, repo_name: str) -> str:
    image = pusher.push(repo_name, TAGS[0], "docker")
    for tag in TAGS[1:]:
        pusher.put_manifest(repo_name, tag, image.manifest, image.media_type)
    return repo_name


def test_distribution_28_ignores_n_and_last(registry: RunningRegistry, many_tags: str) -> None:
    # Finding: tags/list in distribution 2.8 returns every tag, unsorted, with no Link.
    resp = requests.get(f"{registry.url}/v2/{many_tags}/tags/list?n=2&last=v2", timeout=T)
    assert sorted(resp.json()["tags"]) == TAGS
    assert "Link" not in resp.headers


def follow(proxy: FaultProxy, repo: str, max_pages: int = 10) -> tuple[list[str], list[str | None]]:
    url: str | None = f"{proxy.url}/v2/{repo}/tags/list"
    tags: list[str] = []
    links: list[str | None] = []
    while url and len(links) < max_pages:
        resp = requests.get(url, timeout=T)
        resp.raise_for_status()
        tags += resp.json()["tags"]
        link = resp.headers.get("Link")
        links.append(link)
        match = re.match(r"<([^>]+)>", link or "")
        url = requests.compat.urljoin(url, match[1]) if match else None
    return tags, links


@pytest.mark.parametrize("style", ["relative", "absolute"])
def test_paginate(fault_proxy: FaultProxy, many_tags: str, style: str) -> None:
    fault_proxy.add_rule(Paginate(2, link=style), path=r"/tags/list$")
    tags, links = follow(fault_proxy, many_tags)
    assert tags == TAGS
    base = fault_proxy.url if style == "absolute" else ""
    assert links == [
        f'<{base}/v2/{many_tags}/tags/list?n=2&last=v2>; rel="next"',
        f'<{base}/v2/{many_tags}/tags/list?n=2&last=v4>; rel="next"',
        None,
    ]


def test_paginate_foreign_and_looping_links(fault_proxy: FaultProxy, many_tags: str) -> None:
    rule = fault_proxy.add_rule(Paginate(2, link="foreign"), path=r"/tags/list$", times=1)
    resp = requests.get(f"{fault_proxy.url}/v2/{many_tags}/tags/list", timeout=T)
    assert resp.headers["Link"].startswith("<http://127.0.0.2:9/v2/")
    assert rule.hits == 1

    fault_proxy.add_rule(Paginate(2, link="loop"), path=r"/tags/list$")
    tags, links = follow(fault_proxy, many_tags, max_pages=4)
    assert tags == [*TAGS, "v1", "v2"]  # third page led back to the first
    assert links[2] == f'</v2/{many_tags}/tags/list?n=2>; rel="next"'


def test_paginate_failing_page(fault_proxy: FaultProxy, many_tags: str) -> None:
    fault_proxy.add_rule(Paginate(2, fail_page=2), path=r"/tags/list$")
    with pytest.raises(requests.HTTPError) as err:
        follow(fault_proxy, many_tags)
    assert err.value.response.status_code == 500
    assert fault_proxy.count("GET", r"/tags/list$") == 2


def test_dead_upstream_is_502() -> None:
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        resp = requests.get(f"{proxy.url}/v2/", timeout=T)
    assert resp.status_code == 502
    assert resp.json()["errors"][0]["code"] == "UNKNOWN"
