"""Search, compare and `lookup` take references as people paste them: with or without registry host
and `library/`, a tag alone, a layer digest, a tag at a date (history.references, search, compare).

Rows are written directly (factories): what is under test is how text is read, not what a poll
records. Runs on PostgreSQL and, through `test_the_sqlite_tests_pass_on_sqlite`, on SQLite too.
"""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository, Tag
from catalog.tags import classify
from history.compare import CompareError, picker, resolve, sides
from history.models import Build, Platform, TagEvent, TagState
from history.search import InvalidQuery, lookup
from tests.history.factories import build, version

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ON_SQLITE = connection.vendor == "sqlite"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def digest(seed: str) -> str:
    return "sha256:" + sha256(seed.encode()).hexdigest()


def repo(host: str, name: str) -> Repository:
    registry, _ = Registry.objects.get_or_create(host=host)
    return Repository.objects.create(registry=registry, name=name)


def point(repository: Repository, tag: str, to: Build | None, *, at: datetime, not_before=None) -> Tag:
    """The tag `tag` of `repository` moves to `to` (None: deleted) at `at`: an event and its state."""
    row, _ = Tag.objects.get_or_create(
        repository=repository, name=tag, defaults={"kind": classify(tag).kind.value}
    )
    kind = TagEvent.Kind.CREATED if not row.events.exists() else TagEvent.Kind.MOVED
    if to is None:
        kind = TagEvent.Kind.DELETED
    TagEvent.objects.create(tag=row, kind=kind, build=to, detected_at=at, not_before=not_before)
    state = TagState.objects.filter(tag=row).first()
    if to is None:
        state.present = False
        state.save()
    elif state is None:
        TagState.objects.create(tag=row, build=to, since=at, confirmed_at=at)
    else:
        state.build, state.present, state.since, state.confirmed_at = to, True, at, at
        state.save()
    return row


def with_layers(of: Build, *layers: str, os_name="linux", arch="amd64") -> Platform:
    return Platform.objects.create(
        build=of, os=os_name, architecture=arch, digest=digest(f"{of.digest} {arch}"),
        media_type="application/vnd.oci.image.manifest.v1+json",
        config_digest=digest(f"config {of.digest} {arch}"),
        layers=[{"digest": layer, "size": 10, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip"}
                for layer in layers],
    )  # fmt: skip


@pytest.fixture
def world():
    """Four watched repositories, three of them ending in `python`, and their builds by name."""
    local = repo("127.0.0.1:5000", "demo/python")
    hub = repo("docker.io", "library/python")
    mirror = repo("registry:5000", "mirror/python")
    app = repo("127.0.0.1:5000", "team/app")
    v3144 = version(local, "3.14.4")
    b = {
        "local": build(local, digest("local 3.14.4"), v3144, first_seen_at=T0),
        "local_old": build(local, digest("local 3.14.4 old"), v3144, first_seen_at=T0 - timedelta(days=2)),
        "local_3145": build(local, digest("local 3.14.5"), version(local, "3.14.5"), first_seen_at=T0),
        "hub": build(hub, digest("hub 3.14"), first_seen_at=T0),
        "mirror": build(mirror, digest("mirror 3.13"), first_seen_at=T0),
        "app": build(app, digest("app"), first_seen_at=T0),
    }
    point(local, "3.14.4", b["local_old"], at=T0 - timedelta(days=2))
    point(local, "3.14.4", b["local"], at=T0, not_before=T0 - timedelta(hours=6))
    point(local, "3.14", b["local"], at=T0)
    point(local, "3.14.5", b["local_3145"], at=T0)
    point(hub, "3.14", b["hub"], at=T0)
    point(mirror, "3.13", b["mirror"], at=T0)
    point(mirror, "3.14.4", b["mirror"], at=T0)
    point(app, "3.14", b["app"], at=T0)
    return {"local": local, "hub": hub, "mirror": mirror, "app": app, **{f"b_{k}": v for k, v in b.items()}}


def found(query: str) -> list[str]:
    return sorted(match.build.digest for match in lookup(query).matches)


# --- search: references as pasted -----------------------------------------------------------------

PASTED = [
    # the exact repository docker would pull wins: Docker Hub's spellings are one name
    ("python:3.14", ["hub"]),
    ("library/python:3.14", ["hub"]),
    ("docker.io/library/python:3.14", ["hub"]),
    ("docker.io/python:3.14", ["hub"]),
    ("index.docker.io/library/python:3.14", ["hub"]),
    # without the registry host, or with it spelled without its port
    ("demo/python:3.14", ["local"]),
    ("127.0.0.1:5000/demo/python:3.14", ["local"]),
    ("registry/mirror/python:3.13", ["mirror"]),
    ("mirror/python:3.13", ["mirror"]),
    # the exact repository has no such tag: every watched one ending in the name is asked
    ("python:3.13", ["mirror"]),
    ("python:3.14.4", ["local", "mirror"]),
    # the digest decides, in any repository the name may mean
    ("python@" + digest("mirror 3.13"), ["mirror"]),
    ("demo/python:whatever@" + digest("local 3.14.4 old"), ["local_old"]),
    ("app:3.14", ["app"]),
    # names that mean nothing watched, or a tag that is not there
    ("nothere/python:3.14", []),
    ("demo/python:9.9", []),
    ("python@" + digest("app"), []),
]


@pytest.mark.parametrize(("query", "builds"), PASTED)
def test_a_pasted_reference_finds_the_builds_it_names(world, query, builds):
    assert found(query) == sorted(world[f"b_{name}"].digest for name in builds)
    assert lookup(query).kind == "reference"


def test_a_name_several_repositories_end_in_lists_each_and_says_so(world):
    result = lookup("python:3.14.4")
    assert "127.0.0.1:5000/demo/python and registry:5000/mirror/python" in result.note
    assert "docker.io/library/python has none" in result.note


def test_a_name_no_repository_ends_in_says_so(world):
    result = lookup("nothere/python:3.14")
    assert not result.found
    assert result.note == "no watched repository is named 'nothere/python' (with or without a registry host)"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    host=st.sampled_from(["", "127.0.0.1:5000/", "127.0.0.1/"]),
    tag=st.sampled_from([":3.14.4", ":3.14", ""]),
    pinned=st.booleans(),
)
def test_every_spelling_of_the_local_repository_finds_its_build(world, host, tag, pinned):
    target = world["b_local"]
    query = f"{host}demo/python{tag}" + (f"@{target.digest}" if pinned else "")
    if not tag and not pinned:
        return  # a bare name is a name search
    assert found(query) == [target.digest]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(["", "library/", "docker.io/", "docker.io/library/", "index.docker.io/library/"]),
    suffix=st.sampled_from([":3.14", "@hub", ":3.14@hub", ":anything@hub"]),
)
def test_every_spelling_of_docker_hub_s_python_finds_its_build(world, prefix, suffix):
    target = world["b_hub"]
    query = f"{prefix}python{suffix.replace('@hub', '@' + target.digest)}"
    assert found(query) == [target.digest]
    assert resolve(query) == target


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80) | st.from_regex(r"[a-z0-9./:@_-]{1,60}", fullmatch=True))
def test_any_text_is_a_build_a_listed_ambiguity_or_a_reason(world, text):
    try:
        result = lookup(text)
    except InvalidQuery as invalid:
        assert str(invalid)
    else:
        assert result.kind in ("fragment", "digest", "reference", "name")
    try:
        assert isinstance(resolve(text), Build)
    except CompareError as error:
        assert str(error) and len(str(error)) < 2000


@pytest.mark.parametrize(
    "query",
    [
        "python:" + "a" * 129,
        "python:../../etc",
        "<script>alert(1)</script>:3.14",
        "pythön:3.14",
        "python:3.14@sha256:zz",
        "x" * 2000,
        "python:3.14\x00",
    ],
)
def test_hostile_references_are_an_invalid_query_or_nothing_never_an_error(world, query):
    try:
        result = lookup(query)
    except InvalidQuery as invalid:
        assert len(str(invalid)) < 500
    else:
        assert not result.matches


def test_the_search_page_escapes_what_it_quotes(client, public, world):
    response = client.get("/search", {"q": "<img src=x onerror=alert(1)>/python:3.14"})
    assert response.status_code == 200
    assert b"<img src=x" not in response.content


def test_the_search_page_shows_a_reference_and_its_note(client, public, world):
    html = client.get("/search", {"q": "python:3.14.4"}).content.decode()
    assert world["b_local"].digest[7:19] in html and world["b_mirror"].digest[7:19] in html
    assert "docker.io/library/python has none; these are from" in html


# --- search: layers -------------------------------------------------------------------------------


def test_a_layer_digest_finds_every_build_that_contains_it_with_the_platforms(world):
    shared = digest("base layer")
    with_layers(world["b_local"], shared, digest("top a"))
    with_layers(world["b_local"], shared, arch="arm64")
    with_layers(world["b_app"], digest("other"), shared)
    with_layers(world["b_hub"], digest("unrelated"))

    result = lookup(shared)

    assert result.kind == "digest"
    assert sorted(match.build.digest for match in result.matches) == sorted(
        [world["b_local"].digest, world["b_app"].digest]
    )
    by_build = {match.build.digest: match for match in result.matches}
    assert [str(p) for p in by_build[world["b_local"].digest].layer_of] == ["linux/amd64", "linux/arm64"]
    assert {match.matched for match in result.matches} == {"layer"}
    assert lookup(digest("no such layer")).matches == []


def test_a_layer_match_reads_layer_lists_that_are_not_what_they_should_be(world):
    Platform.objects.create(
        build=world["b_app"], digest=digest("odd"), media_type="x", layers={"digest": "x"}
    )
    Platform.objects.create(
        build=world["b_hub"], digest=digest("odd2"), media_type="x", layers=[1, None, "s"]
    )
    assert lookup(digest("anything")).matches == []


def test_the_search_page_says_a_build_contains_the_layer(client, public, world):
    layer = digest("base layer")
    with_layers(world["b_local"], layer)
    html = client.get("/search", {"q": layer}).content.decode()
    assert "contains this layer (linux/amd64)" in html


def test_the_build_page_copies_whole_layer_digests(client, public, world):
    layer = digest("base layer")
    with_layers(world["b_local"], layer)
    html = client.get(reverse("history:build", args=[world["b_local"].pk])).content.decode()
    assert f'data-copy="{layer}"' in html


# --- compare: references, bare tags, dates ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "within", "expected"),
    [
        ("demo/python:3.14", None, "local"),
        ("python:3.14", None, "hub"),
        ("3.14.5", None, "local_3145"),  # one watched repository has the tag
        ("3.14.4", "local", "local"),
        ("3.14.4", "mirror", "mirror"),
        ("python@" + digest("mirror 3.13"), None, "mirror"),
        (digest("app")[:20], None, "app"),
    ],
)
def test_compare_resolves_what_people_paste(world, text, within, expected):
    context = [world[within]] if within else None
    assert resolve(text, within=context) == world[f"b_{expected}"]


def test_a_tag_several_repositories_have_is_listed_never_guessed(world):
    with pytest.raises(CompareError) as raised:
        resolve("3.14.4")
    assert "in 2 watched repositories (127.0.0.1:5000/demo/python, registry:5000/mirror/python)" in str(
        raised.value
    )
    assert set(raised.value.candidates) == {world["b_local"], world["b_mirror"]}


def test_a_bare_tag_takes_the_other_sides_repository(world):
    a, b = sides("3.14.4", "demo/python:3.14.5")
    assert (a.build, b.build, a.error) == (world["b_local"], world["b_local_3145"], "")
    a, b = sides("3.14.4", "3.14.5", repository="demo/python")
    assert (a.build, b.build) == (world["b_local"], world["b_local_3145"])


def test_the_issue_s_bare_versions_compare(client, public, world):
    response = client.get("/compare", {"a": "3.14.4", "b": "3.14.5", "repository": "demo/python"})
    assert response.status_code == 200
    assert b"<h2>Summary</h2>" in response.content
    response = client.get("/compare", {"a": "3.14.4", "b": "3.14.5"})  # a narrowed by b's repository
    assert b"<h2>Summary</h2>" in response.content


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-18T12:00:00Z", "local_old"),  # the first sighting
        ("2026-11-19", "local_old"),  # the end of that day
        ("2026-11-20T05:00:00Z", "local_old"),  # the last poll before the move still saw it
        ("2026-11-20T12:00:00Z", "local"),
        ("2026-11-25", "local"),
    ],
)
def test_a_tag_at_a_date_is_the_build_it_held_then(world, at, expected):
    a, _ = sides("demo/python:3.14.4", "demo/python:3.14.5", a_at=at)
    assert (a.build, a.error) == (world[f"b_{expected}"], "")


def test_a_tag_before_its_first_sighting_or_in_an_unseen_window_says_so(world):
    a, _ = sides("demo/python:3.14.4", "3.14.5", a_at="2026-11-01")
    assert a.build is None
    assert "is not known at 2026-11-01 23:59:59" in a.error and "first seen 2026-11-18 12:00:00" in a.error
    a, _ = sides("demo/python:3.14.4", "3.14.5", a_at="2026-11-20T09:00:00Z")
    assert "changed between 2026-11-20 06:00:00" in a.error
    assert set(a.candidates) == {world["b_local_old"], world["b_local"]}
    a, _ = sides(digest("app"), "3.14.5", a_at="2026-11-20")
    assert "a date goes with a tag" in a.error
    a, _ = sides("demo/python:3.14.4", "3.14.5", a_at="yesterday")
    assert "not an ISO 8601 date" in a.error


def test_a_deleted_tag_at_a_date_after_its_deletion_says_so(world):
    point(world["app"], "3.14", None, at=T0 + timedelta(days=1))
    a, _ = sides("team/app:3.14", "3.14.5", a_at="2026-11-22")
    assert "pointed to no build at" in a.error and "deleted" in a.error


def test_the_api_compares_tags_at_dates(client, public, world):
    body = client.get(
        "/api/v1/compare", {"a": "3.14.4", "a_at": "2026-11-19", "b": "3.14.4", "repository": "demo/python"}
    ).json()
    assert (body["a"]["digest"], body["b"]["digest"]) == (
        world["b_local_old"].digest,
        world["b_local"].digest,
    )
    error = client.get("/api/v1/compare", {"a": "3.14.4", "b": "3.14.4"})
    assert error.status_code == 400
    assert error.json()["candidates"] == sorted(
        [
            f"127.0.0.1:5000/demo/python@{world['b_local'].digest}",
            f"registry:5000/mirror/python@{world['b_mirror'].digest}",
        ]
    )
    hostile = client.get("/api/v1/compare", {"a": "3.14.4", "b": "x", "a_at": "<script>"})
    assert hostile.status_code == 400


# --- the picker -----------------------------------------------------------------------------------


def test_the_picker_goes_repository_then_version_then_build_without_javascript(client, public, world):
    html = client.get("/compare").content.decode()
    assert 'name="a_repository"' in html and 'name="b_repository"' in html and "a_version" not in html

    html = client.get("/compare", {"a_repository": world["local"].pk, "step": "a"}).content.decode()
    assert 'name="a_version"' in html
    assert html.index('">3.14.5</option>') < html.index('">3.14.4</option>')  # newest version first
    version_id = world["b_local"].version_id

    html = client.get(
        "/compare", {"a_repository": world["local"].pk, "a_version": version_id, "step": "a"}
    ).content.decode()
    choice = f"127.0.0.1:5000/demo/python@{world['b_local'].digest}"
    assert f'value="{choice}"' in html
    assert "Give both builds" not in html

    html = client.get(
        "/compare",
        {"a_build": choice, "b_build": f"127.0.0.1:5000/demo/python@{world['b_local_3145'].digest}"},
    ).content.decode()
    assert "<h2>Summary</h2>" in html


def test_the_picker_answers_htmx_with_its_own_fieldset(client, public, world):
    response = client.get(
        "/compare", {"picker": "b", "b_repository": world["local"].pk}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.startswith('<fieldset class="compare-picker" id="picker-b">')
    assert 'name="b_version"' in html and "<html" not in html


def test_the_picker_filters_and_bounds_thousands_of_versions(world, django_assert_max_num_queries):
    for number in range(1200):
        version(world["app"], f"1.{number}.0")
    with django_assert_max_num_queries(3):
        chosen = picker(world["app"].pk, None, "")
    assert len(chosen.versions) == 100 and chosen.more_versions == 1100
    assert chosen.versions[0][1] == "1.1199.0"
    narrowed = picker(world["app"].pk, None, "1.11")
    assert [label for _, label in narrowed.versions][:3] == ["1.1199.0", "1.1198.0", "1.1197.0"]


@pytest.mark.parametrize(
    "params",
    [
        {"a_repository": "x"},
        {"a_repository": "99999999", "a_version": "-1"},
        {"a_repository": "1", "a_filter": "\x00"},
        {"a_filter": "<script>" * 100},
        {"a_build": "<script>alert(1)</script>"},
        {"a": "3.14.4", "repository": "<b>python</b>"},
        {"a": "3.14.4", "repository": "python"},  # two repositories end in python
    ],
)
def test_hostile_picker_and_compare_input_is_a_page_never_a_500(client, public, world, params):
    response = client.get("/compare", params)
    assert response.status_code == 200
    assert b"<script>alert" not in response.content and b"<b>python" not in response.content


# --- lookup -------------------------------------------------------------------------------------


def test_lookup_takes_a_short_reference_and_says_when_it_read_several(world):
    out = StringIO()
    call_command("lookup", "python:3.14.4", stdout=out)
    text = out.getvalue()
    assert text.startswith("docker.io/library/python has none; these are from 127.0.0.1:5000/demo/python")
    assert f"127.0.0.1:5000/demo/python@{world['b_local'].digest}" in text
    with pytest.raises(CommandError, match="no build matches"):
        call_command("lookup", "nothere/python:3.14", stdout=StringIO())


def test_lookup_help_says_what_one_can_paste(capsys):
    with pytest.raises(SystemExit):
        call_command("lookup", "--help")
    assert "demo/python:3.14" in capsys.readouterr().out


# --- on SQLite ----------------------------------------------------------------------------------


@pytest.mark.skipif(ON_SQLITE, reason="this is the SQLite run")
def test_the_sqlite_tests_pass_on_sqlite(tmp_path):
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'tagledger.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "layer or pasted"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in summary and "failed" not in summary, summary
