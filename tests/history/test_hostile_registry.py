"""A hostile registry fails only the tags it concerns, and never hides a move (issue 10, item 1).

One repository on the real registry holds good tags and one tag per hostile value, in an image
config, in a manifest or in the HTTP headers of one tag's answers, and is polled twice through
the fault proxy. Between the polls the immutable tag 1.0.0 is pushed again with new content and
latest moves to a new 2.0.0. The second poll must record those moves, record each tag whose
garbage is only informational with the garbage dropped, fail only the tags whose structure is
broken (the poll `partial`, naming each with its reason), invent nothing, and every page and API
answer must show what it stored, escaped.

Configs are stored unparsed by distribution, so every config case is really in the registry.
Distribution parses manifests with Go's types; what it refuses on push (a size past int64, a
non-string annotation, a 200 000-deep array) the fault proxy serves instead, under a
Docker-Content-Digest that matches the bytes. Tags are `6.6.6-<case>`: each case its own variant
of one version, so each gets a version page too.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest

from catalog.models import Registry, Repository
from catalog.oci.client import MAX_RETRY_AFTER, RegistryClient
from history import slots
from history.models import Build, Platform, PollRun, TagEvent, TagState
from history.polling import poll
from tests.history.factories import events_of, short, watch
from tests.support.faultproxy import (
    Action,
    FaultProxy,
    Respond,
    RewriteHeader,
    SetContentLength,
    SetHeader,
    TamperBody,
    registry_error,
)
from tests.support.hostile import XSS, HostileImages, deep, wire
from tests.support.pusher import Pusher, PushResult
from tests.support.registry import RunningRegistry, unique_repository

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public")]

RECORDED = "recorded"  # the value only informs: the tag is recorded as usual, the value dropped
FAILED = "failed"  # the document cannot be read: that tag alone fails, with its reason
MAX_BIGINT = 2**63 - 1
LONG_MEDIA_TYPE = "application/vnd.example." + "x" * 10_000 + "+json"
DEPTH = r"deep|depth|nest|recurs"
# Pages of ordinary rows render in well under a second even here; a registry's bulk (100 000
# labels) must not hold a worker for long, so each answer has a bound with a wide margin.
RENDER_SECONDS = 5.0


# --- the cases ------------------------------------------------------------------------------------


@dataclass
class Stored:
    """What the poll stored for one recorded tag."""

    build: Build
    platforms: list[Platform]

    @property
    def config(self) -> dict:
        """The config summary of a single-platform image."""
        assert len(self.platforms) == 1, [str(platform) for platform in self.platforms]
        return self.platforms[0].config


Maker = Callable[[HostileImages, str], str]  # (images, tag) -> the digest the tag answers with


@dataclass(frozen=True)
class Case:
    id: str
    outcome: str
    build: Maker
    stored: Callable[[Stored], None] = lambda stored: None  # RECORDED: what must be kept or dropped
    reason: str = ""  # FAILED: what the poll's error must say about the tag (a regex)

    @property
    def tag(self) -> str:
        return f"6.6.6-{self.id}"


def created_dropped(raw: str | None = None) -> Callable[[Stored], None]:
    """A time that is no time: no `created` on the build or platform; raw text kept for display."""

    def check(stored: Stored) -> None:
        assert stored.build.created is None
        assert [platform.created for platform in stored.platforms] == [None]
        if raw is not None:
            assert stored.config.get("created") == raw, "the raw text is kept for display"

    return check


def dropped(*fields: str) -> Callable[[Stored], None]:
    def check(stored: Stored) -> None:
        assert {field: stored.config.get(field) for field in fields if stored.config.get(field)} == {}

    return check


def kept(field: str, expected: Any) -> Callable[[Stored], None]:
    def check(stored: Stored) -> None:
        assert stored.config.get(field) == expected

    return check


def labels_include(expected: dict[str, str]) -> Callable[[Stored], None]:
    """The clean labels survive their hostile neighbours."""

    def check(stored: Stored) -> None:
        labels = stored.config.get("labels") or {}
        assert {key: labels.get(key) for key in expected} == expected

    return check


def annotations(expected: dict[str, str], *, exactly: bool) -> Callable[[Stored], None]:
    def check(stored: Stored) -> None:
        found = stored.build.annotations
        assert (found if exactly else {key: found.get(key) for key in expected}) == expected

    return check


def no_os_or_architecture(stored: Stored) -> None:
    assert [(p.os, p.architecture) for p in stored.platforms] == [("", "")]


def three_platforms(stored: Stored) -> None:
    """Each entry's image is recorded; what its `platform` says is informational."""
    assert len(stored.platforms) == 3


def many_labels(stored: Stored) -> None:
    """A hundred thousand labels are a lot, not a lie: stored (or capped), never a failure."""
    labels = stored.config.get("labels") or {}
    assert labels, "a bound on labels may cap them, not drop them all"
    assert all(labels[key] == key.removeprefix("label.") for key in labels if key != "case")


def nothing_more(stored: Stored) -> None:
    pass


def header_fault(action: Action, *, method: str = "HEAD", on: str = "tag") -> Maker:
    return lambda images, tag: images.faulty(tag, action, method=method, on=on)


def retry_after(value: str) -> Respond:
    return Respond(503, {"Retry-After": value}, registry_error("UNAVAILABLE", "try later"))


FAR_FUTURE = "9999-12-31T23:59:59-23:59"  # a valid ISO 8601 text whose UTC instant is in year 10000
SURROGATES = json.loads('{"\\ud800key": "v", "lone": "\\udfff", "ok": "yes"}')

CASES = [
    # --- the image config: distribution stores it unparsed, so each is really in the registry
    Case("created-far-future", RECORDED, lambda h, t: h.image(t, config={"created": FAR_FUTURE}),
         created_dropped(FAR_FUTURE)),
    Case("created-year-one", RECORDED, lambda h, t: h.image(t, config={"created": "0001-01-01T00:00:00Z"}),
         created_dropped("0001-01-01T00:00:00Z")),
    Case("created-not-a-date", RECORDED, lambda h, t: h.image(t, config={"created": "not a date"}),
         created_dropped("not a date")),
    Case("created-script", RECORDED, lambda h, t: h.image(t, config={"created": XSS}), created_dropped(XSS)),
    Case("created-number", RECORDED, lambda h, t: h.image(t, config={"created": 12345}), created_dropped()),
    Case("created-null", RECORDED, lambda h, t: h.image(t, config={"created": None}), created_dropped()),
    Case("created-object", RECORDED, lambda h, t: h.image(t, config={"created": {"at": 1}}),
         created_dropped()),
    Case("ports-number", RECORDED, lambda h, t: h.image(t, settings={"ExposedPorts": 5}),
         dropped("exposed_ports")),
    Case("ports-true", RECORDED, lambda h, t: h.image(t, settings={"ExposedPorts": True}),
         dropped("exposed_ports")),
    # An object is what the spec allows: a string is not read character by character.
    Case("ports-string", RECORDED, lambda h, t: h.image(t, settings={"ExposedPorts": "80/tcp"}),
         dropped("exposed_ports")),
    Case("ports-list", RECORDED, lambda h, t: h.image(t, settings={"ExposedPorts": ["80/tcp"]}),
         dropped("exposed_ports")),
    Case("labels-not-strings", RECORDED,
         lambda h, t: h.image(t, settings={"Labels": {
             "number": 1, "float": 1.5, "bool": True, "null": None, "object": {"a": "b"}, "list": ["x"],
             "ok": "yes", "xss": XSS}}),
         kept("labels", {"ok": "yes", "xss": XSS})),
    Case("labels-nul", RECORDED,
         lambda h, t: h.image(t, settings={"Labels": {
             "nul\u0000key": "v", "nul-value": "a\u0000b", "ok": "yes"}}),
         labels_include({"ok": "yes"})),
    Case("labels-surrogates", RECORDED, lambda h, t: h.image(t, settings={"Labels": SURROGATES}),
         labels_include({"ok": "yes"})),
    Case("labels-not-an-object", RECORDED, lambda h, t: h.image(t, settings={"Labels": ["a=b"]}),
         dropped("labels")),
    Case("labels-many", RECORDED,
         lambda h, t: h.image(t, settings={"Labels": {f"label.{n}": str(n) for n in range(100_000)}}),
         many_labels),
    Case("env-cmd-numbers", RECORDED,
         lambda h, t: h.image(t, settings={"Env": 5, "Cmd": 7, "Entrypoint": 1.5}),
         dropped("env", "cmd", "entrypoint")),
    Case("env-cmd-objects", RECORDED,
         lambda h, t: h.image(t, settings={"Env": {"PATH": "/bin"}, "Cmd": {"0": "sh"}}),
         dropped("env", "cmd")),
    Case("env-mixed-list", RECORDED,
         lambda h, t: h.image(t, settings={"Env": [1, "A=B", None, {"x": 1}, True]}),
         kept("env", ["A=B"])),
    Case("history-object", RECORDED, lambda h, t: h.image(t, config={"history": {"created_by": "x"}}),
         dropped("history")),
    Case("rootfs-list", RECORDED, lambda h, t: h.image(t, config={"rootfs": ["layers"]}), nothing_more),
    Case("config-not-an-object", RECORDED, lambda h, t: h.image(t, config={"config": "x"}),
         dropped("labels", "env", "cmd")),
    Case("os-architecture-objects", RECORDED,
         lambda h, t: h.image(t, config={"os": {"name": "linux"}, "architecture": 64}),
         no_os_or_architecture),
    # Nesting past any bound: the document cannot be read, so nothing in it can be trusted.
    Case("config-deep", FAILED, lambda h, t: h.image(t, settings={"Labels": {"deep": deep(200_000)}}),
         reason=DEPTH),
    # --- the manifest (serve=True: distribution refuses it on push, the proxy serves it)
    Case("annotations-nul-surrogates", RECORDED,
         lambda h, t: h.image(t, manifest={"annotations": {
             "nul\u0000key": "v", "nul": "a\u0000b", "sur\ud800": "x", "lone": "\udfff",
             "ok": "yes", "xss": XSS}}),
         annotations({"ok": "yes", "xss": XSS}, exactly=False)),
    Case("annotations-not-strings", RECORDED,
         lambda h, t: h.image(t, serve=True, manifest={"annotations": {
             "number": 1, "bool": True, "null": None, "object": {}, "list": ["x"], "ok": "yes"}}),
         annotations({"ok": "yes"}, exactly=True)),
    Case("annotations-not-an-object", RECORDED,
         lambda h, t: h.image(t, serve=True, manifest={"annotations": ["a=b"]}),
         annotations({}, exactly=True)),
    # Accepted by distribution: each size fits int64, their sum does not.
    Case("sizes-summing-past-int64", RECORDED,
         lambda h, t: h.image(t, layers=[{"size": MAX_BIGINT}, {"size": MAX_BIGINT}],
                              descriptor={"size": MAX_BIGINT}),
         nothing_more),
    Case("sizes-past-int64", RECORDED,
         lambda h, t: h.image(t, serve=True, layers=[{"size": 10**20}], descriptor={"size": 10**20}),
         nothing_more),
    Case("layer-media-type-long", RECORDED,
         lambda h, t: h.image(t, layers=[{"mediaType": LONG_MEDIA_TYPE}]), nothing_more),
    # Not an image config's type: an artifact, recorded without a platform image.
    Case("config-media-type-long", RECORDED,
         lambda h, t: h.image(t, descriptor={"mediaType": LONG_MEDIA_TYPE}), nothing_more),
    Case("manifest-media-type-long", FAILED,
         lambda h, t: h.image(t, serve=True, manifest={"mediaType": LONG_MEDIA_TYPE}),
         reason=r"media.?type|content.?type"),
    Case("manifest-deep-200000", FAILED,
         lambda h, t: h.image(t, serve=True, manifest={"nested": deep(200_000)}), reason=DEPTH),
    # Go's decoder stops at 10 000 levels, so this one distribution stores.
    Case("manifest-deep-9000", FAILED, lambda h, t: h.image(t, manifest={"nested": deep(9_000)}),
         reason=DEPTH),
    Case("index-platforms-not-strings", RECORDED,
         lambda h, t: h.index(t, [
             {"os": {"name": "linux"}, "architecture": ["amd64"], "variant": 8},
             "linux/amd64",
             {"os": "linux", "architecture": "arm64", "variant": XSS},
         ], serve=True),
         three_platforms),
    Case("index-manifests-not-a-list", FAILED,
         lambda h, t: h.index(t, [], manifest={"manifests": {"0": "x"}}, serve=True), reason=r"manifests"),
    # --- one tag's HTTP headers, through the fault proxy
    # "²".isdigit() is true, yet int("²") raises: only ASCII digits are a number of seconds.
    Case("retry-after-superscript", FAILED, header_fault(retry_after("²")), reason=r"503"),
    Case("retry-after-huge", FAILED, header_fault(retry_after("99999999999999999999")), reason=r"503"),
    Case("retry-after-on-manifest-get", FAILED,
         header_fault(retry_after("³"), method="GET", on="manifest"), reason=r"503"),
    Case("retry-after-on-config-get", FAILED,
         header_fault(retry_after("¹"), method="GET", on="config"), reason=r"503"),
    # A HEAD's Content-Length is informational; the digest header is what counts.
    Case("content-length-superscript", RECORDED, header_fault(SetHeader("Content-Length", "²")),
         nothing_more),
    # "٣" can only reach the client as its UTF-8 bytes, read as latin-1: "Ù£".
    Case("content-length-arabic-indic", RECORDED, header_fault(SetHeader("Content-Length", wire("٣"))),
         nothing_more),
    Case("content-length-huge", RECORDED,
         header_fault(SetHeader("Content-Length", "99999999999999999999999")), nothing_more),
    # A body's Content-Length that is no number leaves the body without an end: unreadable.
    Case("content-length-on-manifest-get", FAILED,
         header_fault(SetContentLength("²"), method="GET", on="manifest"), reason=r"content.?length"),
    Case("content-length-on-config-get", FAILED,
         header_fault(SetContentLength(wire("٣")), method="GET", on="config"), reason=r"content.?length"),
]  # fmt: skip
RECORDED_CASES = [case for case in CASES if case.outcome == RECORDED]
FAILED_CASES = [case for case in CASES if case.outcome == FAILED]
GOOD_TAGS = ("1.0.0", "2.0.0", "latest", "main")


def case_id(case: Case) -> str:
    return case.id


# --- the scene: two polls, shared by every test here ------------------------------------------------


@dataclass
class Scene:
    repository: Repository
    first: PollRun
    run: PollRun  # the poll that met the hostile tags
    crash: str  # poll()'s traceback, if it raised
    digests: dict[str, str]  # case id -> the digest its tag answered with
    original: PushResult  # 1.0.0 at the first poll
    moved: PushResult  # 1.0.0 at the second
    release: PushResult  # 2.0.0, where latest moved
    main: PushResult

    @property
    def crashed(self) -> str:
        """For assertion messages: why nothing may have been recorded."""
        return f"\n(the poll raised:\n{self.crash})" if self.crash else ""

    def state(self, tag: str) -> TagState | None:
        found = TagState.objects.select_related("tag", "build").filter(tag__repository=self.repository)
        return found.filter(tag__name=tag).first()


def quick_poll(repository: Repository) -> PollRun:
    """poll() with a client whose retries are quick: the 503s here outlast any retry budget."""
    with RegistryClient(
        repository.registry.host, backoff=0.01, max_backoff=1.0, max_attempts=3, timeout=10.0
    ) as client:
        return poll(repository, client=client)


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker, registry: RunningRegistry) -> Iterator[Scene]:
    """The repository after both polls. Its rows are committed, outside the tests' transactions,
    so that each test reads the one registry round trip; they are deleted at the end."""
    name = unique_repository("hostile-registry")
    pusher = Pusher.for_registry(registry)
    with FaultProxy(registry.url) as proxy:
        with django_db_blocker.unblock():
            original = pusher.push(name, "1.0.0", "oci-index", seed="1.0.0")
            pusher.tag(name, "1.0.0", "latest")
            main = pusher.push(name, "main", "oci", seed="main", labels={"org.example.note": XSS})
            repository = watch(proxy, name, immutable_pattern=r"1\.0\.0")
        try:
            with django_db_blocker.unblock():
                first = quick_poll(repository)
                assert (first.status, first.error) == (PollRun.Status.OK, "")
                moved = pusher.push(name, "1.0.0", "oci-index", seed="1.0.0 pushed again")
                release = pusher.push(name, "2.0.0", "oci-index", seed="2.0.0")
                pusher.tag(name, "2.0.0", "latest")
                images = HostileImages(pusher, proxy, name)
                digests = {case.id: case.build(images, case.tag) for case in CASES}
                crash = ""
                try:
                    run = quick_poll(repository)
                except Exception:  # the tests below fail with this traceback, each for its own reason
                    crash = traceback.format_exc()
                    run = repository.polls.order_by("-started_at").first()
            yield Scene(repository, first, run, crash, digests, original, moved, release, main)
        finally:
            with django_db_blocker.unblock():
                Repository.objects.filter(pk=repository.pk).delete()
                Registry.objects.filter(host=proxy.host).delete()
            pusher.close()


# --- the poll -------------------------------------------------------------------------------------


def named_in(error: str, tag: str) -> re.Match | None:
    # Tags share prefixes (6.6.6-…), so a name counts only where it stands whole.
    return re.search(rf"(?<![\w.-]){re.escape(tag)}(?![\w.-])", error)


def test_the_poll_ends_partial_and_names_exactly_the_broken_tags(scene):
    assert not scene.crash, scene.crash
    assert scene.run.status == PollRun.Status.PARTIAL, scene.run.error
    everything = [case.tag for case in CASES] + list(GOOD_TAGS)
    named = sorted(tag for tag in everything if named_in(scene.run.error, tag))
    assert named == sorted(case.tag for case in FAILED_CASES), scene.run.error
    # No Retry-After, however large, is slept through while the poll holds its worker.
    assert scene.run.duration.total_seconds() < 30


def test_the_immutable_tag_that_moved_is_recorded_in_the_same_poll(scene):
    assert events_of(scene.run).count(
        ("1.0.0", "immutable_moved", short(scene.moved.digest), short(scene.original.digest))
    ) == 1, f"{events_of(scene.run)}{scene.crashed}"  # fmt: skip
    state = scene.state("1.0.0")
    assert (state.present, state.build.digest) == (True, scene.moved.digest)


def test_the_other_good_tags_are_recorded_as_ever(scene):
    events = events_of(scene.run)
    assert ("latest", "moved", short(scene.release.digest), short(scene.original.digest)) in events, (
        f"{events}{scene.crashed}"
    )
    assert ("2.0.0", "created", short(scene.release.digest), None) in events
    release = Build.objects.get(repository=scene.repository, digest=scene.release.digest)
    platforms = sorted(platform.digest for platform in release.platforms.all())
    assert platforms == sorted(scene.release.child_digests)
    main = scene.state("main")
    assert (main.build.digest, main.confirmed_at >= scene.run.started_at) == (scene.main.digest, True)


def test_the_poll_records_nothing_it_did_not_see(scene):
    expected = [
        ("1.0.0", "immutable_moved", short(scene.moved.digest), short(scene.original.digest)),
        ("2.0.0", "created", short(scene.release.digest), None),
        ("latest", "moved", short(scene.release.digest), short(scene.original.digest)),
        *((case.tag, "created", short(scene.digests[case.id]), None) for case in RECORDED_CASES),
    ]
    assert events_of(scene.run) == sorted(expected), scene.crashed


# --- each hostile tag -------------------------------------------------------------------------------


def assert_storable(value: Any, where: str = "") -> None:
    """No NUL (PostgreSQL text refuses it), no lone surrogate (not UTF-8), no number past bigint."""
    if isinstance(value, str):
        assert "\x00" not in value, where
        value.encode()  # raises on a lone surrogate
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        assert 0 <= value <= MAX_BIGINT, where
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_storable(key, where)
            assert_storable(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            assert_storable(item, f"{where}[]")


@pytest.mark.parametrize("case", RECORDED_CASES, ids=case_id)
def test_a_tag_whose_garbage_is_informational_is_recorded_without_it(scene, case):
    state = scene.state(case.tag)
    assert state is not None, (
        f"{case.tag} was not recorded: {scene.run.status} {scene.run.error}{scene.crashed}"
    )
    assert (state.present, state.build.digest) == (True, scene.digests[case.id])
    assert list(state.tag.events.values_list("kind", flat=True)) == [TagEvent.Kind.CREATED]
    stored = Stored(state.build, list(state.build.platforms.order_by("pk")))
    assert 0 <= stored.build.size <= MAX_BIGINT
    assert_storable(stored.build.annotations, "annotations")
    for platform in stored.platforms:
        assert 0 <= platform.size <= MAX_BIGINT
        assert_storable(platform.config, "config")
        assert_storable(platform.layers, "layers")
    case.stored(stored)


@pytest.mark.parametrize("case", FAILED_CASES, ids=case_id)
def test_a_tag_whose_structure_is_broken_fails_alone_and_says_why(scene, case):
    assert not TagEvent.objects.filter(tag__repository=scene.repository, tag__name=case.tag).exists()
    assert scene.state(case.tag) is None
    assert not Build.objects.filter(repository=scene.repository, digest=scene.digests[case.id]).exists()
    found = named_in(scene.run.error, case.tag)
    assert found, f"the poll's error does not name {case.tag}: {scene.run.error!r}{scene.crashed}"
    # Whatever the error's layout, the reason stands next to the tag's name.
    around = scene.run.error[max(0, found.start() - 300) : found.end() + 300]
    assert re.search(case.reason, around, re.IGNORECASE), around


# --- every page that shows the stored rows ------------------------------------------------------


def fetch(client, url: str) -> str:
    """A page or API answer that renders: 200, in bounded time, UTF-8, nothing unescaped,
    well-formed JSON or XML."""
    started = time.monotonic()
    response = client.get(url)
    took = time.monotonic() - started
    assert response.status_code == 200, f"{url}: HTTP {response.status_code} {response.content[:300]!r}"
    assert took < RENDER_SECONDS, f"{url} took {took:.1f} s"
    body = response.content.decode()  # strict: a lone surrogate cannot get through
    assert "\x00" not in body, url
    kind = response["Content-Type"]
    if kind.startswith("application/json"):
        json.loads(body)
    else:
        assert XSS not in body, f"{url} shows {XSS} unescaped"
        if "xml" in kind:
            ElementTree.fromstring(response.content)  # noqa: S314 - our own feed
    return body


def query(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}"


PAGES: dict[str, Callable[[Scene], str]] = {
    "home": lambda s: "/",
    "repository": lambda s: f"/repositories/{s.repository.pk}/",
    "repository-inactive": lambda s: f"/repositories/{s.repository.pk}/?inactive=1",
    "repository-filtered": lambda s: query(f"/repositories/{s.repository.pk}/", q="6.6.6"),
    "repository-changelog": lambda s: f"/repositories/{s.repository.pk}/changelog",
    "changelog": lambda s: "/changelog",
    "changelog-feed": lambda s: "/changelog/feed.atom",
    "search-name": lambda s: query("/search", q=s.repository.name),
    "api-repositories": lambda s: "/api/v1/repositories",
    "api-tags": lambda s: f"/api/v1/repositories/{s.repository.pk}/tags",
    "api-events": lambda s: f"/api/v1/repositories/{s.repository.pk}/events?artifacts=true&limit=200",
    "api-versions": lambda s: f"/api/v1/repositories/{s.repository.pk}/versions",
    "api-search-name": lambda s: query("/api/v1/search", q=s.repository.name),
}


@pytest.mark.parametrize("page", PAGES)
def test_each_page_of_the_repository_renders(scene, client, page):
    fetch(client, PAGES[page](scene))


@pytest.mark.parametrize("case", RECORDED_CASES, ids=case_id)
def test_each_page_showing_a_recorded_tag_renders(scene, client, case):
    build = Build.objects.filter(repository=scene.repository, digest=scene.digests[case.id]).first()
    assert build is not None, f"{case.tag} was not recorded{scene.crashed}"
    reference = f"{scene.repository.reference}:{case.tag}@{build.digest}"
    urls = [
        f"/builds/{build.pk}/",
        query("/search", q=build.digest),
        query("/api/v1/search", q=build.digest),
        query("/search", q=reference),
        query("/compare", a=scene.release.digest, b=build.digest),
        query("/api/v1/compare", a=scene.release.digest, b=build.digest),
        query("/pins", ref=reference),
        query("/api/v1/pins", ref=reference),
    ]
    for platform in build.platforms.all():
        urls += [query("/search", q=platform.digest), query("/api/v1/search", q=platform.config_digest)]
    if build.version is not None:
        urls += [
            f"/versions/{build.version.pk}/",
            query(
                f"/api/v1/repositories/{scene.repository.pk}/versions/{build.version.name}/builds",
                variant=build.version.variant,
            ),
        ]
    for url in urls:
        fetch(client, url)


@pytest.mark.parametrize("case", FAILED_CASES, ids=case_id)
def test_looking_up_a_failed_tag_finds_nothing_and_renders(scene, client, case):
    digest = scene.digests[case.id]
    for url in (query("/search", q=digest), query("/search", q=f"{scene.repository.reference}:{case.tag}")):
        fetch(client, url)
    assert fetch(client, query("/api/v1/search", q=digest)).count(digest) <= 1  # the query, no match


def test_script_in_labels_and_annotations_is_shown_escaped(scene, client):
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for digest in (
        scene.main.digest,
        *(scene.digests[c] for c in ("labels-not-strings", "annotations-nul-surrogates")),
    ):
        build = Build.objects.filter(repository=scene.repository, digest=digest).first()
        assert build is not None, f"{digest} was not recorded{scene.crashed}"
        assert escaped in fetch(client, f"/builds/{build.pk}/"), digest


# --- what concerns every tag: the token, the tag list -------------------------------------------------


@pytest.mark.parametrize(
    "expires_in",
    [
        pytest.param("1e400", id="1e400"),  # a float JSON reads as inf
        pytest.param("1" + "0" * 400, id="ten-to-the-400"),  # an int no float holds
        pytest.param("Infinity", id="Infinity"),
        pytest.param("-1e400", id="minus-1e400"),
        pytest.param('"3600"', id="a-string"),
    ],
)
def test_a_token_answer_with_an_absurd_expiry_still_records_the_immutable_move(
    token_registry, token_server, make_pusher, repo_name, expires_in
):
    """The token answer is read through a proxy that writes `expires_in` as no JSON encoder
    would; the registry's challenge is rewritten to send the client there."""
    pusher = make_pusher(token_registry)
    original = pusher.push(repo_name, "1.0.0", "oci", seed="1.0.0")
    with FaultProxy(token_server.url) as tokens, FaultProxy(token_registry.url) as proxy:
        proxy.add_rule(RewriteHeader("WWW-Authenticate", token_server.realm, f"{tokens.url}/token"))
        repository = watch(proxy, repo_name, immutable_pattern=r"1\.0\.0")
        first = quick_poll(repository)
        assert (first.status, first.error) == (PollRun.Status.OK, "")
        moved = pusher.push(repo_name, "1.0.0", "oci", seed="1.0.0 pushed again")
        written = b'"expires_in": ' + expires_in.encode()
        rewrite = TamperBody(lambda body: re.sub(rb'"expires_in": *[0-9]+', written, body))
        tokens.add_rule(rewrite, path=r"^/token$")
        tokens.reset()

        run = quick_poll(repository)

        assert tokens.count("GET", r"^/token$", status=200) >= 1
        assert (run.status, run.error) == (PollRun.Status.OK, "")
        assert events_of(run) == [("1.0.0", "immutable_moved", short(moved.digest), short(original.digest))]


@pytest.mark.parametrize(
    "value",
    ["²", "³", wire("٣"), "99999999999999999999", "1e400", "-5", "NaN", wire("Ⅻ")],
    ids=["superscript-2", "superscript-3", "arabic-indic-3", "huge", "1e400", "negative", "NaN", "roman-12"],
)
def test_a_hostile_retry_after_on_the_tag_list_fails_the_poll_for_a_bounded_pause(
    pusher, fault_proxy, repo_name, value
):
    """The tag list concerns every tag, so its 429 fails the poll, with the registry's reason and a
    pause no longer than any Retry-After may ask for."""
    pusher.push(repo_name, "1.0.0", "oci")
    repository = watch(fault_proxy, repo_name)
    fault_proxy.add_rule(
        Respond(429, {"Retry-After": value}, registry_error("TOOMANYREQUESTS", "slow down")),
        method="GET", path=r"/tags/list$",
    )  # fmt: skip

    run = quick_poll(repository)

    assert run.status == PollRun.Status.FAILED
    assert "429" in run.error and "internal error" not in run.error, run.error
    assert slots.paused_until(repository.registry) <= time.time() + MAX_RETRY_AFTER
