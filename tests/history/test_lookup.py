"""`manage.py lookup` and history.search: which build a digest, fragment, image ID or reference names."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import Registry, Repository, Tag
from catalog.tags import classify
from history.models import Build, HeldTag, Platform, PollRun, TagEvent, TagState
from history.polling import poll
from history.search import InvalidQuery, lookup, search_names
from tests.history.factories import watch

pytestmark = pytest.mark.django_db


def run_lookup(*args: str) -> str:
    out = StringIO()
    call_command("lookup", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def polled(registry, pusher, repo_name, tag="3.14.4", shape="oci-index", **push):
    """Push one image, watch and poll its repository: (repository, PushResult, Build)."""
    pushed = pusher.push(repo_name, tag, shape, **push)
    repository = watch(registry, repo_name)
    assert poll(repository).status == PollRun.Status.OK
    return repository, pushed, Build.objects.get(repository=repository, digest=pushed.digest)


@pytest.fixture
def index(registry, pusher, repo_name):
    """A two-platform OCI index tagged 3.14.4, polled once."""
    return polled(registry, pusher, repo_name)


# --- what a digest can match ----------------------------------------------------------------------


def test_the_index_digest_finds_its_build_with_every_detail(index):
    repository, pushed, build = index
    amd64, arm64 = pushed.child_digests
    amd64_id, arm64_id = (digest[7:19] for digest in pushed.config_digests)

    output = run_lookup(pushed.digest)

    assert output == (
        f"1 build matches '{pushed.digest}':\n"
        "\n"
        f"{repository.reference}@{pushed.digest}\n"
        f"  matched:    index digest {pushed.digest}\n"
        "  version:    3.14.4\n"
        f"  first seen: {when(build.first_seen_at)}\n"
        f"  tags:       3.14.4 from {when(build.first_seen_at)} until now\n"
        f"  platforms:  linux/amd64 {amd64} image ID {amd64_id}\n"
        f"              linux/arm64/v8 {arm64} image ID {arm64_id}\n"
    )


def test_a_full_digest_without_its_algorithm_is_the_same_digest(index):
    _, pushed, build = index
    result = lookup(pushed.digest.removeprefix("sha256:"))
    assert result.kind == "digest"
    assert [(match.build, match.matched) for match in result.matches] == [(build, "index")]


def test_the_platform_digest_of_an_index_child_finds_the_index(index):
    _, pushed, _ = index
    arm64 = pushed.child_digests[1]
    output = run_lookup(arm64)
    assert f"@{pushed.digest}\n" in output
    assert f"  matched:    platform digest {arm64} (linux/arm64/v8)\n" in output


def test_a_docker_images_id_finds_the_build_by_its_config(index):
    _, pushed, build = index
    image_id = pushed.config_digests[0][7:19]  # `docker images` shows 12 hex of the config digest

    output = run_lookup(image_id)

    assert f"image ID {image_id} of linux/amd64 (config {pushed.config_digests[0]})" in output
    result = lookup(image_id)
    assert (build, "config") in [(match.build, match.matched) for match in result.matches]


def test_a_single_platform_image_matches_as_its_manifest_digest(registry, pusher, repo_name):
    _, pushed, _ = polled(registry, pusher, repo_name, tag="1.0", shape="docker")
    output = run_lookup(pushed.digest)
    assert f"  matched:    manifest digest {pushed.digest}\n" in output
    assert f"  platforms:  linux/amd64 image ID {pushed.config_digest[7:19]}\n" in output


@pytest.mark.parametrize("prefix", ["", "sha256:", "SHA256:"])
def test_a_four_hex_prefix_finds_the_build_with_or_without_sha256(index, prefix):
    _, pushed, build = index
    fragment = pushed.digest[7:11]
    result = lookup(prefix + fragment)
    assert result.kind == "fragment"
    assert (build, "index") in [(match.build, match.matched) for match in result.matches]


def test_uppercase_hex_is_read_as_lowercase(index):
    _, pushed, build = index
    assert build in [match.build for match in lookup(pushed.digest[7:20].upper()).matches]


def test_eight_hex_or_more_also_match_inside_a_digest(index):
    _, pushed, build = index
    inside = pushed.digest[30:40]
    result = lookup(inside)
    assert [(match.build, match.digest) for match in result.matches] == [(build, pushed.digest)]


def test_hex_that_starts_a_digest_is_not_also_looked_for_inside_others():
    """An image ID pasted whole finds its build alone, not also builds whose digests contain it;
    a fragment that starts no digest is still found inside one."""
    repository = Repository.objects.create(registry=Registry.objects.create(host="registry.test"), name="app")

    def build(hex_digits: str) -> Build:
        return Build.objects.create(
            repository=repository, digest=f"sha256:{hex_digits}", size=1, first_seen_at=timezone.now(),
            media_type="application/vnd.oci.image.index.v1+json",
        )  # fmt: skip

    starts = build("abcdef012345" + "2" * 52)
    contains = build("99abcdef012345" + "1" * 50)
    assert [match.build for match in lookup("abcdef012345").matches] == [starts]
    assert [match.build for match in lookup("cdef01234511").matches] == [contains]
    assert [match.build for match in lookup("99abcdef").matches] == [contains]


def test_fewer_than_eight_hex_match_only_at_the_start(index):
    _, pushed, build = index
    assert build not in [match.build for match in lookup(pushed.digest[30:37]).matches]


def test_after_sha256_a_fragment_matches_only_at_the_start(index):
    _, pushed, build = index
    assert build not in [match.build for match in lookup("sha256:" + pushed.digest[30:40]).matches]


def test_builds_sharing_a_prefix_are_all_listed(registry, pusher, make_repo_name):
    """The same image pushed to two repositories: one digest, two builds, both shown."""
    first, pushed, first_build = polled(registry, pusher, make_repo_name(), seed="shared")
    second, again, second_build = polled(registry, pusher, make_repo_name(), seed="shared")
    assert pushed.digest == again.digest

    output = run_lookup(pushed.digest[7:11])

    found = [match.build for match in lookup(pushed.digest[7:11]).matches]
    assert {first_build, second_build} <= set(found)
    assert f"{first.reference}@{pushed.digest}\n" in output
    assert f"{second.reference}@{pushed.digest}\n" in output
    assert found.index(second_build) < found.index(first_build)  # newest first


# --- references -----------------------------------------------------------------------------------


def test_a_reference_with_tag_and_digest_finds_that_build(index):
    repository, pushed, build = index
    result = lookup(f"{repository.reference}:3.14.4@{pushed.digest}")
    assert result.kind == "reference"
    assert [(match.build, match.matched) for match in result.matches] == [(build, "index")]


def test_a_reference_by_digest_ignores_its_tag_as_docker_pull_does(index):
    repository, pushed, build = index
    result = lookup(f"{repository.reference}:some-other-tag@{pushed.digest}")
    assert [match.build for match in result.matches] == [build]


def test_a_reference_to_a_platform_digest_finds_the_index(index):
    repository, pushed, build = index
    result = lookup(f"{repository.reference}@{pushed.child_digests[0]}")
    assert [(match.build, match.matched) for match in result.matches] == [(build, "platform")]


def test_a_reference_with_a_tag_finds_the_build_it_points_to_now(registry, pusher, repo_name):
    repository, first, _ = polled(registry, pusher, repo_name, seed=1)
    now = pusher.push(repo_name, "3.14.4", "oci-index", seed=2)
    poll(repository)

    output = run_lookup(f"{repository.reference}:3.14.4")

    assert output.startswith(f"1 build matches '{repository.reference}:3.14.4':\n\n")
    assert f"{repository.reference}@{now.digest}\n" in output
    assert first.digest not in output


def test_a_reference_in_another_repository_does_not_match(index):
    _, pushed, _ = index
    with pytest.raises(CommandError, match=r"^no build matches "):
        run_lookup(f"127.0.0.1:1/elsewhere@{pushed.digest}")


# --- tag history ----------------------------------------------------------------------------------


def test_a_moved_tag_shows_when_it_held_each_build(registry, pusher, repo_name):
    repository, old, _ = polled(registry, pusher, repo_name, seed=1)
    new = pusher.push(repo_name, "3.14.4", "oci-index", seed=2)  # the daily rebuild
    poll(repository)
    moved_at = TagEvent.objects.get(kind=TagEvent.Kind.MOVED).detected_at
    held_from = TagEvent.objects.get(kind=TagEvent.Kind.CREATED).detected_at

    assert f"  tags:       3.14.4 from {when(held_from)} until {when(moved_at)}\n" in run_lookup(old.digest)
    assert f"  tags:       3.14.4 from {when(moved_at)} until now\n" in run_lookup(new.digest)


def test_held_tags_end_at_the_next_event_of_that_tag_even_a_deletion():
    registry = Registry.objects.create(host="registry.invalid")
    repository = Repository.objects.create(registry=registry, name="library/python")
    one, two = (stored_build(repository, n) for n in (1, 2))
    latest, exact = stored_tag(repository, "latest"), stored_tag(repository, "3.14.4")
    hour = [datetime(2026, 11, 26, h, tzinfo=UTC) for h in range(5)]
    observe(latest, one, hour[0])
    observe(exact, one, hour[0])
    observe(latest, two, hour[1])
    observe(exact, None, hour[2])
    observe(exact, one, hour[3])

    assert TagEvent.objects.held([one])[one.pk] == [
        HeldTag("3.14.4", hour[0], hour[2]),
        HeldTag("latest", hour[0], hour[1]),
        # a restore: the tag was seen gone at hour 2, so it came back between then and hour 3
        HeldTag("3.14.4", hour[3], None, not_before=hour[2]),
    ]
    assert TagEvent.objects.held([two])[two.pk] == [HeldTag("latest", hour[1], None, not_before=hour[0])]


def test_a_build_no_tag_ever_pointed_at_says_so(registry, pusher, repo_name):
    _, pushed, _ = polled(registry, pusher, repo_name, seed=1)
    TagEvent.objects.all().delete()
    assert "  tags:       none recorded\n" in run_lookup(pushed.digest)


# --- output, failures, cost ---------------------------------------------------------------------


def test_json_prints_the_same_as_data(index):
    repository, pushed, build = index
    data = json.loads(run_lookup(pushed.child_digests[1], "--json"))
    assert (data["query"], data["kind"], data["truncated"]) == (pushed.child_digests[1], "digest", False)
    [match] = data["items"]
    assert match["matched"] == "platform"
    assert match["digest"] == pushed.digest
    assert match["matched_digest"] == pushed.child_digests[1]
    assert match["platform"] == "linux/arm64/v8"
    assert match["image_id"] == pushed.config_digests[1][7:19]
    assert match["reference"] == f"{repository.reference}@{pushed.digest}"
    assert match["version"] == "3.14.4"
    assert match["first_seen"] == build.first_seen_at.isoformat()
    assert [(p["architecture"], p["config_digest"]) for p in match["platforms"]] == [
        ("amd64", pushed.config_digests[0]),
        ("arm64", pushed.config_digests[1]),
    ]
    assert match["tags"] == [{"tag": "3.14.4", "from": build.first_seen_at.isoformat(), "until": None}]


def test_json_is_the_search_apis_body(index, client, public):
    """One result, one shape: `lookup --json` prints what /api/v1/search answers."""
    _, pushed, _ = index
    for query in (pushed.child_digests[1], pushed.digest[7:15], "3.14"):
        assert json.loads(run_lookup(query, "--json")) == client.get("/api/v1/search", {"q": query}).json()


def test_json_pages_with_next_and_cursor_as_the_api_does(registry, pusher, make_repo_name):
    first, pushed, _ = polled(registry, pusher, make_repo_name(), seed="shared")
    second, _, _ = polled(registry, pusher, make_repo_name(), seed="shared")

    newest = json.loads(run_lookup(pushed.digest, "--json", "--limit", "1"))
    older = json.loads(run_lookup(pushed.digest, "--json", "--limit", "1", "--cursor", newest["next"]))

    assert [match["reference"] for match in newest["items"] + older["items"]] == [
        f"{second.reference}@{pushed.digest}",
        f"{first.reference}@{pushed.digest}",
    ]
    assert (newest["truncated"], older["truncated"], older["next"]) == (True, False, None)
    with pytest.raises(CommandError, match=r"^--cursor: this page link is damaged"):
        run_lookup(pushed.digest, "--cursor", "garbage")


def test_nothing_matching_exits_1_saying_so(index):
    with pytest.raises(CommandError, match=r"^no build matches 'sha256:0{64}'$") as failure:
        run_lookup("sha256:" + "0" * 64)
    assert failure.value.returncode == 1


def test_nothing_matching_still_prints_json(index):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("lookup", "feedfacefeedface", "--json", stdout=out)
    assert json.loads(out.getvalue())["items"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("<script>alert(1)</script>", "is not a digest, digest fragment, reference or name"),
        ("'; DROP TABLE history_build; --", "is not a digest, digest fragment, reference or name"),
        ("a" * 10_000 + "g", "the query is too long (10001 characters; at most 1024)"),
        ("sha256:", "needs hex digits after the colon"),
        ("sha256:xyz", "only hex digits 0-9 and a-f may follow"),
        ("sha1:abcd", "unsupported digest algorithm 'sha1'"),
        ("abc", "'abc' is too short: a digest fragment needs at least 4 hex digits"),
        ("sha256:" + "a" * 65, "is longer than a sha256 digest"),
        ("   ", "the query is empty"),
        ("python@latest", "is not a valid reference"),
        ("caf\u00e9\n\x00", "is not a digest"),
    ],
)
def test_an_invalid_query_is_a_clear_error_not_a_traceback(query, message):
    with pytest.raises(CommandError) as failure:
        run_lookup(query)
    assert str(failure.value).startswith("invalid query: ")
    assert message in str(failure.value)
    assert len(str(failure.value)) < 300  # hostile input is cut, not echoed back


def test_a_name_finds_repositories_tags_and_versions(index):
    repository, pushed, _ = index
    output = run_lookup("3.14.4")
    assert f"tags:\n  {repository.reference}:3.14.4 -> {pushed.digest}\n" in output
    assert f"versions:\n  {repository.reference} 3.14.4 (1 build)\n" in output
    names = search_names(repository.reference)
    assert names.repositories[0] == repository


def test_the_query_count_does_not_grow_with_the_matches(django_assert_max_num_queries):
    registry = Registry.objects.create(host="registry.invalid")
    repository = Repository.objects.create(registry=registry, name="library/python")
    tags = [stored_tag(repository, name) for name in ("latest", "3", "3.14", "3.14.4")]
    at = datetime(2026, 11, 26, tzinfo=UTC)
    for n in range(30):
        build = stored_build(repository, n, prefix="feedface")
        for tag in tags:
            observe(tag, build, at + timedelta(hours=n))

    # the matching build ids, the builds, their platforms, the tags they held
    with django_assert_max_num_queries(4):
        few = lookup("feedface", limit=2)
    with django_assert_max_num_queries(4):
        many = lookup("feedface", limit=30)

    assert (len(few.matches), few.truncated) == (2, True)
    assert (len(many.matches), many.truncated) == (30, False)
    # Every tag moved through every build: the newest holds all four now, the others held them once.
    assert [len(match.held) for match in many.matches] == [4] * 30
    assert [held.until for held in many.matches[0].held] == [None] * 4
    assert all(held.until for match in many.matches[1:] for held in match.held)


def test_search_errors_are_one_exception_family():
    with pytest.raises(InvalidQuery):
        lookup("abc")
    with pytest.raises(InvalidQuery):
        search_names("<b>")


# --- builders for the tests that need no registry ------------------------------------------------


def stored_build(repository: Repository, n: int, prefix: str = "") -> Build:
    """A build (with one platform) whose digest is `prefix` then n in hex."""
    digest = f"sha256:{prefix}{n:0{64 - len(prefix)}x}"
    build = Build.objects.create(
        repository=repository,
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=100,
        first_seen_at=datetime(2026, 11, 26, tzinfo=UTC) + timedelta(hours=n),
    )
    Platform.objects.create(
        build=build,
        os="linux",
        architecture="amd64",
        digest=digest,
        media_type=build.media_type,
        config_digest=f"sha256:{n:064x}",
    )
    return build


def stored_tag(repository: Repository, name: str) -> Tag:
    info = classify(name)
    return Tag.objects.create(
        repository=repository, name=name, kind=info.kind.value, version=info.version, variant=info.variant
    )


def observe(tag: Tag, build: Build | None, at: datetime) -> None:
    TagState.objects.observe(tag, build, at=at, poll=None, immutable=False)
