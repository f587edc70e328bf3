"""A signature, attestation or SBOM build (cosign's `sha256-<hex>.sig|.att|.sbom` tags, the OCI
referrers fallback `sha256-<hex>`) and the build it describes link to each other."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Tag
from history.models import Platform
from tests.history.factories import Image

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]


def text(response) -> str:
    """Visible text, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


def artifact_tag(digest: str, suffix: str) -> str:
    return f"sha256-{digest.removeprefix('sha256:')}{suffix}"


def sign(image: Image, subject: str, artifact, suffix: str = ".sig") -> Tag:
    """Point the artifact tag naming `subject` at the build `artifact`, stored as a poll stores it
    (Tag.from_info: with the subject digest its name gives)."""
    return image.tag(artifact_tag(subject, suffix), artifact, subject_digest=subject)


@pytest.fixture
def signed():
    """A release and its cosign signature, whose manifest carries a config naming no platform
    (what the poll stores as a platform with no os or architecture)."""
    image = Image("acme/signed")
    release = image.release("1.0.0", "", "1.0.0", "latest")
    signature = image.build()
    Platform.objects.create(
        build=signature, digest=signature.digest, media_type="application/vnd.oci.image.manifest.v1+json"
    )
    sign(image, release.digest, signature)
    return image, release, signature


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


@pytest.mark.parametrize(
    "suffix, what",
    [
        (".sig", "Cosign signature"),
        (".att", "Cosign attestation"),
        (".sbom", "SBOM"),
        ("", "Referrers index"),
    ],
)
def test_an_artifact_build_says_what_it_is_and_links_the_build_it_describes(client, suffix, what):
    image = Image("acme/artifacts")
    release = image.release("2.0.0", "", "2.0.0")
    artifact = image.build()
    sign(image, release.digest, artifact, suffix)
    response = client.get(f"/builds/{artifact.pk}/")
    assert response.status_code == 200
    assert f"{what} of build {short(release.digest)}" in text(response)
    assert f'<a href="/builds/{release.pk}/"><code title="{release.digest}">' in response.content.decode()


def test_a_signature_build_shows_no_unknown_platform(client, signed):
    _, _, signature = signed
    page = text(client.get(f"/builds/{signature.pk}/"))
    assert "unknown" not in page
    assert "No platform images: cosign signatures are not images to run." in page


def test_the_signed_build_links_to_its_signature_build(client, signed):
    _, release, signature = signed
    content = client.get(f"/builds/{release.pk}/").content.decode()
    section = content[content.index("Artifact tags naming this build") :]
    assert artifact_tag(release.digest, ".sig") in section
    assert f'href="/builds/{signature.pk}/"' in section
    # and the release's page is not itself called an artifact of anything
    assert "of build" not in text(client.get(f"/builds/{release.pk}/")).split("References")[0]


def test_a_subject_not_recorded_here_is_named_but_not_linked(client):
    image, other = Image("acme/one"), Image("acme/two")
    elsewhere = other.release("1.0.0", "", "1.0.0")  # the same digest only in another repository
    signature = image.build()
    sign(image, elsewhere.digest, signature)
    response = client.get(f"/builds/{signature.pk}/")
    said = f"Cosign signature of build {short(elsewhere.digest)} (not recorded in this repository)"
    assert said in text(response)
    assert f"/builds/{elsewhere.pk}/" not in response.content.decode()


@pytest.mark.parametrize(
    "name",
    ["sha256-abc.sig", f"sha256-{'A' * 64}.sig", f"sha512-{'a' * 64}.sig", f"sha256-{'a' * 64}.sig.bak"],
)
def test_names_that_only_look_like_artifact_tags_name_no_build(client, name):
    image = Image("acme/lookalike")
    release = image.release("1.0.0", "", "1.0.0")
    other = image.build()
    image.tag(name, other)
    assert Tag.objects.get(name=name).kind != "artifact"
    assert "of build" not in text(client.get(f"/builds/{other.pk}/")).split("References")[0]
    assert "Artifact tags naming this build" not in text(client.get(f"/builds/{release.pk}/"))


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_build_pages_cost_the_same_queries_however_many_artifacts_link_them(client):
    def story(name: str, artifacts: int):
        image = Image(name)
        release = image.release("1.0.0", "", "1.0.0")
        signature = image.build()
        for suffix in [".sig", ".att", ".sbom", ""][:artifacts]:
            sign(image, release.digest, signature, suffix)
            sign(image, image.release("1.0.1", "", f"1.0.1-{len(suffix)}").digest, signature, suffix)
        return release, signature

    few = story("acme/few", 1)
    many = story("acme/many", 4)
    for one, other in zip(few, many, strict=True):
        assert count_queries(client, f"/builds/{one.pk}/") == count_queries(client, f"/builds/{other.pk}/")
