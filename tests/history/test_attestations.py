"""BuildKit attestation manifests are stored as the build's attestations, never as platforms.

`docker buildx` (and every Docker Official Image) adds one `unknown/unknown` manifest per platform
to the index, annotated as the attestation of that platform's image. Builds are pushed to the
real registry and polled through a fault proxy, which counts every request and, where the real
registry refuses what a hostile one could send, serves those bytes itself.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Repository
from catalog.oci import mediatypes
from catalog.oci.client import RegistryClient
from catalog.oci.errors import BadResponse
from catalog.oci.manifest import digest_of, parse_manifest
from history import slots, supply
from history.compare import compare
from history.models import Attestation, Build, Platform, PollRun, TagEvent
from history.polling import poll
from history.search import lookup
from tests.history import factories
from tests.history.factories import polled, watch
from tests.support.faultproxy import FaultProxy, Respond
from tests.support.pusher import (
    IN_TOTO,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    SLSA_V02,
    SLSA_V1,
    SPDX,
    Blob,
    Pusher,
    PushResult,
    attestation_annotations,
    attestation_manifest,
    index_manifest,
    make_statement,
    sha256_digest,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

MANIFESTS = r"/manifests/"
BLOBS = r"/blobs/"
API = "/api/v1"


@pytest.fixture
def buildx(pusher: Pusher, fault_proxy: FaultProxy, repo_name: str) -> SimpleNamespace:
    """`1.0`, pushed as buildx pushes it (2 platforms, 2 attestation manifests), watched through the proxy."""
    pushed = pusher.push_buildx_index(repo_name, "1.0", seed="day1")
    return SimpleNamespace(pushed=pushed, repository=watch(fault_proxy, repo_name))


def quick_client(repository: Repository) -> RegistryClient:
    """Retries that give up at once: the faults here would outlast any retry budget."""
    return RegistryClient(repository.registry.host, max_attempts=1, backoff=0.01, timeout=10.0)


def build_of(repository: Repository, pushed: PushResult) -> Build:
    return Build.objects.get(repository=repository, digest=pushed.digest)


def platforms_of(build: Build) -> dict[str, Platform]:
    return {str(platform): platform for platform in build.platforms.all()}


def attestations_of(build: Build) -> dict[str, Attestation]:
    """The build's attestations by the platform they describe ("-" when none of its platforms)."""
    return {
        str(attestation.platform) if attestation.platform else "-": attestation
        for attestation in build.attestations.select_related("platform")
    }


def serve(proxy: FaultProxy, repository: str, reference: str, body: bytes, media_type: str) -> str:
    """Have the proxy answer HEAD and GET of `reference` (and GET of the body's digest) with `body`:
    what a registry that does not validate manifests would send."""
    digest = sha256_digest(body)
    headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
    for method, ref in (("HEAD", reference), ("GET", reference), ("GET", digest)):
        proxy.add_rule(
            Respond(200, headers | {"Content-Length": str(len(body))}, b"" if method == "HEAD" else body),
            method=method,
            path=f"^/v2/{re.escape(repository)}/manifests/{re.escape(ref)}$",
        )
    return digest


def page_text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", body)


# --- the poll ---------------------------------------------------------------------------------------


def test_a_buildx_index_polls_into_two_platforms_and_their_two_attestations(buildx, fault_proxy, pusher):
    run = polled(buildx.repository)

    build = build_of(buildx.repository, buildx.pushed)
    platforms = platforms_of(build)
    assert sorted(platforms) == ["linux/amd64", "linux/arm64/v8"]
    assert not Platform.objects.filter(build__repository=buildx.repository, os="unknown").exists()
    attestations = attestations_of(build)
    assert sorted(attestations) == ["linux/amd64", "linux/arm64/v8"]
    amd64_image, arm64_image = buildx.pushed.child_digests
    amd64_attestation, arm64_attestation = buildx.pushed.attestation_digests
    amd64 = attestations["linux/amd64"]
    assert (amd64.digest, amd64.subject, amd64.platform) == (
        amd64_attestation,
        amd64_image,
        platforms["linux/amd64"],
    )
    assert (attestations["linux/arm64/v8"].digest, attestations["linux/arm64/v8"].subject) == (
        arm64_attestation, arm64_image,
    )  # fmt: skip
    body, _ = pusher.get_manifest(buildx.repository.name, amd64_attestation)
    assert (amd64.media_type, amd64.size) == (OCI_MANIFEST, len(body))
    assert amd64.predicate_types == [SPDX, SLSA_V1]
    assert amd64.predicates == [("SBOM (SPDX)", SPDX), ("Provenance (SLSA v1)", SLSA_V1)]
    statements = json.loads(body)["layers"]
    assert amd64.layers == [
        {"digest": layer["digest"], "size": layer["size"], "media_type": IN_TOTO, "predicate_type": kind}
        for layer, kind in zip(statements, [SPDX, SLSA_V1], strict=True)
    ]
    # one GET per manifest (index, 2 images, 2 attestations); blobs: the 2 image configs, and the
    # 4 statements, read for the build's supply chain (history.attachments), never a config of theirs
    assert (run.gets, run.blob_gets) == (5, 2 + 4)
    statements = {layer["digest"] for layer in statements}
    statements |= {layer["digest"] for layer in attestations["linux/arm64/v8"].layers}
    assert {record.path.rsplit("/", 1)[1] for record in fault_proxy.find("GET", BLOBS)} == (
        set(buildx.pushed.config_digests) | statements
    )


def test_a_repoll_fetches_nothing_and_changes_nothing(buildx, fault_proxy):
    polled(buildx.repository)
    rows = list(Attestation.objects.filter(build__repository=buildx.repository).values())
    fault_proxy.reset()

    run = polled(buildx.repository)

    assert (run.gets, run.blob_gets, run.changes) == (0, 0, 0)
    assert fault_proxy.count("GET", MANIFESTS) == fault_proxy.count("GET", BLOBS) == 0
    assert list(Attestation.objects.filter(build__repository=buildx.repository).values()) == rows


def test_only_the_attestations_of_wanted_platforms_are_fetched(buildx, fault_proxy):
    buildx.repository.platforms = "linux/amd64"
    buildx.repository.save()

    run = polled(buildx.repository)

    build = build_of(buildx.repository, buildx.pushed)
    assert list(platforms_of(build)) == ["linux/amd64"]
    assert list(attestations_of(build)) == ["linux/amd64"]
    assert fault_proxy.count("GET", buildx.pushed.attestation_digests[1]) == 0
    assert run.gets == 3  # the index, the amd64 image and its attestation


def test_a_failing_attestation_get_loses_nothing_else_of_the_build(buildx, fault_proxy, caplog):
    broken = buildx.pushed.attestation_digests[0]
    fault_proxy.add_rule(Respond(500), method="GET", path=f"/manifests/{broken}$")

    with (
        caplog.at_level(logging.WARNING, logger="history.polling"),
        quick_client(buildx.repository) as client,
    ):
        polled(buildx.repository, client)

    build = build_of(buildx.repository, buildx.pushed)
    assert sorted(platforms_of(build)) == ["linux/amd64", "linux/arm64/v8"]
    assert all(platform.config_digest for platform in build.platforms.all())
    assert list(attestations_of(build)) == ["linux/arm64/v8"]
    assert TagEvent.objects.filter(tag__repository=buildx.repository, build=build).count() == 1
    assert broken in caplog.text and "stored without its attestation manifest" in caplog.text
    # The build is known now: later polls fetch nothing, so it stays without that attestation.
    fault_proxy.clear_rules()
    fault_proxy.reset()
    polled(buildx.repository)
    assert fault_proxy.count("GET", MANIFESTS) == 0


def test_a_429_on_an_attestation_leaves_the_whole_build_to_the_next_poll(buildx, fault_proxy):
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": "60"}),
        method="GET",
        path=f"/manifests/{buildx.pushed.attestation_digests[1]}$",
    )

    with quick_client(buildx.repository) as client:
        run = poll(buildx.repository, client=client)

    assert run.status == PollRun.Status.FAILED and "429" in run.error
    assert not Build.objects.filter(repository=buildx.repository).exists()
    fault_proxy.clear_rules()
    cache.delete(slots._pause_key(buildx.repository.registry))  # as if the pause had run out
    polled(buildx.repository)
    assert sorted(attestations_of(build_of(buildx.repository, buildx.pushed))) == [
        "linux/amd64",
        "linux/arm64/v8",
    ]


# --- what a hostile registry can send -----------------------------------------------------------------


def nested(depth: int) -> dict:
    value: dict = {"leaf": [1, None, True]}
    for _ in range(depth):
        value = {"a": [value]}
    return value


def test_hostile_annotation_values_lose_nothing_else(pusher, fault_proxy, repo_name, client):
    """What distribution refuses to store (non-string annotations) the proxy serves as a registry that
    does not check would: attestation entries annotated with huge, nested and non-string values, an
    attestation manifest whose statements name predicate types of every JSON type, and far too many."""
    real = pusher.push_buildx_index(repo_name, "1.0", seed="day1", predicate_types=(SPDX, SLSA_V02))
    images = [pusher.get_manifest(repo_name, digest)[0] for digest in real.child_digests]
    amd64, arm64 = real.child_digests
    config = Blob(json.dumps({"architecture": "unknown", "os": "unknown"}).encode(), OCI_CONFIG)
    subject = PushResult(repo_name, amd64, amd64, b"", OCI_MANIFEST)
    kinds = [
        SLSA_V1,
        {"nested": nested(30)},
        12,
        None,
        ["x"],
        "https://x/" + "a" * 100_000,
        "https://x/\n<b>",
    ]
    kinds += [f"https://example.com/predicate/{number}" for number in range(150)]
    statements = [
        (make_statement(subject, str(kind)[:50], number), {supply.PREDICATE_TYPE: kind})
        for number, kind in enumerate(kinds)
    ]
    hostile = attestation_manifest(config, statements)
    hostile_digest = serve(fault_proxy, repo_name, sha256_digest(hostile), hostile, OCI_MANIFEST)
    arm64_attestation = real.attestation_digests[1]
    unknown = {"architecture": "unknown", "os": "unknown"}
    index = index_manifest(
        [
            (OCI_MANIFEST, images[0], real.platforms[0]),
            (OCI_MANIFEST, images[1], real.platforms[1]),
            (OCI_MANIFEST, hostile, unknown, attestation_annotations(amd64) | {
                "x-huge": "h" * 1_000_000, "x-nested": nested(50), "x-number": 5, "x-null": None,
            }),
            # not recognisably an attestation: the type is no string. Not a platform either.
            (OCI_MANIFEST, pusher.get_manifest(repo_name, arm64_attestation)[0], unknown,
             {"vnd.docker.reference.type": ["attestation-manifest"], "vnd.docker.reference.digest": arm64}),
        ],
    )  # fmt: skip
    serve(fault_proxy, repo_name, "1.0", index, OCI_INDEX)
    repository = watch(fault_proxy, repo_name)

    polled(repository)

    build = Build.objects.get(repository=repository)
    assert build.digest == sha256_digest(index)
    assert sorted(platforms_of(build)) == ["linux/amd64", "linux/arm64/v8"]
    assert all(platform.config_digest for platform in build.platforms.all())
    assert TagEvent.objects.filter(tag__repository=repository, build=build).count() == 1
    [attestation] = build.attestations.all()
    assert (attestation.digest, attestation.subject, attestation.platform) == (
        hostile_digest, amd64, platforms_of(build)["linux/amd64"],
    )  # fmt: skip
    assert len(attestation.layers) == supply.MAX_LAYERS
    assert attestation.predicate_types == [SLSA_V1] + [
        f"https://example.com/predicate/{number}" for number in range(supply.MAX_PREDICATE_TYPES - 1)
    ]
    assert [layer["predicate_type"] for layer in attestation.layers[:7]] == [SLSA_V1, "", "", "", "", "", ""]
    response = client.get(f"/builds/{build.pk}/")
    assert response.status_code == 200
    assert "unknown/unknown" not in page_text(response)
    assert "h" * 1000 not in response.content.decode()


def test_an_index_nested_too_deep_fails_only_its_tag(pusher, fault_proxy, repo_name):
    pusher.push_buildx_index(repo_name, "1.0", seed="day1")
    pusher.push_buildx_index(repo_name, "2.0", seed="day2")
    deep = b'{"schemaVersion":2,"mediaType":"%s","manifests":[],"annotations":{"a":%s%s}}' % (
        OCI_INDEX.encode(), b"[" * 100_000, b"]" * 100_000,
    )  # fmt: skip
    serve(fault_proxy, repo_name, "2.0", deep, OCI_INDEX)
    repository = watch(fault_proxy, repo_name)

    run = poll(repository)

    assert run.status == PollRun.Status.PARTIAL and "nests deeper" in run.error
    [build] = Build.objects.filter(repository=repository)
    assert build.attestations.count() == 2


BOUNDED = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@BOUNDED
@given(entry=JSON, layer=JSON)
def test_any_json_in_annotations_parses_into_bounded_text_or_is_refused(entry, layer):
    layer_digest = digest_of(b"statement")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": layer_digest, "size": 1, "annotations": entry},
                {"mediaType": OCI_MANIFEST, "digest": layer_digest, "size": 1,
                 "annotations": {supply.REFERENCE_TYPE: layer, supply.REFERENCE_DIGEST: layer}},
            ],
        }
    ).encode()  # fmt: skip
    try:
        index = parse_manifest(body, mediatypes.OCI_INDEX, digest_of(body))
    except BadResponse:
        return
    for child in index.manifests:
        assert isinstance(supply.is_attestation(child), bool)
        assert supply.subject_of(child) in ("", layer)
    image = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": layer_digest, "size": 1},
                "layers": [{"mediaType": IN_TOTO, "digest": layer_digest, "size": 1,
                            "annotations": {supply.PREDICATE_TYPE: layer}}] * 3,
            }
        ).encode(),
        OCI_MANIFEST,
        layer_digest,
    )  # fmt: skip
    rows = supply.layer_rows(image.layers)
    for row in rows:
        kind = row["predicate_type"]
        assert isinstance(kind, str) and len(kind) <= supply.MAX_PREDICATE_TYPE_LENGTH
        assert kind == "" or (kind.isprintable() and ":" in kind and " " not in kind)
    assert len(supply.predicate_types(rows)) <= 1


# --- what readers show ------------------------------------------------------------------------------


def test_the_build_page_lists_each_platforms_attestations_under_it(buildx, client):
    polled(buildx.repository)
    build = build_of(buildx.repository, buildx.pushed)

    response = client.get(f"/builds/{build.pk}/")

    assert response.status_code == 200
    content, text = response.content.decode(), page_text(response)
    assert "unknown/unknown" not in text
    assert text.count("SBOM (SPDX)") == text.count("Provenance (SLSA v1)") == 2
    assert f'title="{SLSA_V1}"' in content and f'title="{SPDX}"' in content
    amd64_attestation, arm64_attestation = (digest[7:19] for digest in buildx.pushed.attestation_digests)
    # In the platforms section (the supply-chain section above it names them too, when unreadable).
    content = content[content.index("<h2>Platforms</h2>") :]
    amd64_at, arm64_at = (
        content.index("<strong>linux/amd64</strong>"),
        content.index("<strong>linux/arm64/v8</strong>"),
    )
    assert amd64_at < content.index(amd64_attestation) < arm64_at < content.index(arm64_attestation)
    assert text.count("1 attestation") == 2


def test_a_lookup_by_an_attestation_digest_finds_its_build_and_no_platform_image(buildx, client):
    polled(buildx.repository)
    build = build_of(buildx.repository, buildx.pushed)
    digest = buildx.pushed.attestation_digests[0]

    for query in (digest, digest[7:19], f"{buildx.repository.reference}@{digest}"):
        [match] = lookup(query).matches
        assert (match.build, match.matched, match.digest, match.platform, match.image_id) == (
            build, "attestation", digest, None, "",
        )  # fmt: skip
    [found] = client.get(f"{API}/search", {"q": digest}).json()["items"]
    assert (found["digest"], found["matched"], found["matched_digest"], found["platform"]) == (
        build.digest, "attestation", digest, None,
    )  # fmt: skip
    page = page_text(client.get("/search", {"q": digest}))
    assert f"attestation manifest {digest[7:19]}" in page and "unknown/unknown" not in page


def test_compare_sees_only_the_platform_images(buildx, pusher):
    polled(buildx.repository)
    rebuilt = pusher.push_buildx_index(buildx.repository.name, "1.0", seed="day2")
    polled(buildx.repository)

    comparison = compare(build_of(buildx.repository, buildx.pushed), build_of(buildx.repository, rebuilt))

    assert [diff.platform for diff in comparison.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert [diff.status for diff in comparison.platforms] == ["changed", "changed"]


def test_the_builds_api_lists_attestations_beside_platforms(buildx, client):
    polled(buildx.repository)

    [build] = client.get(f"{API}/repositories/{buildx.repository.pk}/versions/1.0/builds").json()["items"]

    assert [platform["architecture"] for platform in build["platforms"]] == ["amd64", "arm64"]
    amd64_image, _ = buildx.pushed.child_digests
    amd64 = next(item for item in build["attestations"] if item["subject"] == amd64_image)
    assert amd64 == {
        "digest": buildx.pushed.attestation_digests[0],
        "media_type": OCI_MANIFEST,
        "size": Attestation.objects.get(digest=buildx.pushed.attestation_digests[0]).size,
        "subject": amd64_image,
        "platform": "linux/amd64",
        "predicate_types": [SPDX, SLSA_V1],
    }
    assert len(build["attestations"]) == 2


# --- the data migration ---------------------------------------------------------------------------


@pytest.fixture
def conversion():
    return importlib.import_module("history.migrations.0006_attestations_from_platforms")


def legacy_build(repository: Repository, number: int) -> Build:
    """A build as polls before this change stored a buildx index: the attestation as a platform."""
    build = factories.build(repository, digest_of(f"index {number}".encode()), media_type=OCI_INDEX)
    layer = {"digest": digest_of(f"layer {number}".encode()), "size": 100, "media_type": OCI_MANIFEST}
    statements = [
        {"digest": digest_of(f"{kind} {number}".encode()), "size": 900, "media_type": IN_TOTO}
        for kind in "ab"
    ]

    def platform(name: str, os: str, architecture: str, **fields) -> Platform:
        digest = digest_of(f"{name} {number}".encode())
        return Platform(
            build=build, os=os, architecture=architecture, digest=digest, media_type=OCI_MANIFEST, **fields
        )

    Platform.objects.bulk_create(
        [
            platform("amd64", "linux", "amd64", config_digest=digest_of(b"config"), size=200, layers=[layer]),
            platform("att", "unknown", "unknown", config_digest=digest_of(b"att config"), size=1900,
                     layers=statements, config={"env": [], "labels": {}}),
            # unknown/unknown, but its layers are an image's: nothing shows it is an attestation
            platform("odd", "unknown", "unknown", size=100, layers=[layer]),
            platform("empty", "unknown", "unknown", size=0, layers=[]),
        ]
    )  # fmt: skip
    return build


def run_migration(function) -> None:
    function(apps, SimpleNamespace(connection=connection))


def test_the_data_migration_turns_legacy_attestation_platforms_into_attestations(
    registry, repo_name, conversion, monkeypatch
):
    repository = watch(registry, repo_name)
    builds = [legacy_build(repository, number) for number in range(5)]
    monkeypatch.setattr(conversion, "WINDOW", 3)  # several windows, some with nothing to convert

    run_migration(conversion.convert)
    run_migration(conversion.convert)  # again, as after an interrupted run: nothing more changes

    for number, build in enumerate(builds):
        assert sorted(map(str, build.platforms.all())) == ["linux/amd64"] + ["unknown/unknown"] * 2
        assert {platform.digest for platform in build.platforms.filter(os="unknown")} == {
            digest_of(f"odd {number}".encode()), digest_of(f"empty {number}".encode()),
        }  # fmt: skip
        [attestation] = build.attestations.all()
        assert (attestation.digest, attestation.media_type, attestation.size, attestation.subject) == (
            digest_of(f"att {number}".encode()), OCI_MANIFEST, None, "",
        )  # fmt: skip
        assert (attestation.platform, attestation.predicate_types) == (None, [])
        assert attestation.layers == [
            {"digest": digest_of(f"{kind} {number}".encode()), "size": 900, "media_type": IN_TOTO,
             "predicate_type": ""}
            for kind in "ab"
        ]  # fmt: skip

    run_migration(conversion.convert_back)

    assert not Attestation.objects.filter(build__in=builds).exists()
    back = Platform.objects.get(digest=digest_of(b"att 0"))
    assert (str(back), back.size, len(back.layers)) == ("unknown/unknown", 1800, 2)


def test_the_build_page_shows_converted_attestations_apart_from_platforms(
    registry, repo_name, conversion, client
):
    build = legacy_build(watch(registry, repo_name), 0)
    run_migration(conversion.convert)

    text = page_text(client.get(f"/builds/{build.pk}/"))

    assert "Attestations of no platform recorded here" in text
    assert "statements of unrecorded types" in text and "the image it describes was not recorded" in text
    assert digest_of(b"att 0")[7:19] in text
