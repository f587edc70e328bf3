"""Real published tag sets, pushed to the real registry and polled: what a user reads back.

Every image of the corpus (tests/catalog/corpus) becomes one small image whose manifest is
tagged with that image's tags; one poll per repository; then the JSON API is read as a user's
tooling would. The grammar itself is checked on the same data in tests/catalog/test_tag_corpus.py.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from catalog.tags import Kind, TagInfo, classify, version_of
from history.models import Build, PollRun
from history.polling import poll
from tests.history.factories import watch
from tests.support import corpus
from tests.support.pusher import OCI_MANIFEST, Pusher, image_manifest, make_config, make_layer, sha256_digest
from tests.support.registry import RunningRegistry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

API = "/api/v1"
# Tags that name one build: an image named only by them may be an older build of its version.
PER_BUILD = (Kind.TIMESTAMP, Kind.REVISION)


@pytest.fixture(scope="module")
def pushed(registry: RunningRegistry) -> dict[str, dict[str, corpus.Image]]:
    """{repository path on the registry: {digest: the corpus image it stands for}}.

    Each image is one manifest over a layer and config shared by its repository, told apart by
    an annotation: the poll reads every manifest and config as it would for real images, and
    the push costs a PUT per tag rather than a whole image per group.
    """
    pusher = Pusher.for_registry(registry)
    layer = make_layer("corpus")
    config = make_config([layer])
    paths = {name: f"corpus/{index}" for index, name in enumerate(sorted(corpus.by_repository()))}

    def push(path: str, images: list[corpus.Image]) -> dict[str, corpus.Image]:
        pusher.push_blob(path, layer)
        pusher.push_blob(path, config)
        digests = {}
        for number, image in enumerate(images):
            body = image_manifest(config, [layer], annotations={"org.example.corpus.image": str(number)})
            for tag in image.tags:
                pusher.put_manifest(path, tag, body, OCI_MANIFEST)
            digests[sha256_digest(body)] = image
        return digests

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            grouped = corpus.by_repository()
            found = pool.map(lambda name: (paths[name], push(paths[name], grouped[name])), paths)
            return dict(found)
    finally:
        pusher.close()


def test_real_tag_sets_read_back_as_their_publishers_mean_them(pushed, registry, client):
    """One poll per repository (the expensive part), then each thing a user reads back."""
    polled = {}
    for path in pushed:
        repository = watch(registry, path)
        run = poll(repository)
        assert (run.status, run.error) == (PollRun.Status.OK, ""), path
        polled[path] = repository
    check_every_versioned_image_is_the_current_build_of_exactly_one_version_row(pushed, polled, client)
    check_date_stamped_tags_are_timestamp_tags_and_date_their_build(pushed, polled)
    check_no_version_row_is_named_by_a_date_or_a_floating_alias(pushed, polled, client)


def versions_of(client, repository) -> list[dict]:
    response = client.get(f"{API}/repositories/{repository.pk}/versions")
    assert response.status_code == 200, response.content[:500]
    return response.json()


def check_every_versioned_image_is_the_current_build_of_exactly_one_version_row(pushed, polled, client):
    """Images the corpus holds under one version (published at different times, each named only
    by a tag of its own: a timestamp, a revision) are that row's digest history; the row's
    current build is the one among them that a tag naming the version or floating into it holds."""
    placed, versioned, outside = 0, 0, []
    for path, images in pushed.items():
        rows = {(row["version"], row["variant"]): row for row in versions_of(client, polled[path])}
        versions = dict(Build.objects.filter(repository=polled[path]).values_list("digest", "version__name"))
        current = Counter(row["current_digest"] for row in rows.values())
        sharing: dict[tuple[str, str], list[tuple[str, TagInfo]]] = {}
        for digest, image in images.items():
            named = version_of(classify(tag) for tag in image.tags)
            if named is None:
                assert digest not in current, image
                continue
            versioned += 1
            sharing.setdefault((named.version, named.variant), []).append((digest, named))
        for key, named in sharing.items():
            row = rows.get(key)
            followed = [digest for digest, info in named if info.kind not in PER_BUILD]
            expected = followed or [digest for digest, _ in named]
            for digest, info in named:
                is_current = row is not None and row["current_digest"] == digest and current[digest] == 1
                in_history = (
                    row is not None
                    and versions[digest] == key[0]
                    and len(named) > 1
                    and info.kind in PER_BUILD
                )
                if (is_current and digest in expected) or (in_history and not is_current):
                    placed += 1
                else:
                    outside.append(f"{pushed[path][digest].repository}:{info.name} → {row}")
    corpus.share("polled images current in their version row, or in its history", placed, versioned, outside)
    assert outside == []


def check_date_stamped_tags_are_timestamp_tags_and_date_their_build(pushed, polled):
    for path, images in pushed.items():
        builds = {build.digest: build for build in Build.objects.filter(repository=polled[path])}
        kinds = dict(polled[path].tags.values_list("name", "kind"))
        for digest, image in images.items():
            stamps = sorted(stamped[0] for tag in image.tags if (stamped := corpus.stamp_in(tag)))
            for tag in image.tags:
                if corpus.stamp_in(tag):
                    assert kinds[tag] == Kind.TIMESTAMP, tag
            if stamps:
                assert builds[digest].built_at == stamps[0], image


def check_no_version_row_is_named_by_a_date_or_a_floating_alias(pushed, polled, client):
    for path in pushed:
        for row in versions_of(client, polled[path]):
            info = classify(row["version"])
            assert not corpus.stamp_in(row["variant"]), row
            assert info.kind not in (Kind.LATEST, Kind.FLOATING, Kind.ARTIFACT), row
