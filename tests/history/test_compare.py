"""Compare two builds from stored data: resolving what was pasted, the diff, and the page.

Builds come from real pushes to the real registry, recorded by real polls.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Registry, Repository
from catalog.oci.mediatypes import OCI_MANIFEST
from history.compare import CompareError, KeyChange, ValueChange, compare, resolve
from history.models import Build
from tests.history import factories
from tests.history.factories import polled, watch

pytestmark = pytest.mark.django_db

REVISION = "org.opencontainers.image.revision"
HOSTILE = "<script>alert(1)</script>"


def build_of(repository: Repository, pushed) -> Build:
    return Build.objects.get(repository=repository, digest=pushed.digest)


def layers_of(pusher, name: str, digest: str) -> list[dict]:
    body, _ = pusher.get_manifest(name, digest)
    return json.loads(body)["layers"]


@pytest.fixture
def rebuild(registry, pusher, repo_name):
    """3.12 built twice for two platforms: new seed, a second layer, new env, labels, cmd, annotations."""
    repository = watch(registry, repo_name)
    first = pusher.push(
        repo_name, "3.12", "oci-index", seed="day 1", cmd=["python3"], exposed_ports=["8080/tcp"],
        env=["PATH=/usr/bin", "PY=3.12.1", "OLD=1"], labels={"version": "3.12.1", "gone": "yes"},
        annotations={REVISION: "aaa", "retired": "x"},
    )  # fmt: skip
    polled(repository)
    second = pusher.push(
        repo_name, "3.12", "oci-index", seed="day 2", layers=2, cmd=["python3", "-q"], user="app",
        exposed_ports=["9090/tcp", "8080/tcp"], env=["PATH=/usr/bin", "PY=3.12.2", "NEW=yes"],
        labels={"version": "3.12.2", "added": "1"}, annotations={REVISION: "bbb"},
    )  # fmt: skip
    polled(repository)
    return repository, first, second, build_of(repository, first), build_of(repository, second)


# --- the diff -----------------------------------------------------------------------------------


def test_a_rebuild_shows_each_platforms_new_image_id_layers_and_config(pusher, rebuild):
    repository, first, second, old, new = rebuild

    comparison = compare(old, new)

    assert not comparison.same
    assert [diff.platform for diff in comparison.changed] == ["linux/amd64", "linux/arm64/v8"]
    assert comparison.added == comparison.removed == comparison.unchanged == []
    for index, diff in enumerate(comparison.platforms):
        assert (diff.a.digest, diff.b.digest) == (first.child_digests[index], second.child_digests[index])
        assert diff.image_id_changed
        assert diff.image_id_a == first.config_digests[index].removeprefix("sha256:")[:12]
        assert diff.image_id_b == second.config_digests[index].removeprefix("sha256:")[:12]
        before = layers_of(pusher, repository.name, first.child_digests[index])
        after = layers_of(pusher, repository.name, second.child_digests[index])
        assert [(layer.status, layer.digest, layer.size) for layer in diff.layers] == [
            ("removed", before[0]["digest"], before[0]["size"]),
            ("added", after[0]["digest"], after[0]["size"]),
            ("added", after[1]["digest"], after[1]["size"]),
        ]
        assert diff.added_size == after[0]["size"] + after[1]["size"]
        assert diff.removed_size == before[0]["size"]
        assert diff.size_delta == diff.b.size - diff.a.size > 0
        assert diff.config == [
            ValueChange("cmd", ["python3"], ["python3", "-q"]),
            ValueChange("user", "", "app"),
            ValueChange("exposed ports", ["8080/tcp"], ["8080/tcp", "9090/tcp"]),
        ]
        assert diff.env == [
            KeyChange("PY", "3.12.1", "3.12.2"),
            KeyChange("OLD", "1", None),
            KeyChange("NEW", None, "yes"),
        ]
        assert [(change.key, change.change) for change in diff.labels] == [
            ("added", "added"), ("gone", "removed"), ("version", "changed"),
        ]  # fmt: skip
        # the second layer brought a second build step
        assert [(step.status, step.created_by) for step in diff.history] == [
            ("added", "tagledger-test-pusher")
        ]
    assert comparison.annotations == [
        KeyChange(REVISION, "aaa", "bbb"),
        KeyChange("retired", "x", None),
    ]


def test_the_summary_says_when_each_was_seen_which_tags_it_held_and_what_it_weighs(rebuild):
    _, _, _, old, new = rebuild

    comparison = compare(old, new)
    summary = comparison.as_dict()

    assert [(held.tag, held.since, held.until) for held in comparison.a.held] == [
        ("3.12", old.first_seen_at, new.first_seen_at)
    ]
    assert [(held.tag, held.until) for held in comparison.b.held] == [("3.12", None)]
    assert comparison.size_delta == sum(p.size for p in new.platforms.all()) - sum(
        p.size for p in old.platforms.all()
    )
    assert json.loads(json.dumps(summary)) == summary  # plain JSON types only
    assert summary["a"]["digest"] == old.digest
    assert summary["b"]["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert summary["a"]["first_seen_at"] == old.first_seen_at.isoformat()
    assert summary["b"]["tags"] == [{"tag": "3.12", "from": new.first_seen_at.isoformat(), "until": None}]
    assert summary["platforms_changed"] == ["linux/amd64", "linux/arm64/v8"]
    assert [row["delta"] > 0 for row in summary["sizes"]] == [True, True]
    assert summary["platforms"][0]["env"][0] == {
        "key": "PY", "change": "changed", "before": "3.12.1", "after": "3.12.2",
    }  # fmt: skip
    assert summary["platforms"][0]["layers"]["added"] == 2


def test_a_rebuild_from_the_same_layers_shares_them_and_differs_in_config_only(registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    first = pusher.push(repo_name, "1.0", "oci", seed="same", labels={"build": "1"})
    polled(repository)
    second = pusher.push(repo_name, "1.0", "oci", seed="same", labels={"build": "2"})
    polled(repository)

    comparison = compare(build_of(repository, first), build_of(repository, second))

    (diff,) = comparison.platforms
    assert (diff.platform, diff.status, diff.image_id_changed) == ("linux/amd64", "changed", True)
    assert [layer.status for layer in diff.layers] == ["shared"]
    assert diff.shared_size == diff.layers[0].size > 0
    assert diff.added_size == diff.removed_size == 0
    assert diff.labels == [KeyChange("build", "1", "2")]
    assert diff.config == diff.env == diff.history == []


def test_a_platform_added_or_removed_between_a_single_image_and_an_index(registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    single = pusher.push(repo_name, "1", "oci")
    polled(repository)
    index = pusher.push(repo_name, "1", "oci-index")  # the same amd64 image, plus arm64
    polled(repository)
    single_build, index_build = build_of(repository, single), build_of(repository, index)

    grew = compare(single_build, index_build)
    shrank = compare(index_build, single_build)

    assert [(diff.platform, diff.status) for diff in grew.platforms] == [
        ("linux/amd64", "unchanged"), ("linux/arm64/v8", "added"),
    ]  # fmt: skip
    assert grew.unchanged[0].a.digest == grew.unchanged[0].b.digest == single.digest
    assert grew.added[0].image_id_b == index.config_digests[1].removeprefix("sha256:")[:12]
    assert [(diff.platform, diff.status) for diff in shrank.platforms] == [
        ("linux/amd64", "unchanged"), ("linux/arm64/v8", "removed"),
    ]  # fmt: skip
    assert (grew.a.build.media_type, grew.b.build.media_type) == (
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    )  # fmt: skip
    as_dict = grew.as_dict()
    assert (as_dict["platforms_added"], as_dict["platforms_unchanged"]) == (
        ["linux/arm64/v8"],
        ["linux/amd64"],
    )
    arm64 = index_build.platforms.get(architecture="arm64")
    assert as_dict["sizes"][1] == {
        "platform": "linux/arm64/v8",
        "a": None,
        "b": arm64.size,
        "delta": arm64.size,
    }


def test_a_build_compared_with_itself_has_no_differences(rebuild):
    _, _, _, _, new = rebuild

    comparison = compare(new, Build.objects.get(pk=new.pk))

    assert comparison.same
    assert [diff.status for diff in comparison.platforms] == ["unchanged", "unchanged"]
    assert all(layer.status == "shared" for diff in comparison.platforms for layer in diff.layers)
    assert comparison.annotations == []
    assert comparison.size_delta == 0


# --- resolving what was pasted ------------------------------------------------------------------


def test_a_build_is_named_by_its_digest_a_unique_prefix_or_a_reference(rebuild):
    repository, _, _, old, new = rebuild
    hex_part = new.digest.removeprefix("sha256:")

    for text in [
        new.digest, hex_part, hex_part[:12], f"sha256:{hex_part[:12]}", f"  {hex_part[:16].upper()}  ",
        f"{repository.reference}@{new.digest}", f"{repository.reference}:3.12@{new.digest}",
        f"{repository.reference}:3.12",
    ]:  # fmt: skip
        assert resolve(text) == new, text
    assert resolve(f"{repository.reference}:anything@{old.digest}") == old  # the digest decides


def make_build(repository: Repository, digest: str) -> Build:
    return factories.build(repository, digest, media_type=OCI_MANIFEST)


def test_an_ambiguous_prefix_lists_every_candidate():
    host = Registry.objects.create(host="127.0.0.1:9")
    repository = Repository.objects.create(registry=host, name="team/app")
    one = make_build(repository, "sha256:abcdef01" + "1" * 56)
    two = make_build(repository, "sha256:abcdef02" + "2" * 56)

    with pytest.raises(CompareError) as raised:
        resolve("abcdef0")

    assert set(raised.value.candidates) == {one, two}
    assert one.digest in str(raised.value) and two.digest in str(raised.value)
    assert "Give more of the digest" in str(raised.value)
    assert resolve("abcdef01") == one
    assert resolve("sha256:abcdef02") == two


def test_the_same_digest_in_two_repositories_is_told_apart_by_its_repository():
    host = Registry.objects.create(host="127.0.0.1:9")
    digest = "sha256:" + "c" * 64
    here = make_build(Repository.objects.create(registry=host, name="team/app"), digest)
    mirror = make_build(Repository.objects.create(registry=host, name="mirror/app"), digest)

    with pytest.raises(CompareError) as raised:
        resolve(digest)

    assert set(raised.value.candidates) == {here, mirror}
    assert resolve(f"127.0.0.1:9/team/app@{digest}") == here
    assert resolve(f"127.0.0.1:9/mirror/app@{digest}") == mirror
    assert compare(here, mirror).same


def test_a_platform_digest_or_image_id_offers_the_build_it_belongs_to(rebuild):
    _, _, second, _, new = rebuild

    for text in [second.child_digests[1], second.config_digests[0].removeprefix("sha256:")[:12]]:
        with pytest.raises(CompareError) as raised:
            resolve(text)
        assert raised.value.candidates == [new]
        assert "platform manifest or image ID" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "name a build"),
        ("   ", "name a build"),
        ("abc", "too short"),
        ("ffff", "no recorded build"),
        ("sha256:" + "f" * 64, "no recorded build"),
        ("sha256:", "needs hex digits"),
        ("sha999:abcd", "unsupported digest algorithm"),
        ("sha256:xyz1", "only hex digits"),
        ("f" * 129, "longer than"),
        (HOSTILE, "neither a digest"),
        ("'; DROP TABLE history_build; --", "neither a digest"),
        ("\x00abcd", "neither a digest"),
        ("a" * 5000, "too long"),
        ("python", "no tag or version 'python'"),
        ("python:3.12", "no watched repository is named 'python'"),
        ("python@sha256:" + "e" * 64, "no watched repository is named 'python'"),
        (None, "not NoneType"),
        (42, "not int"),
        (["abcd"], "not list"),
    ],
)
def test_unknown_and_hostile_input_is_a_compare_error_that_says_why(text, says):
    with pytest.raises(CompareError) as raised:
        resolve(text)
    assert says in str(raised.value)
    assert len(str(raised.value)) < 400
    assert raised.value.candidates == []


# --- the page -----------------------------------------------------------------------------------


def test_the_page_shows_the_summary_first_then_each_section(client, public, rebuild):
    repository, _, _, old, new = rebuild

    response = client.get("/compare", {"a": old.digest[:15], "b": new.digest})

    assert response.status_code == 200
    html = response.content.decode()
    positions = [html.index(heading) for heading in (
        "<h2>Summary</h2>", "<h3>Size per platform</h3>", "<h2>Platforms</h2>", "<h3>linux/amd64</h3>",
        "<h4>Config</h4>", "<h4>Environment</h4>", "<h4>Labels</h4>", "<h4>Build steps</h4>",
        "<h3>linux/arm64/v8</h3>", "<h2>Annotations</h2>",
    )]  # fmt: skip
    assert positions == sorted(positions)
    assert f'data-copy="{repository.reference}@{new.digest}"' in html
    assert f'href="/builds/{old.pk}/"' in html
    assert "<code>3.12.1</code></td><td><code>3.12.2</code>" in html
    assert "Swap the two builds" in html
    assert response.context["comparison"].a.build == old


def test_hostile_label_values_from_the_registry_render_escaped(client, public, registry, pusher, repo_name):
    repository = watch(registry, repo_name)
    first = pusher.push(repo_name, "1", "oci", seed=1, labels={"note": "plain"})
    polled(repository)
    second = pusher.push(
        repo_name, "1", "oci", seed=2, labels={"note": HOSTILE, HOSTILE: "<img src=x onerror=alert(1)>"},
        env=[f"EVIL={HOSTILE}"], cmd=[HOSTILE],
    )  # fmt: skip
    polled(repository)

    response = client.get("/compare", {"a": first.digest, "b": second.digest})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_a_and_b_are_compared_in_the_order_the_reader_gave_them(client, public, rebuild):
    _, _, _, old, new = rebuild

    response = client.get("/compare", {"a": new.digest, "b": old.digest})

    comparison = response.context["comparison"]
    assert (comparison.a.build, comparison.b.build) == (new, old)


def test_an_ambiguous_prefix_shows_a_form_to_pick_the_build(client, public):
    host = Registry.objects.create(host="127.0.0.1:9")
    repository = Repository.objects.create(registry=host, name="team/app")
    one = make_build(repository, "sha256:abcdef01" + "1" * 56)
    two = make_build(repository, "sha256:abcdef02" + "2" * 56)

    response = client.get("/compare", {"a": "abcdef0", "b": "abcdef02"})

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["comparison"] is None
    assert '<select id="compare-a" name="a">' in html
    assert f'<option value="127.0.0.1:9/team/app@{one.digest}">' in html
    assert f'<option value="127.0.0.1:9/team/app@{two.digest}">' in html
    assert "matches 2 builds" in html


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, None),
        ({"a": "ffff", "b": ""}, "Give both builds"),
        ({"a": "ffff", "b": "eeee"}, "no recorded build has a digest starting with &#x27;ffff&#x27;"),
        ({"a": HOSTILE, "b": "x" * 3000}, "&lt;script&gt;"),
        ({"a": "\x00", "b": "sha256:zz"}, "only hex digits"),
    ],
)
def test_bad_input_shows_a_clear_message_and_the_form_never_a_500(client, public, params, says):
    response = client.get("/compare", params)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<form method="get" action="/compare" class="compare-form">' in html
    assert "<script>alert" not in html
    if says:
        assert says in html


def test_the_page_needs_a_login_unless_public(client, settings):
    settings.TAGLEDGER_PUBLIC = False
    response = client.get("/compare", {"a": "abcd", "b": "ef01"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_query_count_does_not_grow_with_platforms_layers_or_tags(
    client, public, registry, pusher, make_repo_name
):
    small = watch(registry, make_repo_name())
    pusher.push(small.name, "1", "oci", seed=1)
    polled(small)
    pusher.push(small.name, "1", "oci", seed=2)
    polled(small)
    large = watch(registry, make_repo_name())
    platforms = tuple(
        {"os": "linux", "architecture": arch} for arch in ("amd64", "arm64", "ppc64le", "s390x")
    )
    pusher.push(large.name, "1", "oci-index", seed=1, layers=3, platforms=platforms)
    for tag in ("1.0", "1.0.0", "latest"):
        pusher.tag(large.name, "1", tag)
    polled(large)
    pusher.push(large.name, "1", "oci-index", seed=2, layers=5, platforms=platforms[1:])
    polled(large)

    counts = []
    for repository in (small, large):
        old, new = repository.builds.order_by("first_seen_at")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/compare", {"a": old.digest, "b": new.digest}).status_code == 200
        counts.append(len(queries))

    # two resolves, the platforms of both, the tags both held, their attachments (history.supply_chain)
    assert counts[0] == counts[1] <= 5
