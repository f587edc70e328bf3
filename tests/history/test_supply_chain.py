"""A build's supply chain as recorded (history.supply_chain.for_build), on its page and in
`GET /api/v1/builds/{digest}`: signatures, per platform attestations, SBOM, provenance and
vulnerabilities, unreadable attachments, where tagledger looked; hostile text escaped."""

import html
import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Registry
from catalog.oci.mediatypes import OCI_MANIFEST
from history import supply_chain
from history.models import Attachment, Attestation, Build, ReferrersCheck
from tests.history.factories import Image, attachment, platform, polled, sbom, signature, watch
from tests.support.pusher import SLSA_V1, Blob
from tests.support.sigstore import SIMPLE_SIGNING, cosign_signature_layer, make_signer, simple_signing_payload

pytestmark = pytest.mark.django_db

API = "/api/v1/builds"
SBOMS = Path(__file__).parent / "sboms"  # real documents of public projects
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
    assert [found.as_dict() for found in arm.attestations] == [
        {"digest": scan.manifest_digest, "predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1"}
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
    # and holds for each of its images, as /api/v1/builds/{digest}/packages?platform= lists them
    assert [supply.packages_count for supply in chain.by_platform] == [1, 1]
    assert all(supply.sboms == [] for supply in chain.by_platform)


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


# --- the build page -----------------------------------------------------------------------------


def page(client, build) -> str:
    response = client.get(reverse("history:build", args=[build.pk]))
    assert response.status_code == 200
    return response.content.decode()


def section(content: str) -> str:
    start = content.index('<section class="supply-chain"')
    return content[start : content.index("</section>", start)]


def words(markup: str) -> str:
    """What a reader sees: the text without tags, spaces collapsed, entities read."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()).replace(" ,", ",")


def test_the_page_says_no_signature_was_found_and_where_it_looked(client, public, two_platforms):
    build, *_ = two_platforms
    shown = html.unescape(section(page(client, build)))
    assert "No signature found." in shown
    for place in supply_chain.for_build(build).looked:
        assert place in shown


def test_the_page_shows_each_signature_with_its_exact_detail(client, public, two_platforms):
    build, *_ = two_platforms
    signature(build, "release@acme.example")
    signature(build, "someone@else.example", verified=False, source=Attachment.Source.REFERRERS)
    shown = words(section(page(client, build)))
    assert "No signature found." not in shown
    assert "verified signed by release@acme.example, issuer https://accounts.example.com" in shown
    assert "not verified signed by someone@else.example" in shown
    assert "the signature does not verify over its payload with the certificate's key" in shown
    assert "from the registry's referrers API" in shown and "from a cosign tag" in shown


def test_the_page_links_a_signature_to_its_manifest_recorded_as_a_build(client, public, image):
    build = image.release("1.0", "", "1.0")
    manifest = image.build()
    signature(build, manifest_digest=manifest.digest)
    assert f'href="/builds/{manifest.pk}/"' in section(page(client, build))


def test_the_page_shows_sbom_provenance_and_vulnerabilities_per_platform(client, public, two_platforms):
    build, amd64, arm64 = two_platforms
    sbom(build, ("musl", "1.2.5-r0"), ("openssl", "3.3.2-r0"), platform=amd64)
    attachment(build, Attachment.Kind.PROVENANCE, platform=amd64, details=PROVENANCE, predicate_type=SLSA)
    attachment(build, Attachment.Kind.VULNERABILITIES, platform=arm64, details=VULNERABILITIES)
    attachment(
        build, Attachment.Kind.SBOM, platform=arm64, error="the SBOM's JSON is nested deeper than 64 levels"
    )
    shown = " ".join(html.unescape(section(page(client, build))).split())
    assert "<h3>linux/amd64</h3>" in shown and "<h3>linux/arm64/v8</h3>" in shown
    assert 'SPDX 2.3 by <code>syft-1.4.1</code> <span class="muted small">(from a BuildKit' in shown
    assert f'href="/builds/{build.pk}/packages?platform=linux/amd64">2 packages</a>' in shown
    assert "builder <code>https://github.com/actions/runner</code>" in shown
    assert "source <code>https://github.com/acme/app@0123456789abcdef0123456789abcdef01234567</code>" in shown
    assert "started 2026-11-26 12:00, finished 2026-11-26 12:04" in words(shown)
    assert "1 critical" in shown and "2 high" in shown and "5 low" in shown
    assert "the SBOM's JSON is nested deeper than 64 levels" in shown


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_registry_text_is_escaped_everywhere_on_the_page(client, public, two_platforms):
    build, amd64, _ = two_platforms
    signature(build, HOSTILE, details={"issuer": HOSTILE, "detail": HOSTILE, "key": HOSTILE})
    attachment(
        build, Attachment.Kind.PROVENANCE, platform=amd64, predicate_type="https://x/<b>",
        details={**PROVENANCE, "builder": HOSTILE, "source_repository": HOSTILE, "started_at": HOSTILE},
    )  # fmt: skip
    attachment(build, Attachment.Kind.SBOM, platform=amd64, details={"format": HOSTILE, "tool": HOSTILE})
    attachment(build, Attachment.Kind.SBOM, platform=amd64, error=HOSTILE)
    shown = section(page(client, build))
    assert "<script" not in shown and "<img" not in shown and "<b>" not in shown
    assert shown.count("&lt;script&gt;") >= 8


# --- the API ------------------------------------------------------------------------------------


def test_the_api_answers_the_issue_s_contract_field_by_field(client, public, two_platforms):
    build, amd64, arm64 = two_platforms
    first = sbom(build, ("musl", "1.2.5-r0"), ("openssl", "3.3.2-r0"), platform=amd64)
    attachment(build, Attachment.Kind.PROVENANCE, platform=amd64, details=PROVENANCE, predicate_type=SLSA,
               manifest_digest=first.manifest_digest, blob_digest="sha256:" + "c" * 64)  # fmt: skip
    signed = signature(build, "release@acme.example", source=Attachment.Source.REFERRERS)
    body = client.get(f"{API}/{build.digest}").json()
    assert {key: body[key] for key in ("digest", "repository", "version", "variant")} == {
        "digest": build.digest,
        "repository": "registry.example/acme/app",
        "version": "1.0",
        "variant": "",
    }
    assert [(held["tag"], held["until"]) for held in body["tags"]] == [("1.0", None), ("latest", None)]
    x86, arm = body["platforms"]
    assert (x86["os"], x86["architecture"], x86["variant"], x86["digest"]) == (
        "linux",
        "amd64",
        "",
        amd64.digest,
    )
    assert (arm["architecture"], arm["variant"], arm["digest"]) == ("arm64", "v8", arm64.digest)
    assert x86["attestations"] == [
        {"digest": first.manifest_digest, "predicate_type": SLSA},
        {"digest": first.manifest_digest, "predicate_type": SPDX},
    ]
    assert (x86["packages_count"], arm["packages_count"], arm["attestations"]) == (2, None, [])
    assert x86["provenance"][0]["source_commit"] == PROVENANCE["source_commit"]
    assert body["signatures"] == [
        {
            "digest": signed.manifest_digest,
            "source": "referrers",
            "identity": "release@acme.example",
            "issuer": "https://accounts.example.com",
            "verified": True,
            "detail": signed.details["detail"],
        }
    ]
    assert body["url"] == f"/builds/{build.pk}/"


def test_the_api_escapes_nothing_json_carries_hostile_text_as_it_is(client, public, two_platforms):
    build, *_ = two_platforms
    signature(build, HOSTILE)
    assert client.get(f"{API}/{build.digest}").json()["signatures"][0]["identity"] == HOSTILE


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "sha256:" + "A" * 64, "md5:" + "a" * 32, "latest", "sha256:" + "a" * 64 + "x"],
)
def test_the_api_refuses_what_is_not_a_digest_with_400(client, public, text):
    response = client.get(f"{API}/{text}")
    assert response.status_code == 400, response.content
    assert "digest" in response.json()["detail"]


def test_the_api_answers_404_for_an_unknown_digest_and_names_a_platform_s_build(
    client, public, two_platforms
):
    build, amd64, _ = two_platforms
    unknown = client.get(f"{API}/sha256:{'0' * 64}")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": f"no watched repository has a build sha256:{'0' * 64}"}
    image = client.get(f"{API}/{amd64.digest}")
    assert image.status_code == 404
    assert f"it is the linux/amd64 image of the build {build.digest}" in image.json()["detail"]


def test_a_digest_in_two_repositories_is_a_409_until_one_is_chosen(client, public, image):
    build = image.release("1.0", "", "1.0")
    other = Image("mirror/app")
    other.repository.builds.create(
        digest=build.digest, media_type=build.media_type, size=1, first_seen_at=build.first_seen_at
    )
    response = client.get(f"{API}/{build.digest}")
    assert response.status_code == 409
    assert response.json()["candidates"] == ["registry.example/acme/app", "registry.example/mirror/app"]
    chosen = client.get(f"{API}/{build.digest}", {"repository": "registry.example/mirror/app"})
    assert chosen.status_code == 200 and chosen.json()["repository"] == "registry.example/mirror/app"
    assert client.get(f"{API}/{build.digest}", {"repository": "registry.example/none"}).status_code == 404


@pytest.mark.parametrize("repository", ["acme\0app", "acme/\x1bapp", "a" * 5000])
def test_a_hostile_repository_parameter_is_a_400_that_says_why(client, public, image, repository):
    build = image.release("1.0", "", "1.0")
    response = client.get(f"{API}/{build.digest}", {"repository": repository})
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("repository: ")


# --- from a real poll ---------------------------------------------------------------------------


def test_a_polled_buildx_image_and_its_cosign_signature_through_the_api_and_the_page(
    client, public, registry, pusher, repo_name
):
    """The real registry holds a buildx index (SPDX and SLSA statements per platform) and a cosign
    `.sig` made with a real certificate; one poll, and the build API and page say what they hold."""
    pushed = pusher.push_buildx_index(
        repo_name, "1.0", seed="supply page",
        predicates={
            SPDX: json.loads((SBOMS / "trivy-alpine-3.15.spdx.json").read_bytes()),
            SLSA_V1: json.loads((SBOMS / "buildkit-provenance-v1.intoto.json").read_bytes())["predicate"],
        },
    )  # fmt: skip
    identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
    signer = make_signer(identity, "https://token.actions.githubusercontent.com")
    payload = simple_signing_payload(f"{registry.host}/{repo_name}", pushed.digest)
    layer = (Blob(payload, SIMPLE_SIGNING), cosign_signature_layer(signer, payload))
    signed = pusher.push_cosign(repo_name, pushed.digest, "sig", [layer])
    repository = watch(registry, repo_name)
    polled(repository)

    body = client.get(f"{API}/{pushed.digest}").json()
    assert [(found["architecture"], found["packages_count"]) for found in body["platforms"]] == [
        ("amd64", 11),
        ("arm64", 11),
    ]
    assert [
        sorted(found["predicate_type"] for found in one["attestations"]) for one in body["platforms"]
    ] == [sorted([SLSA_V1, SPDX])] * 2
    [signature_found] = body["signatures"]
    assert (signature_found["digest"], signature_found["source"]) == (signed.digest, "cosign-tag")
    assert (signature_found["identity"], signature_found["verified"]) == (identity, True)

    build = Build.objects.get(repository=repository, digest=pushed.digest)
    shown = words(section(page(client, build)))
    assert f"verified signed by {identity}" in shown and "11 packages" in shown
    signature_build = Build.objects.get(repository=repository, digest=signed.digest)
    assert f'href="/builds/{signature_build.pk}/"' in section(page(client, build))


# What PostgreSQL's jsonb can hold: no NUL, no lone surrogate, no infinity (a document holding them
# is the poll writer's to refuse, row by row).
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
FIELDS = [
    *("identity", "issuer", "verified", "detail", "key", "rekor_bundle"),
    *("format", "tool", "package_count", "scanner", "counts", "total"),
    *("builder", "source_repository", "source_commit", "started_at", "finished_at", "slsa"),
]


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(Attachment.Kind.values),
    details=st.dictionaries(st.sampled_from(FIELDS), json_values),
)
def test_any_json_in_details_reads_and_renders(client, public, two_platforms, kind, details):
    """Whatever types a registry's document left in `details`, the reader reads and the page renders."""
    build, amd64, _ = two_platforms
    Attachment.objects.filter(build=build).delete()
    attachment(build, kind, platform=amd64, details=details)
    attachment(build, kind, details=details, error="" if details else "unreadable")
    supply_chain.for_build(build)
    assert client.get(reverse("history:build", args=[build.pk])).status_code == 200
    assert client.get(f"{API}/{build.digest}").status_code == 200


def test_a_signature_s_own_build_page_has_no_supply_chain_section(client, public, image):
    build = image.release("1.0", "", "1.0")
    signature_build = image.build()
    image.tag(
        f"sha256-{build.digest.removeprefix('sha256:')}.sig", signature_build, subject_digest=build.digest
    )
    assert 'id="supply-chain"' not in page(client, signature_build)
    assert 'id="supply-chain"' in page(client, build)
