"""A build's supply-chain section and a packages compare in a real browser, at phone and desktop
widths, on an alpine-sized SBOM with a long keyless-signing identity: no sideways scroll, nothing
axe calls serious, and the hostile text a registry may send shown as text."""

import pytest
from playwright.sync_api import Page, expect

from history.models import Attachment
from tests.browser.conftest import ARTIFACTS, serious_violations, shot
from tests.history.factories import Image, attachment, platform, sbom, signature

pytestmark = pytest.mark.django_db(transaction=True)

# An alpine 3.20 image with curl and bash, as syft lists it.
ALPINE = [
    ("alpine-baselayout", "3.6.5-r0"), ("alpine-baselayout-data", "3.6.5-r0"), ("alpine-keys", "2.4-r1"),
    ("apk-tools", "2.14.4-r0"), ("bash", "5.2.26-r0"), ("brotli-libs", "1.1.0-r2"),
    ("busybox", "1.36.1-r29"), ("busybox-binsh", "1.36.1-r29"), ("c-ares", "1.28.1-r0"),
    ("ca-certificates", "20240705-r0"), ("ca-certificates-bundle", "20240705-r0"), ("curl", "8.9.1-r0"),
    ("libcrypto3", "3.3.2-r0"), ("libcurl", "8.9.1-r0"), ("libidn2", "2.3.7-r0"),
    ("libncursesw", "6.4_p20240420-r0"),
    ("libpsl", "0.21.5-r1"), ("libssl3", "3.3.2-r0"), ("libunistring", "1.2-r0"), ("musl", "1.2.5-r0"),
    ("musl-utils", "1.2.5-r0"), ("ncurses-terminfo-base", "6.4_p20240420-r0"), ("nghttp2-libs", "1.62.1-r0"),
    ("readline", "8.2.10-r0"), ("scanelf", "1.3.7-r2"), ("ssl_client", "1.36.1-r29"), ("tzdata", "2024a-r1"),
    ("xz-libs", "5.6.2-r0"), ("zlib", "1.3.1-r1"), ("zstd-libs", "1.5.6-r0"),
]  # fmt: skip
OLDER = {"libcrypto3": "3.3.1-r3", "libssl3": "3.3.1-r3", "curl": "8.8.0-r0", "libcurl": "8.8.0-r0"}
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2"
ACTIONS = "https://token.actions.githubusercontent.com"
VERIFIED = (
    "the signature verifies over its payload with the certificate's ECDSA P-256 key, and the payload names "
    "this digest; a Rekor bundle is present but not checked, and no trust root was fetched (offline), so "
    "the certificate chain is not verified"
)


def provenance(commit: str) -> dict:
    return {
        "builder": "https://github.com/actions/runner/github-hosted",
        "build_type": "https://actions.github.io/buildtypes/workflow/v1",
        "source_repository": "https://github.com/acme/app",
        "source_commit": commit,
        "started_at": "2026-11-26T12:00:03Z",
        "finished_at": "2026-11-26T12:04:41Z",
        "slsa": "v1",
    }


@pytest.fixture
def released():
    """acme/app 1.4 built twice: the rebuild has openssl and curl updates, tini, no tzdata, and
    another signer."""
    image = Image("acme/app")
    older = image.release("1.4", "", "1.4.1")
    newer = image.release("1.4", "", "1.4.2", "1.4", "latest")
    for build, packages, commit in (
        (older, [(name, OLDER.get(name, version)) for name, version in ALPINE], "4f1c2a9" + "0" * 33),
        (newer, [*ALPINE[:-4], *ALPINE[-3:], ("tini", "0.19.0-r3")], "9b7e3d1" + "0" * 33),
    ):
        for name in ("linux/amd64", "linux/arm64/v8"):
            found = platform(build, name)
            manifest = sbom(build, *packages, platform=found).manifest_digest
            attachment(
                build, Attachment.Kind.PROVENANCE, platform=found, source=Attachment.Source.BUILDKIT,
                manifest_digest=manifest, blob_digest="sha256:" + "b" * 64,
                predicate_type="https://slsa.dev/provenance/v1", details=provenance(commit),
            )  # fmt: skip
            attachment(
                build, Attachment.Kind.VULNERABILITIES, platform=found, source=Attachment.Source.REFERRERS,
                predicate_type="https://cosign.sigstore.dev/attestation/vuln/v1",
                details={"scanner": "grype-0.80.1", "total": 7,
                         "counts": {"critical": 0, "high": 1, "medium": 4, "low": 2, "unknown": 0}},
            )  # fmt: skip
    signature(
        older, "release@acme.example", details={"issuer": "https://accounts.google.com", "detail": VERIFIED}
    )
    signature(
        newer, WORKFLOW, source=Attachment.Source.REFERRERS,
        details={"issuer": ACTIONS, "detail": VERIFIED, "rekor_bundle": True},
    )  # fmt: skip
    signature(
        newer, '<script>alert("signer")</script>', verified=False, source=Attachment.Source.COSIGN_TAG,
        details={"detail": "the signature does not verify over its payload with the certificate's key"},
    )  # fmt: skip
    attachment(
        newer, Attachment.Kind.SBOM, platform=newer.platforms.first(), source=Attachment.Source.COSIGN_TAG,
        error="the SBOM is 41 943 040 bytes, over the 16 MiB limit",
    )  # fmt: skip
    return older, newer


@pytest.mark.parametrize("width", [390, 1400])
def test_the_build_page_section_and_the_packages_compare_fit_and_pass_axe(page: Page, released, width):
    older, newer = released
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(f"/builds/{newer.pk}/")
    section = page.locator("#supply-chain")
    expect(section.locator("li.signature")).to_have_count(2)
    expect(section).to_contain_text(WORKFLOW)
    expect(section).to_contain_text('<script>alert("signer")</script>')  # as text, never run
    expect(section.get_by_role("link", name="30 packages").first).to_be_visible()
    expect(section).to_contain_text("over the 16 MiB limit")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), (
        "the build page scrolls sideways"
    )
    section.screenshot(path=str(ARTIFACTS / f"supply-chain-{width}.png"))
    shot(page, f"build-supply-{width}")
    assert serious_violations(page) == []

    page.goto(f"/compare?a={older.digest}&b={newer.digest}")
    packages = page.locator("#packages")
    expect(packages).to_contain_text("4 changed · 1 added · 1 removed · 25 unchanged (30 → 30 packages)")
    expect(packages.locator("table.compare-packages-changed").first).to_contain_text("3.3.1-r3")
    expect(packages).to_contain_text("Signer identity")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "compare scrolls sideways"
    packages.screenshot(path=str(ARTIFACTS / f"compare-packages-{width}.png"))
    assert serious_violations(page) == []
