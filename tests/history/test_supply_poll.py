"""The poll reads each new build's supply chain from the four places registries keep it: BuildKit's
attestation manifests, cosign's `sha256-<hex>.sig|.att|.sbom` tags, the referrers tag schema
`sha256-<hex>`, and the OCI 1.1 referrers API.

Images, signatures and SBOMs are pushed to the real registry (distribution 2.8, which has no
referrers API) with real certificates and signatures made by tests/support/sigstore.py, and polled
through the fault proxy, which counts every request and plays a registry with the referrers API
when a test asks it to.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository
from catalog.oci.manifest import Descriptor
from history import attachments, slots
from history.models import Attachment, Build, PollRun, ReferrersCheck, TagEvent
from history.polling import poll
from tests.history.factories import polled, watch
from tests.support.faultproxy import FaultProxy, Referrers, Respond
from tests.support.pusher import SLSA_V1, SPDX, Blob, Pusher, PushResult
from tests.support.sigstore import (
    BUNDLE_V03,
    DSSE_ENVELOPE,
    SIMPLE_SIGNING,
    cosign_signature_layer,
    in_toto_statement,
    make_signer,
    signed_envelope,
    sigstore_bundle,
    simple_signing_payload,
)

pytestmark = pytest.mark.django_db

SBOMS = Path(__file__).parent / "sboms"
TRIVY_SPDX = (SBOMS / "trivy-alpine-3.15.spdx.json").read_bytes()  # 11 packages
TRIVY_CYCLONEDX = (SBOMS / "trivy-alpine-3.15.cdx-1.5.json").read_bytes()  # 15 packages
PROVENANCE = json.loads((SBOMS / "buildkit-provenance-v1.intoto.json").read_bytes())["predicate"]
SPDX_JSON, SPDX_TEXT_JSON, CYCLONEDX_JSON = (
    "application/spdx+json",
    "text/spdx+json",
    "application/vnd.cyclonedx+json",
)
IDENTITY = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"

REFERRERS, BLOBS, MANIFESTS = r"/referrers/", r"/blobs/", r"/manifests/"


@dataclass(frozen=True)
class Lying(Blob):
    """A blob whose descriptor claims another size."""

    size: int = 0

    def descriptor(self, **extra: object) -> dict[str, object]:
        return super().descriptor(**extra) | {"size": self.size}


@pytest.fixture(scope="module")
def signer():
    return make_signer(IDENTITY, ISSUER)


def rows(build: Build, **where) -> list[Attachment]:
    return list(build.attachments.filter(**where).select_related("platform", "packages").order_by("pk"))


def build_of(repository: Repository, pushed: PushResult) -> Build:
    return Build.objects.get(repository=repository, digest=pushed.digest)


def sign_layer(signer, pushed: PushResult) -> tuple[Blob, dict]:
    """A cosign `.sig` layer signing `pushed`: the simple-signing payload and its annotations."""
    payload = simple_signing_payload(f"registry.example/{pushed.repository}", pushed.digest)
    return Blob(payload, SIMPLE_SIGNING), cosign_signature_layer(signer, payload)


def quick_client(repository: Repository):
    from catalog.oci.client import RegistryClient

    return RegistryClient(repository.registry.host, max_attempts=1, backoff=0.01, timeout=10.0)


# --- 1. BuildKit attestation manifests ------------------------------------------------------------


@pytest.fixture
def buildx(pusher: Pusher, fault_proxy: FaultProxy, repo_name: str):
    pushed = pusher.push_buildx_index(
        repo_name, "1.0", seed="supply", predicates={SPDX: json.loads(TRIVY_SPDX), SLSA_V1: PROVENANCE}
    )
    return pushed, watch(fault_proxy, repo_name)


def test_buildx_statements_become_an_sbom_and_a_provenance_of_each_platform(buildx, fault_proxy):
    pushed, repository = buildx

    run = polled(repository)

    build = build_of(repository, pushed)
    found = sorted(rows(build), key=lambda row: (str(row.platform), row.kind))
    assert [(str(row.platform), row.kind, row.source) for row in found] == [
        ("linux/amd64", "provenance", "buildkit"), ("linux/amd64", "sbom", "buildkit"),
        ("linux/arm64/v8", "provenance", "buildkit"), ("linux/arm64/v8", "sbom", "buildkit"),
    ]  # fmt: skip
    provenance, sbom = found[:2]
    assert (sbom.subject, sbom.manifest_digest) == (pushed.child_digests[0], pushed.attestation_digests[0])
    assert (sbom.predicate_type, sbom.error, sbom.package_count) == (SPDX, "", 11)
    assert sbom.details == {"format": "SPDX 2.3", "tool": "trivy-0.58.0", "package_count": 11}
    assert sbom.packages.size == 11 and found[3].packages == sbom.packages  # one set for both platforms
    assert provenance.predicate_type == SLSA_V1 and provenance.details["slsa"] == "v1"
    assert provenance.details["builder"] and provenance.packages is None
    # the first poll's cost: 4 statement blobs beside the 2 image configs, and one referrers
    # request that finds the registry has no API (a 404), remembered for a day
    assert (run.gets, run.blob_gets) == (5, 6)
    assert fault_proxy.count("GET", REFERRERS) == 1
    registry = Registry.objects.get(host=fault_proxy.host)
    assert registry.referrers_api is False and registry.referrers_api_checked_at is not None


def test_an_unchanged_repoll_costs_the_tag_list_and_one_head_a_tag(buildx, pusher, fault_proxy, signer):
    pushed, repository = buildx
    pusher.push_cosign(repository.name, pushed.digest, "sig", [sign_layer(signer, pushed)])
    sbom = pusher.push_artifact(
        repository.name, None, [(Blob(TRIVY_SPDX, SPDX_JSON), {})], artifact_type=SPDX_JSON
    )
    pusher.push_referrers_tag(repository.name, pushed.digest, [sbom.referrer()])
    polled(repository)
    stored = Attachment.objects.filter(build__repository=repository).count()
    fault_proxy.reset()

    run = polled(repository)

    kinds = {(record.method, re.sub(r"/v2/.+?/(tags|manifests|blobs|referrers)/.*", r"\1", record.path))
             for record in fault_proxy.records}  # fmt: skip
    assert kinds == {("GET", "tags"), ("HEAD", "manifests")}
    assert fault_proxy.count("HEAD", MANIFESTS) == run.tags_seen == 3
    assert (run.requests, run.gets, run.blob_gets) == (1 + 3, 0, 0)
    assert Attachment.objects.filter(build__repository=repository).count() == stored


# --- 2. cosign tags ------------------------------------------------------------------------------------


@pytest.fixture
def image(pusher: Pusher, fault_proxy: FaultProxy, repo_name: str):
    pushed = pusher.push_image(repo_name, "1.0", seed="image")
    return pushed, watch(fault_proxy, repo_name)


def test_a_cosign_signature_tag_reads_as_a_verified_signature_of_its_image(image, pusher, signer):
    pushed, repository = image
    signature = pusher.push_cosign(repository.name, pushed.digest, "sig", [sign_layer(signer, pushed)])

    polled(repository)

    build = build_of(repository, pushed)
    [row] = rows(build)
    assert (row.kind, row.source, row.subject, row.error) == ("signature", "cosign-tag", pushed.digest, "")
    assert (row.manifest_digest, row.blob_digest, row.media_type) == (
        signature.digest, signature.layer_digests[0], SIMPLE_SIGNING,
    )  # fmt: skip
    assert row.platform == build.platforms.get()  # a single-platform image: its one platform
    details = row.details
    assert (details["identity"], details["issuer"]) == (IDENTITY, ISSUER)
    assert details["verified"] is details["signature_valid"] is details["names_subject"] is True
    assert details["rekor_bundle"] is True and details["key"] == "ECDSA P-256"
    assert "not verified" in details["detail"] or "not checked" in details["detail"]


def test_cosign_attestation_and_sbom_tags_read_as_their_statements(image, pusher, signer):
    pushed, repository = image
    statement = in_toto_statement(pushed.digest, SLSA_V1, PROVENANCE)
    envelope, annotations = signed_envelope(signer, statement)
    attestation = pusher.push_cosign(
        repository.name, pushed.digest, "att", [(Blob(envelope, DSSE_ENVELOPE), annotations)]
    )
    sbom = pusher.push_cosign(
        repository.name, pushed.digest, "sbom", [(Blob(TRIVY_SPDX, SPDX_TEXT_JSON), {})]
    )

    polled(repository)

    found = {row.manifest_digest: row for row in rows(build_of(repository, pushed))}
    provenance, packages = found[attestation.digest], found[sbom.digest]
    assert (provenance.kind, provenance.source, provenance.predicate_type, provenance.error) == (
        "provenance", "cosign-tag", SLSA_V1, "",
    )  # fmt: skip
    signed_by = provenance.details["signed_by"]  # who signed the attestation, beside what it says
    assert (signed_by["identity"], signed_by["verified"], signed_by["names_subject"]) == (
        IDENTITY,
        True,
        True,
    )
    assert (packages.kind, packages.media_type, packages.package_count) == ("sbom", SPDX_TEXT_JSON, 11)
    assert packages.details["format"] == "SPDX 2.3"


def test_a_signature_added_to_the_cosign_tag_is_read_alone(image, pusher, fault_proxy, signer):
    """cosign adds a signature by pushing its `.sig` tag again with one layer more."""
    pushed, repository = image
    first = sign_layer(signer, pushed)
    pusher.push_cosign(repository.name, pushed.digest, "sig", [first])
    polled(repository)
    second = sign_layer(make_signer("release@example.com", "https://accounts.google.com", email=True), pushed)
    again = pusher.push_cosign(repository.name, pushed.digest, "sig", [first, second])
    fault_proxy.reset()

    run = polled(repository)

    # both layers hold the same payload (the signatures are in their annotations): one blob GET,
    # for the new layer, beside the new manifest's config (which the poll reads as it reads any)
    assert first[0].digest == second[0].digest
    assert fault_proxy.count("GET", f"{BLOBS}{second[0].digest}$") == 1
    assert run.blob_gets == 1 + 1
    signatures = rows(build_of(repository, pushed), kind="signature")
    assert [(row.details["identity"], row.position, row.details["verified"]) for row in signatures] == [
        (IDENTITY, 0, True), ("release@example.com", 1, True),
    ]  # fmt: skip
    assert signatures[1].manifest_digest == again.digest != signatures[0].manifest_digest


def test_a_cosign_tag_naming_a_platform_image_attaches_to_that_platform(
    pusher, fault_proxy, repo_name, signer
):
    pushed = pusher.push_index(repo_name, "1.0", seed="index")
    arm64 = PushResult(repo_name, pushed.child_digests[1], pushed.child_digests[1], b"", "")
    pusher.push_cosign(repo_name, arm64.digest, "sbom", [(Blob(TRIVY_CYCLONEDX, CYCLONEDX_JSON), {})])
    repository = watch(fault_proxy, repo_name)

    polled(repository)

    [row] = rows(build_of(repository, pushed))
    assert (str(row.platform), row.subject, row.kind, row.package_count) == (
        "linux/arm64/v8",
        arm64.digest,
        "sbom",
        15,
    )


def test_a_cosign_tag_whose_subject_is_not_recorded_stores_nothing(image, pusher, signer):
    _, repository = image
    stranger = PushResult(repository.name, "x", "sha256:" + "5" * 64, b"", "")
    pusher.push_cosign(repository.name, stranger.digest, "sig", [sign_layer(signer, stranger)])

    polled(repository)

    assert not Attachment.objects.filter(build__repository=repository).exists()


# --- 3. the referrers tag schema ---------------------------------------------------------------------


def test_a_tag_schema_index_lists_a_signature_bundle_and_an_sbom(image, pusher, fault_proxy, signer):
    pushed, repository = image
    bundle = pusher.push_artifact(
        repository.name, None, [(Blob(sigstore_bundle(signer, pushed.digest), BUNDLE_V03), {})],
        artifact_type=BUNDLE_V03, subject=pushed,
    )  # fmt: skip
    sbom = pusher.push_artifact(
        repository.name, None, [(Blob(TRIVY_CYCLONEDX, CYCLONEDX_JSON), {})], artifact_type=CYCLONEDX_JSON,
        subject=pushed,
    )  # fmt: skip
    pusher.push_referrers_tag(repository.name, pushed.digest, [bundle.referrer(), sbom.referrer(kind="sbom")])

    run = polled(repository)

    found = {row.manifest_digest: row for row in rows(build_of(repository, pushed))}
    signature, packages = found[bundle.digest], found[sbom.digest]
    assert (signature.kind, signature.source, signature.media_type) == ("signature", "tag-schema", BUNDLE_V03)
    assert signature.details["verified"] is True and signature.details["identity"] == IDENTITY
    assert (packages.kind, packages.source, packages.package_count) == ("sbom", "tag-schema", 15)
    # the poll read both referrer manifests as entries of the index; only their layers are new
    assert fault_proxy.count("GET", f"{MANIFESTS}{bundle.digest}$") == 1
    assert run.blob_gets == 1 + 2  # the image's config, and one layer each


def test_a_bundle_of_an_attestation_reads_as_its_statement(image, pusher, signer):
    """cosign v3 attaches attestations as Sigstore bundles too: a DSSE envelope over a statement
    whose predicate is not cosign's signature predicate is read for what the statement says."""
    pushed, repository = image
    envelope, _ = signed_envelope(signer, in_toto_statement(pushed.digest, SLSA_V1, PROVENANCE))
    certificate = base64.b64encode(signer.certificate.public_bytes(serialization.Encoding.DER)).decode()
    bundle = json.dumps({
        "mediaType": BUNDLE_V03, "verificationMaterial": {"certificate": {"rawBytes": certificate}},
        "dsseEnvelope": json.loads(envelope),
    }).encode()  # fmt: skip
    attestation = pusher.push_artifact(
        repository.name, None, [(Blob(bundle, BUNDLE_V03), {})], artifact_type=BUNDLE_V03
    )
    pusher.push_referrers_tag(repository.name, pushed.digest, [attestation.referrer()])

    polled(repository)

    [row] = rows(build_of(repository, pushed))
    assert (row.kind, row.source, row.predicate_type, row.error) == ("provenance", "tag-schema", SLSA_V1, "")
    assert (row.details["signed_by"]["identity"], row.details["signed_by"]["verified"]) == (IDENTITY, True)


def test_a_referrer_added_to_the_tag_schema_index_is_read_alone(image, pusher, fault_proxy, signer):
    pushed, repository = image
    sbom = pusher.push_artifact(
        repository.name, None, [(Blob(TRIVY_SPDX, SPDX_JSON), {})], artifact_type=SPDX_JSON
    )
    pusher.push_referrers_tag(repository.name, pushed.digest, [sbom.referrer()])
    polled(repository)
    bundle = pusher.push_artifact(
        repository.name, None, [(Blob(sigstore_bundle(signer, pushed.digest), BUNDLE_V03), {})],
        artifact_type=BUNDLE_V03,
    )  # fmt: skip
    pusher.push_referrers_tag(repository.name, pushed.digest, [sbom.referrer(), bundle.referrer()])
    fault_proxy.reset()

    polled(repository)

    assert fault_proxy.count("GET", f"{BLOBS}{sbom.layer_digests[0]}$") == 0
    assert fault_proxy.count("GET", f"{BLOBS}{bundle.layer_digests[0]}$") == 1
    assert sorted(row.kind for row in rows(build_of(repository, pushed))) == ["sbom", "signature"]


# --- 4. the referrers API ---------------------------------------------------------------------------------


@pytest.fixture
def with_api(fault_proxy: FaultProxy) -> Referrers:
    """The proxy answers the referrers API, two entries a page."""
    api = Referrers(page_size=2)
    fault_proxy.add_rule(api)
    return api


def test_the_referrers_api_is_asked_about_the_build_and_each_platform(
    pusher, fault_proxy, repo_name, with_api, signer
):
    pushed = pusher.push_index(repo_name, "1.0", seed="api")
    amd64 = PushResult(repo_name, "", pushed.child_digests[0], b"", "")
    sbom = pusher.push_artifact(repo_name, None, [(Blob(TRIVY_SPDX, SPDX_JSON), {})], artifact_type=SPDX_JSON)
    bundle = pusher.push_artifact(
        repo_name,
        None,
        [(Blob(sigstore_bundle(signer, pushed.digest), BUNDLE_V03), {})],
        artifact_type=BUNDLE_V03,
    )
    with_api.add(pushed.digest, bundle.referrer())
    for number in range(3):  # three pages for the amd64 image: the same SBOM listed thrice, read once
        with_api.add(amd64.digest, sbom.referrer(number=str(number)))
    repository = watch(fault_proxy, repo_name)

    run = polled(repository)

    build = build_of(repository, pushed)
    found = rows(build)
    assert sorted((row.kind, row.source, row.subject, str(row.platform or "")) for row in found) == [
        ("sbom", "referrers", amd64.digest, "linux/amd64"), ("signature", "referrers", pushed.digest, ""),
    ]  # fmt: skip
    assert all(row.error == "" for row in found)
    # build + 2 platforms asked; the amd64 answer in 2 pages
    assert fault_proxy.count("GET", REFERRERS) == 4
    assert Registry.objects.get(host=fault_proxy.host).referrers_api is True
    assert ReferrersCheck.objects.get(build=build).referrers == 4
    assert run.requests >= 4 + run.gets + run.blob_gets


def test_the_recheck_finds_a_signature_added_later_and_reads_only_it(
    pusher, fault_proxy, repo_name, with_api, signer
):
    pushed = pusher.push_image(repo_name, "1.0", seed="later")
    sbom = pusher.push_artifact(repo_name, None, [(Blob(TRIVY_SPDX, SPDX_JSON), {})], artifact_type=SPDX_JSON)
    with_api.add(pushed.digest, sbom.referrer())
    repository = watch(fault_proxy, repo_name)
    polled(repository)
    build = build_of(repository, pushed)
    assert [row.kind for row in rows(build)] == ["sbom"]
    # signed after the push
    signature = pusher.push_artifact(
        repo_name,
        None,
        [sign_layer(signer, pushed)],
        artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
    )
    with_api.add(pushed.digest, signature.referrer())

    fault_proxy.reset()
    polled(repository)  # checked a moment ago: not asked again yet
    assert fault_proxy.count("GET", REFERRERS) == 0

    ReferrersCheck.objects.filter(build=build).update(checked_at=timezone.now() - timedelta(hours=2))
    fault_proxy.reset()
    polled(repository)

    assert sorted(row.kind for row in rows(build)) == ["sbom", "signature"]
    [signed] = rows(build, kind="signature")
    assert signed.details["verified"] is True and signed.source == "referrers"
    assert fault_proxy.count("GET", REFERRERS) == 1
    assert fault_proxy.count("GET", f"{MANIFESTS}{sbom.digest}$") == 0  # stored already: not read again
    assert fault_proxy.count("GET", f"{MANIFESTS}{signature.digest}$") == 1
    assert ReferrersCheck.objects.get(build=build).checked_at > timezone.now() - timedelta(minutes=1)


def test_the_recheck_is_bounded_and_takes_the_longest_unasked_first(
    pusher, fault_proxy, repo_name, with_api, settings
):
    pushed = [pusher.push_image(repo_name, f"1.{number}", seed=f"bounded {number}") for number in range(4)]
    repository = watch(fault_proxy, repo_name)
    polled(repository)
    builds = [build_of(repository, item) for item in pushed]
    for hours, build in zip([5, 2, 9, 1], builds, strict=True):
        ReferrersCheck.objects.filter(build=build).update(checked_at=timezone.now() - timedelta(hours=hours))
    settings.TAGLEDGER_REFERRERS_RECHECK_BUILDS = 2
    fault_proxy.reset()

    polled(repository)

    asked = {record.path.rsplit("/", 1)[1] for record in fault_proxy.find("GET", REFERRERS)}
    assert asked == {builds[2].digest, builds[0].digest}


def test_a_registry_without_the_api_is_asked_again_after_a_day_for_one_request(buildx, fault_proxy):
    pushed, repository = buildx
    polled(repository)
    Registry.objects.filter(host=fault_proxy.host).update(
        referrers_api_checked_at=timezone.now() - attachments.API_MEMORY - timedelta(minutes=1)
    )
    repository = Repository.objects.select_related("registry").get(pk=repository.pk)
    fault_proxy.reset()

    run = polled(repository)

    [asked] = fault_proxy.find("GET", REFERRERS)
    assert asked.path.endswith(pushed.digest) and asked.status == 404
    assert run.requests == 1 + 1 + 1  # the tag list, the HEAD of 1.0, the question
    registry = Registry.objects.get(host=fault_proxy.host)
    assert registry.referrers_api is False and registry.referrers_api_checked_at > timezone.now() - timedelta(
        minutes=1
    )
    assert not ReferrersCheck.objects.exists()


@pytest.mark.parametrize(
    "answer",
    [Respond(200, {"Content-Type": "text/html"}, b"<html>welcome</html>"), Respond(503)],
    ids=["a web page", "unavailable"],
)
def test_a_referrers_route_that_answers_nonsense_counts_as_no_api_for_a_day(buildx, fault_proxy, answer):
    pushed, repository = buildx
    fault_proxy.add_rule(answer, path=REFERRERS)

    with quick_client(repository) as client:
        polled(repository, client)

    assert Registry.objects.get(host=fault_proxy.host).referrers_api is False
    assert len(rows(build_of(repository, pushed))) == 4  # the BuildKit statements are read all the same
    fault_proxy.reset()
    polled(Repository.objects.select_related("registry").get(pk=repository.pk))
    assert fault_proxy.count("GET", REFERRERS) == 0


# --- what a hostile registry can send ---------------------------------------------------------------------


def test_hostile_documents_fail_only_themselves(image, pusher, fault_proxy, signer):
    pushed, repository = image
    deep = b"[" * 100_000 + b"]" * 100_000
    blob, annotations = sign_layer(signer, pushed)
    unparsable = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    broken_certificate = blob, annotations | {"dev.sigstore.cosign/certificate": unparsable}
    not_base64 = json.dumps(
        {"payloadType": "application/vnd.in-toto+json", "payload": "%%% not base64 %%%", "signatures": []}
    )
    layers = [
        (Blob(deep, SPDX_JSON), {}),
        (Blob(b'{"spdxVersion": ["SPDX-2.3"], "packages": "all of them"}', SPDX_JSON), {}),
        (Blob(b"\xff\xfe not even text", CYCLONEDX_JSON), {}),
        (Blob(not_base64.encode(), DSSE_ENVELOPE), {}),
    ]
    sbom = pusher.push_cosign(repository.name, pushed.digest, "sbom", layers)
    pusher.push_cosign(repository.name, pushed.digest, "sig", [broken_certificate])
    claimed = Lying(b'{"a": 1}', SPDX_JSON, size=17 * 1024 * 1024)  # distribution stores the lie
    huge = pusher.push_artifact(
        repository.name, None, [(Blob(b"{}", SPDX_JSON), {}), (claimed, {})], artifact_type=SPDX_JSON
    )
    # the first layer's blob is 17 MiB on the wire: the client stops reading at the cap
    fault_proxy.add_rule(
        Respond(200, {"Content-Type": "application/json"}, b"x" * (17 * 1024 * 1024)),
        method="GET", path=f"{BLOBS}{huge.layer_digests[0]}$",
    )  # fmt: skip
    pusher.push_referrers_tag(repository.name, pushed.digest, [huge.referrer()])

    run = poll(repository)

    assert (run.status, run.error) == (PollRun.Status.OK, "")
    build = build_of(repository, pushed)
    assert TagEvent.objects.filter(tag__repository=repository, build=build).count() == 1
    found = {row.blob_digest: row for row in rows(build)}
    errors = [found[blob.digest].error for blob, _ in layers]
    assert all(errors), errors
    assert "deeper" in errors[0] or "deep" in errors[0]
    assert found[huge.layer_digests[0]].error.endswith("byte cap")
    # the second says it is past the cap: never asked for
    assert found[claimed.digest].error.startswith(f"the document is {17 * 1024 * 1024} bytes; at most")
    assert fault_proxy.count("GET", f"{BLOBS}{claimed.digest}$") == 0
    [signature] = rows(build, kind="signature")
    assert signature.details["verified"] is False and "certificate" in signature.details["detail"]
    assert all(not row.details for row in found.values() if row.error)
    assert len(found) == 7 and sbom.digest in {row.manifest_digest for row in found.values()}


def test_a_failing_blob_fails_its_attachment_and_a_429_ends_the_reading(buildx, pusher, fault_proxy):
    pushed, repository = buildx
    amd64, arm64 = (
        [layer["digest"] for layer in json.loads(pusher.get_manifest(repository.name, digest)[0])["layers"]]
        for digest in pushed.attestation_digests
    )
    fault_proxy.add_rule(Respond(500), method="GET", path=f"{BLOBS}{amd64[0]}$")
    fault_proxy.add_rule(Respond(429, {"Retry-After": "60"}), method="GET", path=f"{BLOBS}{arm64[1]}$")

    with quick_client(repository) as client:
        run = poll(repository, client=client)

    assert (run.status, run.error) == (PollRun.Status.OK, "")  # the record stands, whatever the reading met
    build = build_of(repository, pushed)
    assert build.platforms.count() == 2 and build.attestations.count() == 2
    found = {row.blob_digest: row for row in rows(build)}
    assert found[amd64[0]].error.startswith("Unavailable: ") and found[amd64[0]].kind == "attestation"
    assert "429" in found[arm64[1]].error
    assert all(row.error == "" or "429" in row.error or row.blob_digest == amd64[0] for row in found.values())
    assert slots.paused_until(repository.registry) > 0  # the 429 pauses the registry, as anywhere
    cache.clear()


DOCUMENT_TYPES = [
    SIMPLE_SIGNING,
    BUNDLE_V03,
    DSSE_ENVELOPE,
    "application/vnd.in-toto+json",
    SPDX_JSON,
    CYCLONEDX_JSON,
]
ANNOTATIONS = ["dev.cosignproject.cosign/signature", "dev.sigstore.cosign/certificate", "predicateType", "x"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    body=st.binary(max_size=200) | JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    media_type=st.sampled_from(DOCUMENT_TYPES),
    annotations=st.dictionaries(st.sampled_from(ANNOTATIONS), st.text(max_size=40)),
)
def test_any_blob_reads_as_a_document_or_as_why_not_and_never_raises(body, media_type, annotations):
    layer = Descriptor(media_type, "sha256:" + "1" * 64, len(body), annotations=annotations)
    base = attachments.Found("sha256:" + "2" * 64, "cosign-tag", "attestation", "sha256:" + "3" * 64)

    found = attachments._read(base, attachments._reader_of(media_type), body, layer)

    assert found.kind in Attachment.Kind.values
    assert not (found.error and (found.details or found.packages))  # unreadable: nothing read from it
    if media_type in (SIMPLE_SIGNING, BUNDLE_V03) and found.kind == "signature":
        assert found.details["verified"] is False and found.details["detail"]  # random bytes never verify
    assert len(found.error) <= attachments.MAX_ERROR
    json.dumps(found.details)  # stored as JSON


# --- builds recorded before tagledger read supply chains ------------------------------------------


def test_poll_supply_chain_reads_what_builds_recorded_before_hold_once_and_an_ordinary_poll_does_not(
    buildx, pusher, fault_proxy, signer
):
    """An upgrade finds builds stored by polls that read no supply chain: an ordinary poll leaves
    them (it reads new builds only), `poll --supply-chain` fetches them again and reads them all,
    cosign tags included; asked again, it fetches only what still has nothing recorded."""
    pushed, repository = buildx
    signature = pusher.push_cosign(pushed.repository, pushed.digest, "sig", [sign_layer(signer, pushed)])
    polled(repository)
    build = build_of(repository, pushed)
    Attachment.objects.all().delete()  # as a poll before this version left them

    polled(repository)
    assert not build.attachments.exists()

    fault_proxy.reset()
    call_command("poll", repository.reference, "--supply-chain", stdout=StringIO())
    assert sorted((row.kind, row.source) for row in rows(build)) == [
        ("provenance", "buildkit"), ("provenance", "buildkit"),
        ("sbom", "buildkit"), ("sbom", "buildkit"), ("signature", "cosign-tag"),
    ]  # fmt: skip
    [signed] = rows(build, kind="signature")
    assert (signed.manifest_digest, signed.details["verified"]) == (signature.digest, True)
    # the build, its 2 images and 2 attestation manifests, and the .sig manifest; 4 statements and
    # the signature layer (image configs are fetched again too: _fetch reads them for platforms)
    assert fault_proxy.count("GET", MANIFESTS) == 6

    fault_proxy.reset()
    call_command("poll", repository.reference, "--supply-chain", stdout=StringIO())
    assert fault_proxy.count("GET", MANIFESTS) == 1  # the .sig build alone: nothing attached to it
    assert len(rows(build)) == 5
