"""Pin check: is each pinned digest still the build its tag points to, and what to pin instead.

History comes from real pushes to the real registry, recorded by real polls.
"""

import json
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from html import escape
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Registry, Repository, Tag
from history.models import Attestation, Build, Platform, TagEvent, TagState
from history.pins import MAX_INPUT, MAX_REFERENCES, PinError, check
from history.wording import format_time
from tests.history.factories import Image, polled, watch

pytestmark = pytest.mark.django_db

ZERO = "sha256:" + "0" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class History:
    """`3.12` rebuilt twice (b1 → b2 → b3); `3.12.1` stays on b1, `3.12.3` is b3; nothing else holds b2."""

    def __init__(self, registry, pusher, name):
        self.repository = watch(registry, name)
        self.ref = self.repository.reference
        self.pushed = []
        for day, exact in ((1, "3.12.1"), (2, None), (3, "3.12.3")):
            self.pushed.append(pusher.push(name, "3.12", "oci-index", seed=f"day {day}"))
            if exact:
                pusher.tag(name, "3.12", exact)
            polled(self.repository)
        self.b1, self.b2, self.b3 = (pushed.digest for pushed in self.pushed)

    def build(self, digest: str) -> Build:
        return Build.objects.get(repository=self.repository, digest=digest)


@pytest.fixture
def history(registry, pusher, repo_name) -> History:
    return History(registry, pusher, repo_name)


def moved_away(history, tag: str, digest: str):
    """When `tag` last left `digest`: the event after the last one that pointed it there."""
    events = TagEvent.objects.filter(tag__repository=history.repository, tag__name=tag).order_by(
        "detected_at"
    )
    last = events.filter(build__digest=digest).last()
    return events.filter(detected_at__gt=last.detected_at).first().detected_at


def only(text):
    (result,) = check(text)
    return result


# --- each status ----------------------------------------------------------------------------------


def test_a_pin_to_the_build_its_tag_points_to_now_is_current(history):
    result = only(f"{history.ref}:3.12@{history.b3}")

    assert (result.status, result.builds_behind, result.compare_url) == ("current", None, None)
    assert result.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert result.message == "The tag 3.12 points to this build now."
    state = TagState.objects.get(tag__repository=history.repository, tag__name="3.12")
    assert result.confirmed_at == state.confirmed_at
    assert only(f"{history.ref}:3.12.1@{history.b1}").status == "current"


def test_a_pin_two_rebuilds_ago_is_behind_by_two_with_a_compare_link(client, public, history):
    two, one = check([f"{history.ref}:3.12@{history.b1}", f"{history.ref}:3.12@{history.b2}"])

    assert (two.status, two.builds_behind) == ("behind", 2)
    assert (one.status, one.builds_behind) == ("behind", 1)
    assert (two.known_from, one.known_from) == ("tag", "tag")
    assert two.message.startswith("An older build of version 3.12.1 (first seen ")
    assert (
        f": the tag 3.12 pointed to it until {format_time(moved_away(history, '3.12', history.b1))}; "
        f"it has moved through 2 builds since. Pin to {history.ref}:3.12@{history.b3[:19]}… now."
    ) in two.message
    assert two.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert two.compare_url == "/compare?" + urlencode(
        {"a": f"{history.ref}@{history.b1}", "b": f"{history.ref}@{history.b3}"}
    )
    comparison = client.get(two.compare_url).context["comparison"]
    assert (comparison.a.build.digest, comparison.b.build.digest) == (history.b1, history.b3)


def test_behind_counts_distinct_builds_even_when_a_tag_comes_back(registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    first = pusher.push(repo_name, "edge", "oci", seed=1)
    polled(repository)
    pusher.push(repo_name, "edge", "oci", seed=2)
    polled(repository)
    pusher.push(repo_name, "edge", "oci", seed=1)  # back to the first build
    polled(repository)
    last = pusher.push(repo_name, "edge", "oci", seed=3)
    polled(repository)

    result = only(f"{repository.reference}:edge@{first.digest}")

    # it left the pin for the last time two builds ago
    assert (result.status, result.builds_behind) == ("behind", 1)
    assert result.current_digest == last.digest


def test_a_digest_the_tag_never_held_is_not_a_build_of_it(history):
    result = only(f"{history.ref}:3.12.1@{history.b3}")

    assert result.status == "not_a_build_of_tag"
    # Both moved to it in one poll: each is recorded when its own answer arrived, so their order
    # is the order the registry answered in.
    assert sorted(result.held_by) == ["3.12", "3.12.3"]
    assert result.message.startswith("Not a build of the tag 3.12.1: the tag never pointed to it")
    assert result.what_it_is == f"build {history.b3[7:19]} of version 3.12.3 (tags 3.12.3, 3.12)"
    assert f"It is {result.what_it_is}." in result.message
    assert result.current_reference == f"{history.ref}:3.12.1@{history.b1}"


def test_an_unwatched_repository_is_unknown_after_normalising_its_name(history):
    result = only(f"python:3.12@{history.b1}")

    assert (result.status, result.unknown) == ("unknown", "repository")
    assert (result.repository, result.reference) == (
        "docker.io/library/python", f"docker.io/library/python:3.12@{history.b1}",
    )  # fmt: skip
    assert result.message == (
        "docker.io/library/python is not watched: tagledger has no history of it. "
        f"The digest is build {history.b1[7:19]} of version 3.12.1 in {history.ref} (tags 3.12.1, 3.12)."
    )
    assert result.current_reference is None


def test_a_digest_never_seen_is_unknown_and_says_where_the_tag_points(history):
    result = only(f"{history.ref}:3.12@{ZERO}")

    assert (result.status, result.unknown) == ("unknown", "digest")
    assert result.message == (
        f"000000000000 was never seen in {history.ref} nor anywhere else tagledger watches; "
        f"the tag 3.12 points to {history.b3[7:19]} now. Pin to {history.ref}:3.12@{history.b3[:19]}… now."
    )
    assert result.current_reference == f"{history.ref}:3.12@{history.b3}"


def test_a_tag_never_seen_is_unknown(history):
    result = only(f"{history.ref}:nope@{ZERO}")

    assert (result.status, result.unknown) == ("unknown", "tag")
    assert result.message == f"{history.ref} has no recorded tag nope, nor the digest 000000000000."
    # with a digest of the repository, it is a build of other tags
    wrong = only(f"{history.ref}:nope@{history.b2}")
    assert (wrong.status, wrong.held_by) == ("not_a_build_of_tag", ("3.12",))


def test_a_deleted_tag_is_unknown_and_says_where_it_pointed(registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    pushed = pusher.push(repo_name, "gone", "oci")
    polled(repository)
    pusher.delete(repo_name, "gone")
    polled(repository)

    result = only(f"{repository.reference}:gone@{pushed.digest}")

    assert (result.status, result.unknown, result.current_reference) == ("unknown", "tag", None)
    assert (
        result.message
        == f"The tag gone was deleted from {repository.reference}; it last pointed to {pushed.digest[7:19]}."
    )


def test_an_untracked_tag_is_unknown_and_not_called_deleted(registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    pushed = pusher.push(repo_name, "3.13", "oci")
    polled(repository)
    repository.exclude_pattern = r"^3\.13$"
    repository.save()
    polled(repository)

    result = only(f"{repository.reference}:3.13@{pushed.digest}")

    assert (result.status, result.unknown, result.current_reference) == ("unknown", "tag", None)
    where = f"in {repository.reference}; it last pointed to {pushed.digest[7:19]}"
    assert result.message == f"The tag 3.13 is not tracked any more {where}."


@pytest.mark.parametrize("tag", ["a" * 127 + "-", "3.13"])
def test_a_pattern_that_times_out_on_a_pasted_tag_is_no_error(registry, repo_name, tag):
    """A staff pattern that backtracks without end: the pin says the tag is unknown, and no 500."""
    repository = watch(registry, repo_name)
    repository.include_pattern = r"^(a|aa)+$"
    repository.save()

    result = only(f"{repository.reference}:{tag}@{ZERO}")

    assert (result.status, result.unknown) == ("unknown", "tag")


def test_a_tag_without_a_digest_says_which_digest_to_pin(history):
    result = only(f"{history.ref}:3.12")

    assert result.status == "no_digest"
    assert result.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert result.message == (
        f"Not pinned: the tag 3.12 points to {history.b3[7:19]} now. "
        f"Pin to {history.ref}:3.12@{history.b3[:19]}… now."
    )


def test_a_digest_without_a_tag_is_current_when_a_tag_points_to_it(history):
    now, before = check([f"{history.ref}@{history.b3}", f"{history.ref}@{history.b2}"])

    assert (now.status, now.held_by) == ("current", ("3.12", "3.12.3"))
    assert now.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert (before.status, before.held_by) == ("not_a_build_of_tag", ("3.12",))
    assert before.message == (
        "Pinned by digest alone, and no tag points to it now: "
        f"it is build {history.b2[7:19]} of version 3.12 (tag 3.12)."
    )


def test_a_pinned_platform_image_counts_as_its_build(history):
    arm64 = history.pushed[2].child_digests[1]

    result = only(f"{history.ref}:3.12@{arm64}")

    assert (result.status, result.platform, result.build_digest) == ("current", "linux/arm64/v8", history.b3)
    assert result.message == "The tag 3.12 points to this build (its linux/arm64/v8 image) now."
    old = only(f"{history.ref}:3.12@{history.pushed[0].child_digests[0]}")
    assert (old.status, old.builds_behind, old.platform) == ("behind", 2, "linux/amd64")


def test_docker_hub_names_are_normalised_before_they_are_looked_up():
    host = Registry.objects.create(host="docker.io")
    repository = Repository.objects.create(registry=host, name="library/python")
    build = Build.objects.create(
        repository=repository, digest="sha256:" + "b" * 64, size=10, first_seen_at=timezone.now(),
        media_type="application/vnd.oci.image.index.v1+json",
    )  # fmt: skip
    tag = Tag.objects.create(repository=repository, name="3.12", kind="minor")
    TagState.objects.observe(tag, build, at=timezone.now(), poll=None, immutable=False)

    for text in (f"python:3.12@{build.digest}", f"docker.io/library/python:3.12@{build.digest}",
                 f"index.docker.io/library/python:3.12@{build.digest}"):  # fmt: skip
        result = only(text)
        assert (result.status, result.repository) == ("current", "docker.io/library/python"), text
        assert result.current_reference == f"docker.io/library/python:3.12@{build.digest}"


# --- reading lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("Python:3.12", "repository name must be lowercase"),
        ("not a reference", "a reference has no spaces"),
        ("FROM", "FROM names no image"),
        ("FROM --platform=linux/amd64", "FROM names no image"),
        ("FROM python:3.12 AS", "after the image, FROM takes only `AS name`"),
        ("image:", "`image:` names no image"),
        ('image: ""', "`image:` names no image"),
        ("python@sha256:abc", "invalid reference format"),
        ("FROM python:${PY_VERSION}", "uses a variable"),
        ("image: ${REGISTRY}/app:1", "uses a variable"),
        ("<script>alert(1)</script>", "invalid reference format"),
        ("x" * 3000, "the line is too long (3000 characters; at most 2048)"),
    ],
)
def test_an_unreadable_line_is_invalid_and_says_why(line, says):
    result = only(line)
    assert (result.status, result.line) == ("invalid", 1)
    assert says in result.message
    assert result.current_reference is None


def test_lines_pasted_from_a_dockerfile(history):
    dockerfile = f"""\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM --platform=$BUILDPLATFORM {history.ref}:3.12@{history.b1} AS build
RUN apt-get update \\
    && apt-get install -y gcc
COPY . /src
FROM build AS test
from {history.ref}:3.12.1@{history.b1}
FROM scratch
COPY --from=build /out /
"""
    results = check(dockerfile)

    assert [(result.line, result.status, result.builds_behind) for result in results] == [
        (3, "behind", 2), (8, "current", None),
    ]  # fmt: skip
    assert results[0].text == f"FROM --platform=$BUILDPLATFORM {history.ref}:3.12@{history.b1} AS build"


def test_lines_pasted_from_a_compose_file_or_a_kubernetes_manifest(history):
    compose = f"""\
services:
  app:
    image: "{history.ref}:3.12@{history.b3}"   # pinned by renovate
    ports:
      - "8080:80"
    environment:
      - EMAIL=ops@example.com
  worker:
    image: '{history.ref}:3.12.1@{history.b1}'
  db:
    image: {history.ref}:3.12
---
spec:
  containers:
    - image: {history.ref}:3.12@{history.b2}
      name: app
"""
    results = check(compose)

    assert [(result.line, result.status) for result in results] == [
        (3, "current"), (9, "current"), (11, "no_digest"), (15, "behind"),
    ]  # fmt: skip


def test_a_plain_list_skips_blank_and_comment_lines_and_keeps_line_numbers(history):
    results = check(["", "# base images", f"  {history.ref}:3.12@{history.b3}  ", "", f"{history.ref}:3.12"])

    assert [(result.line, result.status) for result in results] == [(3, "current"), (5, "no_digest")]


def test_the_number_of_references_and_the_input_size_are_capped(history):
    assert len(check([f"{history.ref}:3.12"] * MAX_REFERENCES)) == MAX_REFERENCES

    with pytest.raises(PinError, match=f"too many references: more than {MAX_REFERENCES} in one check"):
        check("\n".join([f"{history.ref}:3.12"] * (MAX_REFERENCES + 1)))
    with pytest.raises(PinError, match="the input is too large"):
        check("# comment\n" * 60_000)
    with pytest.raises(PinError, match="give references as text"):
        check([b"python:3.12"])


def test_the_query_count_does_not_grow_with_the_lines(history):
    statuses = [
        f"{history.ref}:3.12@{history.b3}", f"{history.ref}:3.12@{history.b1}",
        f"{history.ref}:3.12.1@{history.b3}", f"{history.ref}:3.12", f"{history.ref}:3.12@{ZERO}",
        f"{history.ref}@{history.b2}", f"{history.ref}:nope", f"python:3.12@{history.b1}", "Invalid!",
    ]  # fmt: skip
    many = statuses * 5 + [f"{history.ref}:tag{index}" for index in range(100)] + [
        f"127.0.0.1:9/other/repo{index}:1@{ZERO}" for index in range(50)
    ]  # fmt: skip

    counts = []
    for lines in (statuses, many):
        with CaptureQueriesContext(connection) as queries:
            results = check(lines)
        assert len(results) == len(lines)
        counts.append(len(queries))

    assert counts[0] == counts[1] <= 11
    assert {result.status for result in check(statuses)} == {
        "current", "behind", "not_a_build_of_tag", "no_digest", "unknown", "invalid",
    }  # fmt: skip


def test_as_dict_is_plain_json(history):
    result = only(f"{history.ref}:3.12@{history.b1}")

    as_dict = result.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict | {"confirmed_at": None} == {
        "line": 1, "text": f"{history.ref}:3.12@{history.b1}", "status": "behind", "message": result.message,
        "reference": f"{history.ref}:3.12@{history.b1}", "repository": history.ref, "tag": "3.12",
        "digest": history.b1, "build_digest": history.b1, "platform": None, "current_digest": history.b3,
        "current_reference": f"{history.ref}:3.12@{history.b3}", "builds_behind": 2, "held_by": [],
        "unknown": None, "confirmed_at": None, "compare_url": result.compare_url,
        "newer_builds": 0, "known_from": "tag", "version": "3.12.1", "built_at": None,
        "first_seen_at": history.build(history.b1).first_seen_at.isoformat(), "what_it_is": None,
        "version_inactive": False,
    }  # fmt: skip


# --- the page ---------------------------------------------------------------------------------------


def test_the_form_posts_with_a_csrf_token(client, public):
    html = client.get("/pins").content.decode()

    form = html[html.index('<form method="post" action="/pins"') :]
    assert 'name="csrfmiddlewaretoken"' in form[: form.index("</form>")]


def test_the_page_shows_each_line_with_its_status_a_copy_button_and_a_compare_link(client, public, history):
    refs = "\n".join([
        f"{history.ref}:3.12@{history.b3}", f"{history.ref}:3.12@{history.b1}",
        f"{history.ref}:3.12.1@{history.b3}", f"{history.ref}:3.12", f"python:3.12@{ZERO}", "Not valid",
    ])  # fmt: skip

    response = client.post("/pins", {"refs": refs})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<tr class="pins-row') == 6
    for label in ("current", "behind 2", "not a build of this tag", "no digest", "unknown", "invalid"):
        assert f"{label}</span>" in html, label
    pin = f"{history.ref}:3.12@{history.b3}"
    assert f'<button type="button" class="copy" data-copy="{pin}">Copy</button>' in html
    compare = "/compare?" + urlencode(
        {"a": f"{history.ref}@{history.b1}", "b": f"{history.ref}@{history.b3}"}
    )
    assert f'<a href="{compare.replace("&", "&amp;")}">compare pinned → current</a>' in html
    assert '<textarea id="pins-refs" name="refs"' in html and history.b1 in html


def test_a_long_dockerfile_is_checked_from_the_post_body(client, public, history):
    """2000 lines: far past the 4 KiB request line gunicorn takes, and nothing of it in a URL."""
    dockerfile = "\n".join(
        f"FROM {history.ref}:3.12@{history.b1} AS stage{n}" if n % 20 == 0 else f"RUN echo step {n} && true"
        for n in range(2000)
    )

    response = client.post("/pins", {"refs": dockerfile})

    assert response.status_code == 200
    assert response.request["PATH_INFO"] == "/pins" and not response.request.get("QUERY_STRING")
    found = [(result.line, result.status) for result in response.context["results"]]
    assert found == [(n + 1, "behind") for n in range(0, 2000, 20)]


def test_a_post_without_the_csrf_token_is_refused(public, history):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/pins", {"refs": f"{history.ref}:3.12@{history.b3}"})

    assert response.status_code == 403


def test_links_made_before_the_form_posted_still_answer(client, public, history):
    response = client.get("/pins", {"refs": f"{history.ref}:3.12@{history.b3}"})

    assert [result.status for result in response.context["results"]] == ["current"]


def test_repeated_ref_params_are_lines_too(client, public, history):
    response = client.get(f"/pins?ref={history.ref}:3.12@{history.b3}&ref={history.ref}:3.12.1")

    assert [result.status for result in response.context["results"]] == ["current", "no_digest"]
    posted = client.post("/pins", {"ref": [f"{history.ref}:3.12@{history.b3}", f"{history.ref}:3.12.1"]})
    assert [result.status for result in posted.context["results"]] == ["current", "no_digest"]


def test_hostile_lines_render_escaped(client, public):
    response = client.post(
        "/pins", {"refs": '<script>alert(1)</script>\nimage: "<img src=x onerror=alert(1)>"'}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_too_many_lines_show_a_clear_message(client, public):
    response = client.post("/pins", {"refs": "\n".join(["python:3.12"] * (MAX_REFERENCES + 1))})

    assert response.status_code == 200
    assert response.context["results"] is None
    assert (
        f"too many references: more than {MAX_REFERENCES} in one check; split the list"
        in response.content.decode()
    )


@pytest.mark.parametrize("size", [MAX_INPUT + 1, 2 * MAX_INPUT])
def test_too_large_a_paste_shows_a_clear_message_and_is_not_echoed(client, public, size):
    response = client.post("/pins", {"refs": ("# comment\n" * size)[:size]})

    html = response.content.decode()
    assert response.status_code == 200
    assert f"the input is too large (at most {MAX_INPUT // 1024} KiB); split the list" in html
    assert "# comment" not in html
    assert len(html) < 50_000


def test_a_body_past_what_django_reads_is_a_bad_request_not_an_error(client, public, settings):
    response = client.post("/pins", {"refs": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert response.status_code == 400


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_not_allowed(client, public, method):
    assert getattr(client, method)("/pins").status_code == 405


def test_a_post_from_a_stranger_asks_for_login_and_echoes_nothing(client, settings):
    settings.TAGLEDGER_PUBLIC = False

    response = client.post("/pins", {"refs": "python:3.12@" + ZERO})

    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/pins"


def test_an_empty_form_shows_no_results(client, public):
    response = client.get("/pins")
    assert response.status_code == 200
    assert response.context["results"] is None
    assert client.post("/pins", {"refs": "  \n\n"}).context["results"] is None


# --- what a pinned digest is: a table over rows written as polls write them ---------------------

DAY = timedelta(days=1)
NOV_20 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Scene:
    """docker.io/library/python as a vendor publishes it, one row at a time:

    - 3.14.4: `backfilled` (11-20, known only from its timestamp tag), `observed` (11-21: 3.14.4,
      3.14, 3 and latest pointed to it), `current` (11-22: they all moved there), `ahead` (11-23,
      its timestamp tag only: the tags have not moved to it);
    - 3.14.3: one build (11-10) with its own tags; the floating 3.14 was never seen on it;
    - 3.13.1: one build with 3.13.1 and 3.13, and an arm64 image;
    - 3.12.9: one build from January, its own tag only: an inactive version;
    - the current build's platforms (amd64 with an SBOM attestation, arm64) and a cosign signature;
    - other/app in the same registry: a build of 1.0.
    """

    def __init__(self):
        image = self.image = Image("library/python", host="docker.io")
        v3144 = image.version("3.14.4")
        floating = ("3.14.4", "3.14", "3", "latest")
        self.backfilled = self._release(v3144, NOV_20, "3.14.4-202611201200")
        self.observed = self._release(v3144, NOV_20 + DAY, "3.14.4-202611211200", *floating)
        self.current = self._release(v3144, NOV_20 + 2 * DAY, "3.14.4-202611221200", *floating)
        self.ahead = self._release(v3144, NOV_20 + 3 * DAY, "3.14.4-202611231200")
        self.b3143 = self._release(
            image.version("3.14.3"), NOV_20 - 10 * DAY, "3.14.3", "3.14.3-202611101200"
        )
        self.b3131 = self._release(image.version("3.13.1"), NOV_20 - 15 * DAY, "3.13.1", "3.13")
        self.b3129 = self._release(image.version("3.12.9"), datetime(2026, 1, 5, tzinfo=UTC), "3.12.9")
        self.amd64 = self._platform(self.current, "amd64")
        self.arm64 = self._platform(self.current, "arm64")
        self.old_arm64 = self._platform(self.b3131, "arm64")
        self.sbom = Attestation.objects.create(
            build=self.current, digest=digest_of("sbom"), media_type=MANIFEST,
            subject=self.amd64.digest, platform=self.amd64, predicate_types=["https://spdx.dev/Document"],
        )  # fmt: skip
        self.signature = image.build(at=NOV_20 + 2 * DAY)
        self.signature_tag = f"sha256-{self.current.digest[7:]}.sig"
        image.tag(self.signature_tag, self.signature)
        other = Image("other/app", host="docker.io")
        self.elsewhere = other.build(other.version("1.0"), at=NOV_20)
        other.tag("1.0", self.elsewhere)

    def _release(self, version, at, *tags) -> Build:
        built = self.image.build(version, at=at, built_at=at)
        for name in tags:
            self.image.tag(name, built, at=at)
        return built

    def _platform(self, build: Build, architecture: str) -> Platform:
        return Platform.objects.create(
            build=build, os="linux", architecture=architecture, media_type=MANIFEST,
            digest=digest_of(f"{build.pk} {architecture}"),
            config_digest=digest_of(f"{build.pk} {architecture} config"),
        )  # fmt: skip


def digest_of(text: str) -> str:
    return "sha256:" + sha256(text.encode()).hexdigest()


@pytest.fixture
def scene() -> Scene:
    return Scene()


def short_of(build: Build) -> str:
    return build.digest[7:19]


# (name, pin, status, known_from, builds_behind, newer_builds, what_it_is, in the message)
CASES = [
    ("current", "3.14.4@{current}", "current", None, None, None, None,
     "The tag 3.14.4 points to this build now."),
    ("current platform image", "3.14.4@{amd64}", "current", None, None, None, None,
     "The tag 3.14.4 points to this build (its linux/amd64 image) now."),
    ("older, observed", "3.14.4@{observed}", "behind", "tag", 2, 2, None,
     "An older build of version 3.14.4 (built 2026-11-21 12:00:00 UTC): the tag 3.14.4 pointed to it until"
     " 2026-11-22 12:00:00 UTC; 2 newer builds since. Pin to python:3.14.4@{current_digest19}… now."),
    ("older, backfilled from its timestamp tag", "3.14.4@{backfilled}", "behind", "version", 3, 3, None,
     "An older build of version 3.14.4 (built 2026-11-20 12:00:00 UTC), 3 newer builds since. The tag 3.14.4"
     " never pointed to it: tagledger knows it from its version's history (its timestamp tag"
     " 3.14.4-202611201200). Pin to python:3.14.4@{current_digest19}… now."),
    ("older, observed on a floating tag", "latest@{observed}", "behind", "tag", 1, 2, None,
     "the tag latest pointed to it until 2026-11-22 12:00:00 UTC; it has moved through 1 build since."),
    ("older build of the line, via a floating tag", "3.14@{b3143}", "behind", "line", 4, 0, None,
     "An older build of version 3.14.3 (built 2026-11-10 12:00:00 UTC), the line it follows has 4 newer"
     " builds since. The tag 3.14 never pointed to it: tagledger knows it from the history of the line's"
     " versions (its timestamp tag 3.14.3-202611101200)."),
    ("a build the line's major tag never held", "3@{b3131}", "behind", "line", 5, 0, None,
     "the line it follows has 5 newer builds since"),
    ("newer than the tag", "3.14.4@{ahead}", "ahead", "version", 0, 0, None,
     "A build of version 3.14.4 (built 2026-11-23 12:00:00 UTC) newer than the one the tag 3.14.4 points to"
     " (built 2026-11-22 12:00:00 UTC): the tag has not pointed to it"),
    ("another build of a timestamp tag's version", "3.14.4-202611201200@{current}", "not_a_build_of_tag",
     None, None, None, "build {current_short} of version 3.14.4 (tags 3.14.4, 3.14, 3, latest and 1 more)",
     "Not a build of the tag 3.14.4-202611201200: the tag never pointed to it"),
    ("a build of another version", "3.14.4@{b3131}", "not_a_build_of_tag", None, None, None,
     "build {b3131_short} of version 3.13.1 (tags 3.13.1, 3.13)",
     "Not a build of the tag 3.14.4: the tag never pointed to it, and it belongs to neither the tag's"
     " version nor its line. It is build {b3131_short} of version 3.13.1 (tags 3.13.1, 3.13)."),
    ("a platform image of another version", "3.14.4@{old_arm64}", "not_a_build_of_tag", None, None, None,
     "the linux/arm64 image of build {b3131_short} of version 3.13.1 (tags 3.13.1, 3.13)",
     "It is the linux/arm64"),
    ("a config digest (image ID)", "3.14.4@{amd64_config}", "not_a_build_of_tag", None, None, None,
     "the image ID (config) of the linux/amd64 image of build {current_short} of version 3.14.4,"
     " where the tag points now",
     "Not a build of the tag 3.14.4: the digest is the image ID (config)"),
    ("an attestation", "3.14.4@{sbom}", "not_a_build_of_tag", None, None, None,
     "an attestation (SBOM (SPDX)) of the linux/amd64 image of build {current_short} of version 3.14.4,"
     " where the tag points now", "the digest is an attestation"),
    ("a signature", "3.14.4@{signature}", "not_a_build_of_tag", None, None, None,
     "a signature of build {current_short} of version 3.14.4 (tag {signature_tag})", "It is a signature"),
    ("a build of another repository", "3.14.4@{elsewhere}", "not_a_build_of_tag", None, None, None,
     "build {elsewhere_short} of version 1.0 in docker.io/other/app (tag 1.0)", "the digest is build"),
    ("an unknown digest", "3.14.4@" + ZERO, "unknown", None, None, None, None,
     "000000000000 was never seen in docker.io/library/python nor anywhere else tagledger watches"),
    ("an unknown tag", "nope@" + ZERO, "unknown", None, None, None, None,
     "docker.io/library/python has no recorded tag nope, nor the digest 000000000000."),
    ("an unknown tag, a known digest", "nope@{b3131}", "not_a_build_of_tag", None, None, None,
     "build {b3131_short} of version 3.13.1 (tags 3.13.1, 3.13)", "has no recorded tag nope; the digest is"),
    ("an inactive version", "3.12.9@{b3129}", "current", None, None, None, None,
     "The tag 3.12.9 points to this build now. Version 3.12.9 is inactive: no new build since"
     " 2026-01-05 00:00:00 UTC, and no floating tag points to it."),
]  # fmt: skip


def values(scene: Scene) -> dict[str, str]:
    digests = {
        name: getattr(scene, name).digest
        for name in ("current", "amd64", "observed", "backfilled", "ahead", "b3143", "b3131", "b3129",
                     "old_arm64", "sbom", "signature", "elsewhere")
    }  # fmt: skip
    return digests | {
        "amd64_config": scene.amd64.config_digest, "current_digest19": scene.current.digest[:19],
        "current_short": short_of(scene.current), "b3131_short": short_of(scene.b3131),
        "elsewhere_short": short_of(scene.elsewhere), "signature_tag": scene.signature_tag,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("pin", "status", "known_from", "behind", "newer", "what", "says"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_what_each_pinned_digest_is(scene, pin, status, known_from, behind, newer, what, says):
    given = values(scene)
    result = only("python:" + pin.format(**given))

    assert (result.status, result.known_from, result.builds_behind, result.newer_builds) == (
        status, known_from, behind, newer,
    )  # fmt: skip
    assert result.what_it_is == (what.format(**given) if what else None)
    assert says.format(**given) in result.message
    if status in {"current", "behind", "ahead"} or (status == "not_a_build_of_tag" and "nope" not in pin):
        assert result.current_reference.startswith("docker.io/library/python:")
    if status in {"behind", "ahead"}:
        assert result.compare_url == "/compare?" + urlencode(
            {
                "a": f"docker.io/library/python@{result.build_digest}",
                "b": f"{result.repository}@{result.current_digest}",
            }
        )


def test_behind_and_ahead_agree_with_the_version_page(client, public, scene):
    """The version page lists the 3.14.4 builds newest first; a pin's newer builds are those above it."""
    rows = client.get(f"/versions/{scene.current.version_id}/").context["history"].rows
    listed = [row.build.pk for row in rows]
    assert listed == [scene.ahead.pk, scene.current.pk, scene.observed.pk, scene.backfilled.pk]

    for build in (scene.backfilled, scene.observed, scene.ahead):
        result = only(f"python:3.14.4@{build.digest}")
        assert result.newer_builds == listed.index(build.pk), build


def test_the_version_the_tag_names_counts_when_its_current_build_has_none(scene):
    """An exact tag whose current build no version claims (versions are derived, and re-derived by
    the next poll): its pins to builds of the version it names are still its builds."""
    Build.objects.filter(pk=scene.current.pk).update(version=None)

    result = only(f"python:3.14.4@{scene.backfilled.digest}")

    # newer: observed and ahead, as the version page now lists them
    assert (result.status, result.known_from, result.builds_behind) == ("behind", "version", 2)


def test_a_variant_is_a_line_of_its_own(scene):
    slim = scene.image.version("3.14.5", "slim")
    build = scene.image.build(slim, at=NOV_20, built_at=NOV_20)
    scene.image.tag("3.14.5-slim", build)

    result = only(f"python:3.14@{build.digest}")

    assert result.status == "not_a_build_of_tag"
    assert result.what_it_is == f"build {short_of(build)} of version 3.14.5-slim (tag 3.14.5-slim)"


def test_a_platform_image_shared_by_builds_names_the_one_of_the_tag(scene):
    """An unchanged arm64 image in two rebuilds: the pin is the tag's build, not the newest one."""
    shared = Platform.objects.create(
        build=scene.b3131, os="linux", architecture="s390x", digest=digest_of("shared"),
        media_type="application/vnd.oci.image.manifest.v1+json",
    )  # fmt: skip
    Platform.objects.create(
        build=scene.observed,
        os="linux",
        architecture="s390x",
        digest=shared.digest,
        media_type=shared.media_type,
    )

    result = only(f"python:3.14.4@{shared.digest}")

    assert (result.status, result.build_digest, result.platform) == (
        "behind",
        scene.observed.digest,
        "linux/s390x",
    )


def test_a_digest_only_pin_says_what_a_config_digest_is(scene):
    result = only(f"python@{scene.arm64.config_digest}")

    assert result.status == "not_a_build_of_tag"
    assert result.message == (
        "Pinned by digest alone, to no build of docker.io/library/python: the digest is the image ID (config)"
        f" of the linux/arm64 image of build {short_of(scene.current)} of version 3.14.4"
        " (tags 3.14.4, 3.14, 3, latest and 1 more)."
    )


def test_an_unwatched_repository_says_what_the_digest_is_where_it_is_watched(scene):
    result = only(f"127.0.0.1:9/nobody/app:1@{scene.amd64.digest}")

    assert (result.status, result.unknown) == ("unknown", "repository")
    assert result.what_it_is == (
        f"the linux/amd64 image of build {short_of(scene.current)} of version 3.14.4 in"
        " docker.io/library/python (tags 3.14.4, 3.14, 3, latest and 1 more)"
    )


def test_the_page_shows_every_verdict_and_what_each_digest_is(client, public, scene):
    given = values(scene)
    lines = ["python:" + case[1].format(**given) for case in CASES]

    response = client.post("/pins", {"refs": "\n".join(lines)})

    html = response.content.decode()
    assert response.status_code == 200
    results = response.context["results"]
    assert [result.status for result in results] == [case[2] for case in CASES]
    for result in results:
        assert f'<tr class="pins-row pins-row-{result.status}">' in html
        assert escape(result.message) in html, result.line
    assert "behind 3</span>" in html and "newer than the tag</span>" in html
    pin = f"docker.io/library/python:3.14.4@{scene.current.digest}"
    assert f'<button type="button" class="copy" data-copy="{pin}">Copy</button>' in html


def test_the_api_answers_the_same_results(client, public, scene):
    given = values(scene)
    refs = ["python:" + case[1].format(**given) for case in CASES]

    response = client.get("/api/v1/pins", {"ref": refs})

    assert response.status_code == 200
    assert response.json() == [json.loads(json.dumps(result.as_dict())) for result in check(refs)]


def test_a_hostile_version_name_from_a_label_is_text_everywhere(client, public, scene):
    """Versions of builds no tag names come from the image's version label: text from outside."""
    hostile = scene.image.version('<img src=x onerror=alert(1)>"', line="x")
    build = scene.image.build(hostile, at=NOV_20)

    response = client.post("/pins", {"refs": f"python:3.14.4@{build.digest}"})

    html = response.content.decode()
    (result,) = response.context["results"]
    assert (
        result.what_it_is == f'build {short_of(build)} of version <img src=x onerror=alert(1)>"'
        " (no recorded tag ever pointed to it)"
    )
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;&quot;" in html
    api = client.get("/api/v1/pins", {"ref": f"python:3.14.4@{build.digest}"}).json()
    assert api[0]["what_it_is"] == result.what_it_is


@pytest.mark.parametrize(
    "line",
    ["python:3.14.4@sha256:" + "g" * 64, "python:3.14.4@sha256:" + "a" * 63,
     "python:" + "a" * 200 + "@" + ZERO, "python:3.14.4@sha512:" + "a" * 128, "\x00python",
     "python:3.14.4@" + ZERO.upper(), "\uff50\uff59thon:3.14"],
)  # fmt: skip
def test_garbage_pins_are_invalid_or_unknown_and_never_an_error(client, public, scene, line):
    result = only(line)
    assert result.status in {"invalid", "unknown"}
    assert client.post("/pins", {"refs": line}).status_code == 200
    assert client.get("/api/v1/pins", {"ref": line}).status_code == 200


def test_the_table_costs_a_fixed_number_of_queries(scene, django_assert_max_num_queries):
    given = values(scene)
    lines = ["python:" + case[1].format(**given) for case in CASES]
    with CaptureQueriesContext(connection) as once:
        check(lines)

    with django_assert_max_num_queries(len(once)):
        assert len(check(lines * 10)) == len(lines) * 10  # 180 lines, a Dockerfile of many stages
    assert len(once) <= 11
