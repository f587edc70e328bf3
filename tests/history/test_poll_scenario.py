"""Five days in the life of a python-like repository, polled for real: the exact history recorded.

Images are pushed straight to the real registry; tagledger watches the repository through a
fault proxy with no rules, so every request a poll makes can be counted.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
import requests

from catalog.models import Line, Repository, Tag, Version
from history.models import Build, Platform, PollRun, TagEvent, TagState
from history.polling import poll
from tests.history.factories import during, events_of, short, watch
from tests.support.faultproxy import FaultProxy
from tests.support.oracle import skopeo_digest, skopeo_inspect
from tests.support.pusher import OCI_MANIFEST, Blob, Pusher, image_manifest
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.django_db

MANIFESTS = r"/manifests/"
BLOBS = r"/blobs/"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
VERSION_LABEL = "org.opencontainers.image.version"


# --- helpers: reading what was recorded ---------------------------------------------------------


def current(repository: Repository) -> dict[str, str | None]:
    """Where each tag points now according to tagledger (None: deleted)."""
    return {
        state.tag.name: short(state.build.digest) if state.present else None
        for state in TagState.objects.filter(tag__repository=repository).select_related("tag", "build")
    }


def all_events(repository: Repository) -> int:
    return TagEvent.objects.filter(tag__repository=repository).count()


def registry_tags(registry: RunningRegistry, name: str) -> list[str]:
    response = requests.get(f"{registry.url}/v2/{name}/tags/list", timeout=10)
    response.raise_for_status()
    return sorted(response.json().get("tags") or [])


# --- helpers: polling ----------------------------------------------------------------------------


def polled(repository: Repository) -> PollRun:
    """A poll that must end ok; checks the `not_before` window of everything it recorded."""
    run = poll(repository)
    assert (run.status, run.error) == (PollRun.Status.OK, "")
    assert run.changes == run.events.count()
    assert_honest_windows(run)
    return run


def assert_honest_windows(run: PollRun) -> None:
    """Each change happened after the last poll that saw the old state asked, and before this
    poll's answer arrived: both times fall within their polls."""
    previous = run.repository.polls.filter(started_at__lt=run.started_at).order_by("-started_at").first()
    for event in run.events.select_related("tag"):
        assert during(run, event.detected_at)
        if event.kind == TagEvent.Kind.CREATED:
            assert event.not_before is None
            continue
        assert during(previous, event.not_before), event
        assert event.not_before < event.detected_at


def quiet_repoll(repository: Repository, proxy: FaultProxy, registry: RunningRegistry) -> PollRun:
    """Nothing changed: no rows, one HEAD per tag, not a single manifest or blob GET."""
    listed = [tag for tag in registry_tags(registry, repository.name) if repository.wants_tag(tag)]
    before = all_events(repository)
    proxy.reset()

    run = polled(repository)

    assert run.changes == run.gets == run.blob_gets == 0
    assert run.tags_seen == run.heads == len(listed)
    assert all_events(repository) == before
    assert proxy.count("GET", MANIFESTS) == proxy.count("GET", BLOBS) == 0
    assert sorted(r.path.rsplit("/", 1)[1] for r in proxy.find("HEAD", MANIFESTS)) == listed
    # the confirmations moved, so the next change gets this poll as its not_before
    confirmed = TagState.objects.filter(tag__repository=repository).values_list("confirmed_at", flat=True)
    assert all(during(run, at) for at in confirmed)
    return run


def assert_digests_match_skopeo(repository: Repository, registry: RunningRegistry) -> None:
    """Every tag's recorded build, and every stored platform and image ID, as skopeo reads them."""
    name = repository.name
    for tag, digest in current(repository).items():
        if digest is not None:
            state = TagState.objects.get(tag__repository=repository, tag__name=tag)
            assert state.build.digest == skopeo_digest(registry.host, name, tag), tag
    for platform in Platform.objects.filter(build__repository=repository).select_related("build"):
        raw = json.loads(skopeo_inspect(registry.host, name, platform.build.digest))
        children = {child["digest"] for child in raw.get("manifests", [])} or {platform.build.digest}
        assert platform.digest in children
        assert platform.digest == skopeo_digest(registry.host, name, platform.digest)
        config = skopeo_inspect(registry.host, name, platform.digest, "--config")
        assert platform.config_digest == "sha256:" + hashlib.sha256(config).hexdigest()


# --- helpers: pushing ----------------------------------------------------------------------------


def push_python(pusher: Pusher, name: str, version: str, *, seed: str, tags=(), variant="", created=None):
    """A two-platform python build, tagged `version[-variant]` and then each of `tags`."""
    exact = f"{version}-{variant}" if variant else version
    pushed = pusher.push(
        name, exact, "oci-index", seed=seed, created=created or "2026-11-26T12:00:00Z",
        labels={VERSION_LABEL: version, "build": seed},
        env=["PATH=/usr/local/bin:/usr/bin", f"PYTHON={version}"],
    )  # fmt: skip
    for tag in tags:
        pusher.tag(name, exact, tag)
    return pushed


def push_signature(pusher: Pusher, name: str, subject: str) -> str:
    """A cosign-style signature of `subject`: its config is a simplesigning payload, not an image config."""
    payload = json.dumps(
        {"critical": {"identity": {"docker-reference": name}, "image": {"docker-manifest-digest": subject},
                      "type": "cosign container image signature"}, "optional": None},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    config = Blob(payload, COSIGN_SIMPLESIGNING)
    layer = Blob(payload, COSIGN_SIMPLESIGNING)
    pusher.push_blob(name, config)
    body = image_manifest(config, [layer], annotations={"dev.cosignproject.cosign/signature": "MEUCIQDtest"})
    tag = f"sha256-{subject.split(':', 1)[1]}.sig"
    pusher.put_manifest(name, tag, body, OCI_MANIFEST)
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --- the story -----------------------------------------------------------------------------------


def test_five_days_of_a_python_repository(pusher, registry, fault_proxy, repo_name):
    name = repo_name
    repository = watch(fault_proxy, name)

    # Day 1 — 3.14.4 (multi-arch) with its floating tags and a timestamp tag, a dev variant,
    # an older 3.13.9 (Docker manifest list), a cosign signature and a branch tag.
    day1 = push_python(pusher, name, "3.14.4", seed="3.14.4 day 1",
                       tags=["3.14", "3", "latest", "3.14.4-202611261200"])  # fmt: skip
    dev = push_python(pusher, name, "3.14.4", variant="dev", seed="dev day 1", tags=["latest-dev"])
    old = pusher.push(name, "3.13.9", "docker-list", seed="3.13.9", labels={VERSION_LABEL: "3.13.9"})
    signature = push_signature(pusher, name, day1.digest)
    main = pusher.push(name, "main", "oci", seed="main branch")
    sig_tag = f"sha256-{day1.digest.split(':')[1]}.sig"
    d1, dv, od, sg, mn = (short(x) for x in (day1.digest, dev.digest, old.digest, signature, main.digest))

    run = polled(repository)

    assert events_of(run) == [
        ("3", "created", d1, None),
        ("3.13.9", "created", od, None),
        ("3.14", "created", d1, None),
        ("3.14.4", "created", d1, None),
        ("3.14.4-202611261200", "created", d1, None),
        ("3.14.4-dev", "created", dv, None),
        ("latest", "created", d1, None),
        ("latest-dev", "created", dv, None),
        ("main", "created", mn, None),
        (sig_tag, "created", sg, None),
    ]
    assert (run.tags_seen, run.heads) == (10, 10)
    # one GET per new manifest (5 top-level + 6 platform children), one blob GET per image config
    # (6 platforms + main); the signature's config is not an image config, so it is never fetched,
    # but its layer is: the supply chain of the build it signs (history.attachments).
    assert (run.gets, run.blob_gets) == (5 + 6, 6 + 1 + 1)
    assert fault_proxy.count("GET", BLOBS) == 8

    build = Build.objects.get(repository=repository, digest=day1.digest)
    assert (str(build.version), build.version.line.name, build.version.variant) == ("3.14.4", "3.14", "")
    assert build.built_at == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # from 3.14.4-202611261200
    assert build.created == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # from the image configs
    assert build.media_type == "application/vnd.oci.image.index.v1+json"
    platforms = build.platforms.order_by("architecture")
    assert [(p.os, p.architecture, p.variant, p.digest, p.config_digest) for p in platforms] == [
        ("linux", "amd64", "", day1.child_digests[0], day1.config_digests[0]),
        ("linux", "arm64", "v8", day1.child_digests[1], day1.config_digests[1]),
    ]
    for platform, child in zip(platforms, day1.child_digests, strict=True):
        body, _ = pusher.get_manifest(name, child)
        assert [layer["digest"] for layer in platform.layers] == [
            layer["digest"] for layer in json.loads(body)["layers"]
        ]
        assert platform.config["labels"] == {VERSION_LABEL: "3.14.4", "build": "3.14.4 day 1"}
        assert platform.config["env"] == ["PATH=/usr/local/bin:/usr/bin", "PYTHON=3.14.4"]

    dev_build = Build.objects.get(repository=repository, digest=dev.digest)
    assert (dev_build.version.name, dev_build.version.variant, str(dev_build.version.line)) == (
        "3.14.4", "dev", "3.14-dev",
    )  # fmt: skip
    assert dev_build.built_at is None
    old_build = Build.objects.get(repository=repository, digest=old.digest)
    assert (str(old_build.version), str(old_build.version.line)) == ("3.13.9", "3.13")
    assert old_build.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert old_build.platforms.count() == 2
    signature_build = Build.objects.get(repository=repository, digest=signature)
    assert signature_build.version is None
    assert signature_build.platforms.filter(config__labels__isnull=False).count() == 0
    assert Tag.objects.get(repository=repository, name=sig_tag).subject_digest == day1.digest
    assert Build.objects.get(repository=repository, digest=main.digest).version is None
    assert sorted(map(str, Line.objects.filter(repository=repository))) == ["3.13", "3.14", "3.14-dev"]
    assert_digests_match_skopeo(repository, registry)

    quiet_repoll(repository, fault_proxy, registry)

    # Day 2 — 3.14.4 is rebuilt with new packages: new digest, new timestamp tag.
    day2 = push_python(pusher, name, "3.14.4", seed="3.14.4 day 2", created="2026-11-27T12:00:00Z",
                       tags=["3.14", "3", "latest", "3.14.4-202611271200"])  # fmt: skip
    d2 = short(day2.digest)

    run = polled(repository)

    assert events_of(run) == [
        ("3", "moved", d2, d1),
        ("3.14", "moved", d2, d1),
        ("3.14.4", "moved", d2, d1),
        ("3.14.4-202611271200", "created", d2, None),
        ("latest", "moved", d2, d1),
    ]
    assert current(repository)["3.14.4-202611261200"] == d1  # an immutable tag stays put
    version = Version.objects.get(repository=repository, name="3.14.4", variant="")
    assert [short(b.digest) for b in version.builds.order_by("first_seen_at")] == [d1, d2]
    assert Build.objects.get(digest=day2.digest).built_at == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    quiet_repoll(repository, fault_proxy, registry)

    # Day 3 — patch release 3.14.5: the floating tags move on, 3.14.4 stays.
    patch = push_python(pusher, name, "3.14.5", seed="3.14.5", tags=["3.14", "3", "latest"])
    d3 = short(patch.digest)

    run = polled(repository)

    assert events_of(run) == [
        ("3", "moved", d3, d2),
        ("3.14", "moved", d3, d2),
        ("3.14.5", "created", d3, None),
        ("latest", "moved", d3, d2),
    ]
    assert current(repository)["3.14.4"] == d2
    new_version = Version.objects.get(repository=repository, name="3.14.5")
    assert new_version.line == version.line
    assert [b.digest for b in new_version.builds.all()] == [patch.digest]

    quiet_repoll(repository, fault_proxy, registry)

    # Day 4 — the branch tag is deleted, then pushed again with the same content.
    pusher.delete(name, "main")

    run = polled(repository)

    assert events_of(run) == [("main", "deleted", None, mn)]
    assert current(repository)["main"] is None

    quiet_repoll(repository, fault_proxy, registry)  # still gone: confirmed, nothing recorded
    pusher.push(name, "main", "oci", seed="main branch")

    run = polled(repository)

    assert events_of(run) == [("main", "restored", mn, mn)]

    quiet_repoll(repository, fault_proxy, registry)

    # Day 5 — a timestamp tag moves, and so does 3.13.9, declared immutable by the repository.
    repository.immutable_pattern = r"3\.13\.9"
    repository.save()
    moved_stamp = push_python(pusher, name, "3.14.4", seed="tampered")
    pusher.tag(name, "3.14.4", "3.14.4-202611261200")
    pusher.tag(name, "3.14.4-202611271200", "3.14.4")  # put 3.14.4 back where it was
    moved_old = pusher.push(name, "3.13.9", "docker-list", seed="3.13.9 again")
    dt, do = short(moved_stamp.digest), short(moved_old.digest)

    run = polled(repository)

    assert events_of(run) == [
        ("3.13.9", "immutable_moved", do, od),
        ("3.14.4-202611261200", "immutable_moved", dt, d1),
    ]

    quiet_repoll(repository, fault_proxy, registry)
    assert_digests_match_skopeo(repository, registry)
    # History grew with changes, never with polls: 10 + 5 + 4 + 1 + 1 + 2 rows over 12 polls.
    assert all_events(repository) == 23
    assert repository.polls.count() == 12


def test_repository_immutable_pattern_is_a_full_match(pusher, fault_proxy, repo_name):
    repository = watch(fault_proxy, repo_name, immutable_pattern=r"3\.13")
    first = pusher.push(repo_name, "3.13", "oci", seed=1)
    pusher.tag(repo_name, "3.13", "3.13.9")
    polled(repository)
    second = pusher.push(repo_name, "3.13", "oci", seed=2)
    pusher.tag(repo_name, "3.13", "3.13.9")

    run = polled(repository)

    # `3.13.9` merely starts with the pattern: an ordinary move.
    assert events_of(run) == [
        ("3.13", "immutable_moved", short(second.digest), short(first.digest)),
        ("3.13.9", "moved", short(second.digest), short(first.digest)),
    ]


def test_excluded_tags_are_never_asked_for_nor_recorded(pusher, registry, fault_proxy, repo_name):
    repository = watch(fault_proxy, repo_name, include_pattern=r"^3\.", exclude_pattern=r"-dev$")
    pusher.push(repo_name, "3.14.4", "oci", seed="release")
    pusher.tag(repo_name, "3.14.4", "3.14")
    pusher.push(repo_name, "3.14.4-dev", "oci", seed="dev")
    pusher.tag(repo_name, "3.14.4", "main")

    run = polled(repository)

    assert [name for name, *_ in events_of(run)] == ["3.14", "3.14.4"]
    assert sorted(Tag.objects.filter(repository=repository).values_list("name", flat=True)) == [
        "3.14", "3.14.4",
    ]  # fmt: skip
    assert sorted(r.path.rsplit("/", 1)[1] for r in fault_proxy.find("HEAD", MANIFESTS)) == ["3.14", "3.14.4"]

    quiet_repoll(repository, fault_proxy, registry)

    # A tag excluded later is untracked: never asked for again, nor deleted, and no longer current.
    repository.exclude_pattern = r"-dev$|^3\.14$"
    repository.save()
    release = Tag.objects.get(repository=repository, name="3.14.4").state.build.digest
    pusher.delete(repo_name, "3.14.4")  # drops 3.14, 3.14.4 and main
    fault_proxy.reset()

    run = polled(repository)

    assert events_of(run) == [
        ("3.14", "untracked", None, short(release)),
        ("3.14.4", "deleted", None, short(release)),
    ]
    assert current(repository)["3.14"] is None
    assert fault_proxy.count("HEAD", r"/manifests/3\.14$") == 0

    # Taken back by the patterns and pushed again, it is asked for again and restored.
    repository.exclude_pattern = r"-dev$"
    repository.save()
    pusher.push(repo_name, "3.14", "oci", seed="release")

    run = polled(repository)

    assert events_of(run) == [("3.14", "restored", short(release), short(release))]


def test_a_real_cosign_signature_is_a_build_without_a_version_or_a_build_time(pusher, fault_proxy, repo_name):
    """cosign's own layout: an OCI image config with Go's zero time, and a simplesigning layer."""
    image = pusher.push(repo_name, "1.0.0", "oci", seed="signed")
    payload = b'{"critical":{"image":{"docker-manifest-digest":"%s"}}}' % image.digest.encode()
    layer = Blob(payload, COSIGN_SIMPLESIGNING)
    config = Blob(
        json.dumps({
            "architecture": "", "created": "0001-01-01T00:00:00Z", "os": "",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(payload).hexdigest()]},
            "config": {},
        }).encode(),
        "application/vnd.oci.image.config.v1+json",
    )  # fmt: skip
    pusher.push_blob(repo_name, layer)
    pusher.push_blob(repo_name, config)
    body = image_manifest(config, [layer])
    pusher.put_manifest(repo_name, f"sha256-{image.digest.split(':')[1]}.sig", body, OCI_MANIFEST)
    repository = watch(fault_proxy, repo_name)

    run = polled(repository)

    assert len(events_of(run)) == 2
    signature = Build.objects.get(repository=repository, digest="sha256:" + hashlib.sha256(body).hexdigest())
    assert signature.version is None
    # Go's zero time means "not set"; it must not become the oldest build ever seen.
    assert signature.created is None
