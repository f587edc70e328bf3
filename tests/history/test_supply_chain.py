"""A build's supply chain as recorded (history.supply_chain.for_build), on its page and in
`GET /api/v1/builds/{digest}`: signatures, per platform attestations, SBOM, provenance and
vulnerabilities, unreadable attachments, where tagledger looked; hostile text escaped."""

import html

import pytest
from django.urls import reverse

from catalog.models import Registry
from catalog.oci.mediatypes import OCI_MANIFEST
from history import supply_chain
from history.models import Attachment, Attestation, Build, ReferrersCheck
from tests.history.factories import Image, attachment, platform, sbom, signature

pytestmark = pytest.mark.django_db

API = "/api/v1/builds"
SPDX = "https://spdx.dev/Document"
SLSA = "https://slsa.dev/provenance/v1"
PROVENANCE = {
    "builder": "https://github.com/actions/runner",
    "build_type": "https://actions.github.io/buildtypes/workflow/v1",
    "source_repository": "https://github.com/acme/app",
    "source_commit": "0123456789abcdef0123456789abcdef01234567",
    "started_at": "2026-11-26T12:00:00Z",
    "finished_at": "2026-11-26T12:04:10Z",
    "slsa": "v1",
}
VULNERABILITIES = {
    "scanner": "grype-0.80",
    "counts": {"critical": 1, "high": 2, "medium": 0, "low": 5, "unknown": 0},
    "total": 8,
}


@pytest.fixture
def image():
    return Image("acme/app")


@pytest.fixture
def two_platforms(image):
    """A multi-platform build tagged 1.0 and latest: linux/amd64 and linux/arm64/v8."""
    build = image.release("1.0", "", "1.0", "latest")
    return build, platform(build, "linux/amd64"), platform(build, "linux/arm64/v8")


# --- the reader ---------------------------------------------------------------------------------


def test_an_unsigned_build_with_nothing_attached_says_where_it_looked(two_platforms):
    build, amd64, arm64 = two_platforms
    chain = supply_chain.for_build(build)
    assert (chain.signatures, chain.signed, chain.is_empty) == ([], False, True)
    assert [supply.platform for supply in chain.by_platform] == [amd64, arm64]
    assert all(supply.packages_count is None and supply.attestations == [] for supply in chain.by_platform)
    looked = " | ".join(chain.looked)
    assert ".sig, .att and .sbom" in looked and "referrers tag" in looked
    assert "BuildKit attestation manifests" in looked  # an index
    assert "referrers API: not asked yet" in looked


@pytest.mark.parametrize(
    ("referrers_api", "checked", "says"),
    [
        (None, False, "not asked yet"),
        (False, False, "it has none (it answered 404)"),
        (True, False, "not yet asked about this build"),
        (True, True, "last asked about this build 2026-11-26 12:00 UTC"),
    ],
)
def test_where_it_looked_follows_the_registry_s_referrers_api(image, referrers_api, checked, says):
    Registry.objects.filter(pk=image.repository.registry_id).update(referrers_api=referrers_api)
    build = image.release("1.0", "", "1.0")
    if checked:
        ReferrersCheck.objects.create(build=build, checked_at="2026-11-26T12:00:00Z")
    assert says in supply_chain.for_build(Build.objects.get(pk=build.pk)).looked[-1]


def test_signatures_verified_and_not_each_with_their_detail(two_platforms):
    build, amd64, _ = two_platforms
    good = signature(build, "release@acme.example")
    bad = signature(build, "someone@else.example", verified=False, source=Attachment.Source.REFERRERS)
    of_platform = signature(
        build, "release@acme.example", platform=amd64, source=Attachment.Source.TAG_SCHEMA
    )
    chain = supply_chain.for_build(build)
    by_digest = {found.digest: found for found in chain.signatures}
    assert by_digest[good.manifest_digest].as_dict() == {
        "digest": good.manifest_digest,
        "source": "cosign-tag",
        "identity": "release@acme.example",
        "issuer": "https://accounts.example.com",
        "verified": True,
        "detail": good.details["detail"],
    }
    assert by_digest[bad.manifest_digest].verified is False
    assert (
        by_digest[bad.manifest_digest].detail
        == "the signature does not verify over its payload with the certificate's key"
    )
    assert (
        by_digest[of_platform.manifest_digest].platform,
        by_digest[of_platform.manifest_digest].subject,
    ) == (
        "linux/amd64",
        amd64.digest,
    )
    assert chain.signers == {
        ("release@acme.example", "https://accounts.example.com"),
        ("someone@else.example", "https://accounts.example.com"),
    }


def test_a_buildkit_attachment_is_never_a_signature(two_platforms):
    build, *_ = two_platforms
    signature(build, source=Attachment.Source.BUILDKIT)
    assert supply_chain.for_build(build).signatures == []


def test_per_platform_sbom_provenance_and_vulnerabilities(two_platforms):
    build, amd64, arm64 = two_platforms
    first = sbom(build, ("musl", "1.2.5-r0"), ("openssl", "3.3.2-r0"), platform=amd64)
    # A second SBOM of the same image (a cosign .sbom): its packages join the first's, counted once.
    sbom(
        build, ("openssl", "3.3.2-r0"), ("zlib", "1.3.1-r1"), platform=amd64,
        source=Attachment.Source.COSIGN_TAG, predicate_type="",
    )  # fmt: skip
    attachment(
        build, Attachment.Kind.PROVENANCE, platform=amd64, source=Attachment.Source.BUILDKIT,
        manifest_digest=first.manifest_digest, blob_digest="sha256:" + "b" * 64,
        predicate_type=SLSA, details=PROVENANCE,
    )  # fmt: skip
    scan = attachment(
        build, Attachment.Kind.VULNERABILITIES, platform=arm64, source=Attachment.Source.REFERRERS,
        predicate_type="https://cosign.sigstore.dev/attestation/vuln/v1", details=VULNERABILITIES,
    )  # fmt: skip
    chain = supply_chain.for_build(build)
    x86, arm = chain.platforms[amd64.pk], chain.platforms[arm64.pk]
    assert x86.packages_count == 3 and arm.packages_count is None
    assert [(found.format, found.tool, found.package_count) for found in x86.sboms] == [
        ("SPDX 2.3", "syft-1.4.1", 2),
        ("SPDX 2.3", "syft-1.4.1", 2),
    ]
    assert [found.as_dict() for found in x86.attestations] == [
        {"digest": first.manifest_digest, "predicate_type": SLSA},
        {"digest": first.manifest_digest, "predicate_type": SPDX},
    ]
    (provenance,) = x86.provenance
    assert provenance.source_ref == "https://github.com/acme/app@0123456789abcdef0123456789abcdef01234567"
    assert (provenance.builder, provenance.started_at, provenance.finished_at) == (
        "https://github.com/actions/runner",
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:04:10Z",
    )
    (report,) = arm.vulnerabilities
    assert report.by_severity == [("critical", 1), ("high", 2), ("medium", 0), ("low", 5), ("unknown", 0)]
    assert report.total == 8
    assert arm.attestations == [
        supply_chain.Statement(scan.manifest_digest, "https://cosign.sigstore.dev/attestation/vuln/v1")
    ]


def test_buildkit_attestation_rows_and_their_attachments_are_listed_once(two_platforms):
    build, amd64, _ = two_platforms
    manifest = "sha256:" + "a" * 64
    Attestation.objects.create(
        build=build, digest=manifest, media_type=OCI_MANIFEST, subject=amd64.digest, platform=amd64,
        predicate_types=[SPDX, SLSA],
    )  # fmt: skip
    sbom(build, ("musl", "1.2.5-r0"), platform=amd64, manifest_digest=manifest)
    chain = supply_chain.for_build(build)
    assert [found.as_dict() for found in chain.platforms[amd64.pk].attestations] == [
        {"digest": manifest, "predicate_type": SPDX},
        {"digest": manifest, "predicate_type": SLSA},
    ]


def test_an_unreadable_attachment_fails_alone_with_its_error(two_platforms):
    build, amd64, _ = two_platforms
    sbom(build, ("musl", "1.2.5-r0"), platform=amd64)
    broken = attachment(
        build, Attachment.Kind.SBOM, platform=amd64, source=Attachment.Source.COSIGN_TAG,
        error="the document is 40 MB, over the 16 MB limit",
    )  # fmt: skip
    unreadable_signature = attachment(build, error="the signature layer is not valid JSON")
    chain = supply_chain.for_build(build)
    supply = chain.platforms[amd64.pk]
    assert supply.packages_count == 1
    assert supply.unreadable == [
        supply_chain.Unreadable(
            "sbom", "cosign-tag", broken.manifest_digest, "the document is 40 MB, over the 16 MB limit"
        )
    ]
    (found,) = chain.signatures
    assert (found.digest, found.verified, found.detail) == (
        unreadable_signature.manifest_digest,
        False,
        "the signature layer is not valid JSON",
    )


def test_what_describes_a_single_platform_build_describes_its_platform(image):
    build = image.release("1.0", "", "1.0")
    build.media_type = OCI_MANIFEST
    build.save()
    only = platform(build, "linux/amd64", digest=build.digest)
    sbom(build, ("musl", "1.2.5-r0"))  # platform null, subject the build's digest
    chain = supply_chain.for_build(build)
    assert chain.platforms[only.pk].packages_count == 1
    assert chain.whole is None


def test_what_describes_an_index_itself_belongs_to_the_whole_build(two_platforms):
    build, *_ = two_platforms
    sbom(build, ("musl", "1.2.5-r0"))
    chain = supply_chain.for_build(build)
    assert chain.whole.packages_count == 1
    assert all(supply.packages_count is None for supply in chain.by_platform)


@pytest.mark.parametrize(
    "details",
    [
        {"identity": 7, "issuer": ["x"], "verified": "yes", "detail": None},
        {"identity": {"a": 1}},
        {},
    ],
)
def test_details_of_the_wrong_types_read_as_nothing(two_platforms, details):
    build, *_ = two_platforms
    attachment(build, details=details)
    attachment(build, Attachment.Kind.VULNERABILITIES, details={"counts": {"critical": "many"}, "total": -1})
    attachment(build, Attachment.Kind.SBOM, details={"format": 3, "package_count": True})
    chain = supply_chain.for_build(build)
    (found,) = chain.signatures
    assert (found.identity, found.issuer, found.verified, found.detail) == (
        "",
        "",
        False,
        "no detail recorded",
    )
    (report,) = chain.whole.vulnerabilities
    assert (report.counts["critical"], report.total) == (0, 0)
    assert chain.whole.sboms[0].format == "unknown format"
    assert chain.whole.packages_count is None


def test_the_reader_costs_the_same_few_queries_whatever_it_reads(image, django_assert_max_num_queries):
    small = image.release("1.0", "", "1.0")
    platform(small)
    big = image.release("2.0", "", "2.0")
    for name in ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le"):
        found = platform(big, name)
        sbom(big, (f"pkg-{name}", "1"), platform=found)
        signature(big, platform=found)
        attachment(big, Attachment.Kind.PROVENANCE, platform=found, details=PROVENANCE)
    for build in (small, big):
        build.refresh_from_db()
        # repository, registry (pages load them with the build), platforms, attachments, attestations,
        # the referrers check, the signatures' own builds
        with django_assert_max_num_queries(7):
            supply_chain.for_build(build)
