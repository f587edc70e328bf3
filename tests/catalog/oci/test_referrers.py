"""RegistryClient.list_referrers: the OCI 1.1 referrers API, where it exists and where it does not.

The real registry (distribution 2.8) has no referrers API and answers 404, which is the answer
that means so. The fault proxy in front of it plays a registry with the API: it serves the spec's
example shape, paged with `Link: rel="next"`, with and without `OCI-Filters-Applied`.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.oci.client import MAX_REFERRERS, MAX_REFERRERS_PAGES, RegistryClient, _referrers_page
from catalog.oci.errors import BadResponse, RateLimited, RepositoryNotFound, Unavailable
from catalog.oci.manifest import digest_of
from tests.support.faultproxy import FaultProxy, Referrers, Respond, registry_error

SUBJECT = digest_of(b"the image")
SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def entry(number: int, artifact_type: str = SBOM, **extra) -> dict:
    """A referrer's descriptor as the distribution spec's example lists one."""
    return {
        "mediaType": OCI_MANIFEST,
        "size": 1234 + number,
        "digest": digest_of(f"referrer {number}".encode()),
        "artifactType": artifact_type,
        "annotations": {"org.opencontainers.image.created": "2022-01-01T14:42:55Z", "number": str(number)},
        **extra,
    }


def client_for(proxy: FaultProxy) -> RegistryClient:
    return RegistryClient(proxy.host, max_attempts=1, backoff=0.01, timeout=10.0)


def referrers_requests(proxy: FaultProxy) -> int:
    return proxy.count("GET", r"/referrers/")


def test_a_registry_without_the_api_answers_none_for_one_request(fault_proxy):
    with client_for(fault_proxy) as client:
        assert client.list_referrers("t/any", SUBJECT) is None
        assert client.stats["referrers"] == 1

    assert referrers_requests(fault_proxy) == 1
    [record] = fault_proxy.find("GET", r"/referrers/")
    assert record.status == 404 and record.headers["accept"] == OCI_INDEX


@pytest.mark.parametrize("status", [400, 404, 405, 406, 501])
def test_each_answer_of_a_missing_route_means_no_api(fault_proxy, status):
    fault_proxy.add_rule(Respond(status, body=b"not here"), path=r"/referrers/")

    with client_for(fault_proxy) as client:
        assert client.list_referrers("t/any", SUBJECT) is None


def test_a_repository_that_does_not_exist_is_no_answer_about_the_api(fault_proxy):
    fault_proxy.add_rule(
        Respond(404, body=registry_error("NAME_UNKNOWN", "no such repository")), path="/referrers/"
    )

    with client_for(fault_proxy) as client, pytest.raises(RepositoryNotFound):
        client.list_referrers("t/gone", SUBJECT)


def test_the_referrers_of_a_subject_are_read_across_pages(fault_proxy):
    listed = [entry(number) for number in range(5)]
    fault_proxy.add_rule(Referrers({SUBJECT: listed}, page_size=2))

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT)
        assert client.stats["referrers"] == 3

    assert [descriptor.digest for descriptor in found.descriptors] == [item["digest"] for item in listed]
    first = found.descriptors[0]
    assert (first.media_type, first.size, first.artifact_type) == (OCI_MANIFEST, 1234, SBOM)
    assert first.annotations == {"org.opencontainers.image.created": "2022-01-01T14:42:55Z", "number": "0"}
    assert (found.filtered, found.truncated) == (False, False)


def test_a_digest_with_no_referrers_is_an_empty_answer(fault_proxy):
    fault_proxy.add_rule(Referrers({}))

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT)

    assert (found.descriptors, found.filtered) == ((), False)


@pytest.mark.parametrize("registry_filters", [True, False])
def test_an_artifact_type_filter_holds_whether_or_not_the_registry_applies_it(fault_proxy, registry_filters):
    fault_proxy.add_rule(
        Referrers({SUBJECT: [entry(0), entry(1, SIGNATURE), entry(2)]}, page_size=2, filters=registry_filters)
    )

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT, artifact_type=SIGNATURE)

    assert [descriptor.artifact_type for descriptor in found.descriptors] == [SIGNATURE]
    assert found.filtered is registry_filters
    [first, *_] = fault_proxy.find("GET", r"/referrers/")
    assert first.query == "artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson"


def test_entries_that_are_no_descriptor_are_left_out_and_the_rest_kept(fault_proxy):
    broken = [
        entry(0),
        "a string",
        {"mediaType": OCI_MANIFEST, "digest": "sha256:short", "size": 1},
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"x"), "size": -1},
        entry(1, artifactType=["not", "a", "type"], annotations={"n": 5, "ok": "yes"}),
        None,
    ]
    fault_proxy.add_rule(Referrers({SUBJECT: broken}))

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT)

    assert [descriptor.digest for descriptor in found.descriptors] == [entry(0)["digest"], entry(1)["digest"]]
    assert (found.descriptors[1].artifact_type, found.descriptors[1].annotations) == ("", {"ok": "yes"})


def hostile(body: bytes, content_type: str = OCI_INDEX) -> Respond:
    return Respond(200, {"Content-Type": content_type}, body)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<html>hello</html>", "text/html", "not valid JSON"),
        (b"[1, 2]", OCI_INDEX, "not a JSON object"),
        (b'{"manifests": "all of them"}', OCI_INDEX, "'manifests' is not a list"),
        (b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}', OCI_INDEX, "not an OCI image index"),
        (b'{"manifests": []}', "application/json", "not an OCI image index"),
        (b'{"manifests": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", OCI_INDEX, "nests deeper"),
        (b'{"manifests": []}\xff', OCI_INDEX, "not UTF-8"),
    ],
)
def test_an_answer_that_is_no_oci_index_fails_with_a_clear_reason(fault_proxy, body, content_type, reason):
    fault_proxy.add_rule(hostile(body, content_type), path="/referrers/")

    with client_for(fault_proxy) as client, pytest.raises(BadResponse, match=reason):
        client.list_referrers("t/app", SUBJECT)


def test_an_answer_past_the_size_cap_fails(fault_proxy):
    huge = json.dumps({"mediaType": OCI_INDEX, "manifests": [], "pad": "x" * (5 * 1024 * 1024)}).encode()
    fault_proxy.add_rule(hostile(huge), path="/referrers/")

    with client_for(fault_proxy) as client, pytest.raises(BadResponse, match="byte cap"):
        client.list_referrers("t/app", SUBJECT)


def test_pages_are_bounded_and_what_was_read_is_kept(fault_proxy):
    fault_proxy.add_rule(
        Referrers({SUBJECT: [entry(number) for number in range(MAX_REFERRERS_PAGES + 5)]}, page_size=1)
    )

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT)

    assert referrers_requests(fault_proxy) == MAX_REFERRERS_PAGES
    assert (len(found.descriptors), found.truncated) == (MAX_REFERRERS_PAGES, True)


def test_entries_are_bounded(fault_proxy):
    fault_proxy.add_rule(Referrers({SUBJECT: [entry(number) for number in range(MAX_REFERRERS + 50)]}))

    with client_for(fault_proxy) as client:
        found = client.list_referrers("t/app", SUBJECT)

    assert (len(found.descriptors), found.truncated) == (MAX_REFERRERS, True)


def link(target: str) -> Respond:
    body = json.dumps({"mediaType": OCI_INDEX, "manifests": [entry(0)]}).encode()
    return Respond(200, {"Content-Type": OCI_INDEX, "Link": f'<{target}>; rel="next"'}, body)


def test_a_next_page_on_another_host_is_refused(fault_proxy):
    fault_proxy.add_rule(link("http://127.0.0.2:9/v2/t/app/referrers/x"), path="/referrers/")

    with client_for(fault_proxy) as client, pytest.raises(BadResponse, match="another host"):
        client.list_referrers("t/app", SUBJECT)
    assert referrers_requests(fault_proxy) == 1


def test_a_next_page_that_links_back_is_refused(fault_proxy):
    fault_proxy.add_rule(link(f"/v2/t/app/referrers/{SUBJECT}"), path="/referrers/")

    with client_for(fault_proxy) as client, pytest.raises(BadResponse, match="links back"):
        client.list_referrers("t/app", SUBJECT)


@pytest.mark.parametrize(("status", "error"), [(429, RateLimited), (503, Unavailable)])
def test_a_busy_registry_is_an_error_not_an_answer_about_the_api(fault_proxy, status, error):
    fault_proxy.add_rule(Respond(status), path="/referrers/")

    with client_for(fault_proxy) as client, pytest.raises(error):
        client.list_referrers("t/app", SUBJECT)


@pytest.mark.parametrize(
    ("repository", "digest", "artifact_type"),
    [("T/Upper", SUBJECT, ""), ("t/app", "sha256:abc", ""), ("t/app", SUBJECT, "not a type\n")],
)
def test_arguments_that_no_url_should_carry_are_refused_before_any_request(
    fault_proxy, repository, digest, artifact_type
):
    with client_for(fault_proxy) as client, pytest.raises(ValueError):
        client.list_referrers(repository, digest, artifact_type)
    assert fault_proxy.count() == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": JSON | st.just(OCI_MANIFEST), "digest": JSON | st.just(SUBJECT),
        "size": JSON | st.integers(min_value=0), "artifactType": JSON | st.just(SBOM),
        "annotations": JSON | st.dictionaries(st.text(max_size=8), st.text(max_size=8) | JSON, max_size=3),
    },
)  # fmt: skip


INDEX = st.fixed_dictionaries(
    {},
    optional={"mediaType": JSON | st.just(OCI_INDEX), "manifests": JSON | st.lists(ENTRY | JSON, max_size=5)},
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    document=JSON | INDEX,
    content_type=st.sampled_from([OCI_INDEX, "application/json", ""]),
)  # fmt: skip
def test_any_json_answer_is_a_list_of_descriptors_or_one_clear_refusal(document, content_type):
    body = json.dumps(document).encode()
    try:
        found = _referrers_page(body, content_type, "referrers of t/app")
    except BadResponse as error:
        assert str(error).startswith("referrers of t/app") or "JSON" in str(error) or "UTF-8" in str(error)
        return
    for descriptor in found:
        assert descriptor.digest.startswith("sha256:") and descriptor.size >= 0
        assert isinstance(descriptor.artifact_type, str) and isinstance(descriptor.media_type, str)
        assert all(isinstance(value, str) for value in descriptor.annotations.values())
