"""Pin check: is each pinned digest still the build its tag points to, and what to pin instead.

History comes from real pushes to the real registry, recorded by real polls.
"""

from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Registry, Repository, Tag
from history.models import Build, TagState
from history.pins import MAX_INPUT, MAX_REFERENCES, PinError, check
from tests.history.factories import polled, watch

pytestmark = pytest.mark.django_db

ZERO = "sha256:" + "0" * 64


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


def only(text):
    (result,) = check(text)
    return result


# --- each status ----------------------------------------------------------------------------------


def test_a_pin_to_the_build_its_tag_points_to_now_is_current(history):
    result = only(f"{history.ref}:3.12@{history.b3}")

    assert (result.status, result.builds_behind, result.compare_url) == ("current", None, None)
    assert result.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert result.message == "the tag 3.12 points to this build now"
    state = TagState.objects.get(tag__repository=history.repository, tag__name="3.12")
    assert result.confirmed_at == state.confirmed_at
    assert only(f"{history.ref}:3.12.1@{history.b1}").status == "current"


def test_a_pin_two_rebuilds_ago_is_behind_by_two_with_a_compare_link(client, public, history):
    two, one = check([f"{history.ref}:3.12@{history.b1}", f"{history.ref}:3.12@{history.b2}"])

    assert (two.status, two.builds_behind) == ("behind", 2)
    assert (one.status, one.builds_behind) == ("behind", 1)
    assert (
        two.message == f"the tag 3.12 moved on: 2 builds since this one; it points to {history.b3[7:19]} now"
    )
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
    assert "the tag 3.12.1 never pointed to this build" in result.message
    assert f"tags that did: {', '.join(result.held_by)}" in result.message
    assert result.current_reference == f"{history.ref}:3.12.1@{history.b1}"


def test_an_unwatched_repository_is_unknown_after_normalising_its_name(history):
    result = only(f"python:3.12@{history.b1}")

    assert (result.status, result.unknown) == ("unknown", "repository")
    assert (result.repository, result.reference) == (
        "docker.io/library/python", f"docker.io/library/python:3.12@{history.b1}",
    )  # fmt: skip
    assert result.message == (
        f"docker.io/library/python is not watched: tagledger has no history of it; "
        f"the digest is a build of {history.ref}"
    )
    assert result.current_reference is None


def test_a_digest_never_seen_is_unknown_and_says_where_the_tag_points(history):
    result = only(f"{history.ref}:3.12@{ZERO}")

    assert (result.status, result.unknown) == ("unknown", "digest")
    assert result.message == (
        f"000000000000 was never seen in {history.ref}; the tag 3.12 points to {history.b3[7:19]} now"
    )
    assert result.current_reference == f"{history.ref}:3.12@{history.b3}"


def test_a_tag_never_seen_is_unknown(history):
    result = only(f"{history.ref}:nope@{ZERO}")

    assert (result.status, result.unknown) == ("unknown", "tag")
    assert result.message == f"{history.ref} has no recorded tag nope, nor the digest 000000000000"
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
        == f"the tag gone was deleted from {repository.reference}; it last pointed to {pushed.digest[7:19]}"
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
    assert result.message == f"the tag 3.13 is not tracked any more {where}"


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
    assert (
        result.message == f"not pinned: the tag 3.12 points to {history.b3[7:19]} now; pin it to that digest"
    )


def test_a_digest_without_a_tag_is_current_when_a_tag_points_to_it(history):
    now, before = check([f"{history.ref}@{history.b3}", f"{history.ref}@{history.b2}"])

    assert (now.status, now.held_by) == ("current", ("3.12", "3.12.3"))
    assert now.current_reference == f"{history.ref}:3.12@{history.b3}"
    assert (before.status, before.held_by) == ("not_a_build_of_tag", ("3.12",))
    assert "pinned by digest alone, and no tag points to it now" in before.message


def test_a_pinned_platform_image_counts_as_its_build(history):
    arm64 = history.pushed[2].child_digests[1]

    result = only(f"{history.ref}:3.12@{arm64}")

    assert (result.status, result.platform, result.build_digest) == ("current", "linux/arm64/v8", history.b3)
    assert result.message == "the tag 3.12 points to this build (its linux/arm64/v8 image) now"
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

    assert counts[0] == counts[1] <= 8
    assert {result.status for result in check(statuses)} == {
        "current", "behind", "not_a_build_of_tag", "no_digest", "unknown", "invalid",
    }  # fmt: skip


def test_as_dict_is_plain_json(history):
    import json

    result = only(f"{history.ref}:3.12@{history.b1}")

    as_dict = result.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict | {"confirmed_at": None} == {
        "line": 1, "text": f"{history.ref}:3.12@{history.b1}", "status": "behind", "message": result.message,
        "reference": f"{history.ref}:3.12@{history.b1}", "repository": history.ref, "tag": "3.12",
        "digest": history.b1, "build_digest": history.b1, "platform": None, "current_digest": history.b3,
        "current_reference": f"{history.ref}:3.12@{history.b3}", "builds_behind": 2, "held_by": [],
        "unknown": None, "confirmed_at": None, "compare_url": result.compare_url,
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
