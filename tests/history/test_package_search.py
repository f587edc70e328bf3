"""history.packages' readers: which builds contain a package (by name, name@version or purl),
and a build's packages, one platform's or all; keyset pages, a fixed number of queries, and a
clear error for every hostile parameter."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from hashlib import sha256
from io import StringIO
from pathlib import Path
from typing import NamedTuple

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from catalog.models import Registry, Repository, Tag
from catalog.oci.mediatypes import OCI_MANIFEST
from history.keyset import Cursor, InvalidCursor
from history.models import Attachment, Build, Platform, TagState
from history.packages import (
    InvalidPackageQuery,
    PackageCursor,
    UnknownBuild,
    in_build,
    package_set,
    parse_query,
    search,
)
from tests.history import factories

pytestmark = pytest.mark.django_db
NOW = timezone.now()
ROOT = Path(__file__).resolve().parents[2]


class Pkg(NamedTuple):
    name: str
    version: str = ""
    type: str = "deb"
    purl: str = ""


def deb(spec: str) -> Pkg:
    name, _, version = spec.partition("@")
    return Pkg(name, version, "deb", f"pkg:deb/debian/{name}@{version}?arch=amd64")


def digest(text: str) -> str:
    return "sha256:" + sha256(text.encode()).hexdigest()


def sbom(
    build: Build, packages: list[str], platform: Platform | None = None, name: str = "spdx"
) -> Attachment:
    """An SBOM attachment about `platform` (None: about the build's own digest)."""
    subject = platform.digest if platform else build.digest
    found = package_set(deb(spec) for spec in packages)
    return Attachment.objects.create(
        build=build, platform=platform, subject=subject, source=Attachment.Source.BUILDKIT,
        kind=Attachment.Kind.SBOM, manifest_digest=digest(f"{subject} {name}"), blob_digest=digest(name),
        details={"format": "SPDX 2.3", "tool": "", "package_count": found.size}, packages=found,
        package_count=found.size, found_at=NOW,
    )  # fmt: skip


def image(
    repository: Repository,
    version: str,
    *,
    hours_ago: int,
    platforms: dict[str, list[str]],
    tag: str = "",
) -> Build:
    """A build of `version` first seen `hours_ago`, with an SBOM per platform ("" for a package
    list about the build's own digest), and `tag` pointing at it now."""
    build = factories.build(
        repository,
        version=factories.version(repository, version),
        first_seen_at=NOW - timedelta(hours=hours_ago),
    )
    for name, packages in platforms.items():
        platform = None
        if name:
            os_name, architecture, *variant = name.split("/")
            platform = Platform.objects.create(
                build=build, os=os_name, architecture=architecture, variant="".join(variant),
                digest=digest(f"{build.digest} {name}"), media_type=OCI_MANIFEST,
            )  # fmt: skip
        if packages:
            sbom(build, packages, platform)
    if tag:
        row, _ = Tag.objects.get_or_create(repository=repository, name=tag, defaults={"kind": "exact"})
        TagState.objects.update_or_create(
            tag=row, defaults={"build": build, "since": NOW, "confirmed_at": NOW}
        )
    return build


@pytest.fixture
def repository() -> Repository:
    registry = Registry.objects.create(host="registry.test")
    return Repository.objects.create(registry=registry, name="library/app")


@pytest.fixture
def builds(repository):
    """Three builds of app: 1.0 (old openssl, untagged now), 1.1 (an arm64 still on the old
    openssl), 1.2 (current, no openssl at all on arm64)."""
    old = image(repository, "1.0", hours_ago=30, platforms={
        "linux/amd64": ["openssl@3.0.11", "bash@5.2"], "linux/arm64/v8": ["openssl@3.0.11", "bash@5.2"],
    })  # fmt: skip
    middle = image(repository, "1.1", hours_ago=20, tag="1.1", platforms={
        "linux/amd64": ["openssl@3.0.13", "bash@5.2"], "linux/arm64/v8": ["openssl@3.0.11", "bash@5.2"],
    })  # fmt: skip
    new = image(repository, "1.2", hours_ago=10, tag="latest", platforms={
        "linux/amd64": ["openssl@3.0.13", "bash@5.2.1"], "linux/arm64/v8": ["bash@5.2.1", "zlib1g@1.3"],
    })  # fmt: skip
    return old, middle, new


def rows(page) -> list[tuple]:
    return [
        (found.build.version.name, found.platforms, found.package_versions, found.current)
        for found in page.items
    ]


# --- reading the query ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, version, expected",
    [
        ("openssl", "", ("openssl", "", "")),
        ("openssl@3.0.13", "", ("openssl", "3.0.13", "")),
        ("  OpenSSL@3.0.13 \n", "", ("OpenSSL", "3.0.13", "")),
        ("openssl@3.0.13", "3.0.11", ("openssl", "3.0.11", "")),
        ("@babel/core@7.24.0", "", ("@babel/core", "7.24.0", "")),
        ("@babel/core", "", ("@babel/core", "", "")),
        ("openssl@", "", ("openssl", "", "")),
        ("pkg:deb/debian/openssl@3.0.13?arch=amd64", "", ("openssl", "3.0.13", "deb")),
        ("pkg:npm/%40babel/core@7.24.0", "", ("core", "7.24.0", "npm")),
        ("pkg:pypi/requests", "", ("requests", "", "pypi")),
    ],
)
def test_a_query_is_a_name_a_name_at_a_version_or_a_purl(text, version, expected):
    query = parse_query(text, version)
    assert (query.name, query.version, query.type) == expected


@pytest.mark.parametrize(
    "text, version, error",
    [
        ("", "", "give a package name"),
        ("   ", "", "give a package name"),
        ("@", "", "give a package name"),
        ("open\0ssl", "", "holds a control character"),
        ("openssl\x1b[2J", "", "holds a control character"),
        ("openssl", "3.0\0", "holds a control character"),
        ("x" * 100_000, "", "too long"),
        ("x" * 600, "", "the package name is too long"),
        ("openssl", "9" * 300, "the version is too long"),
        ("pkg:nothing", "", "is not a package URL"),
        ("pkg:/", "", "is not a package URL"),
    ],
)
def test_a_hostile_query_is_refused_with_the_reason(text, version, error):
    with pytest.raises(InvalidPackageQuery, match=error):
        parse_query(text, version)


# --- search -----------------------------------------------------------------------------------------


def test_a_name_finds_every_build_holding_any_version_newest_first(builds):
    assert rows(search("openssl")) == [
        ("1.2", ["linux/amd64"], ["3.0.13"], True),
        ("1.1", ["linux/amd64", "linux/arm64/v8"], ["3.0.11", "3.0.13"], True),
        ("1.0", ["linux/amd64", "linux/arm64/v8"], ["3.0.11"], False),
    ]


def test_a_name_at_a_version_finds_the_builds_and_platforms_holding_that_version(builds):
    assert rows(search("openssl@3.0.11")) == [
        ("1.1", ["linux/arm64/v8"], ["3.0.11"], True),
        ("1.0", ["linux/amd64", "linux/arm64/v8"], ["3.0.11"], False),
    ]
    assert rows(search("openssl", "3.0.13")) == rows(search("openssl@3.0.13"))


def test_names_are_matched_whole_and_without_regard_to_case(builds):
    assert len(search("OPENSSL").items) == 3
    assert search("openss").items == []
    assert search("ssl").items == []


def test_a_purl_finds_its_type_name_and_version(builds, repository):
    image(repository, "2.0", hours_ago=1, platforms={"linux/amd64": []})
    apk = factories.build(repository, first_seen_at=NOW)
    Attachment.objects.create(
        build=apk, subject=apk.digest, source="referrers", kind="sbom", manifest_digest=digest("apk"),
        packages=package_set([Pkg("openssl", "3.0.13", "apk", "pkg:apk/alpine/openssl@3.0.13")]),
        found_at=NOW,
    )  # fmt: skip
    assert [found.build for found in search("pkg:deb/debian/openssl@3.0.13").items] == [builds[2], builds[1]]
    assert [found.build for found in search("pkg:apk/alpine/openssl").items] == [apk]
    assert [found.build for found in search("openssl@3.0.13").items] == [apk, builds[2], builds[1]]


@pytest.mark.parametrize(
    "query", ["unknown", "unknown@1.0", "openssl@9.9.9", "bash@5.2.2", "pkg:rpm/x/openssl"]
)
def test_a_package_no_sbom_names_finds_nothing(builds, query):
    page = search(query)
    assert (page.items, page.next_cursor) == ([], None)


def test_an_sbom_of_the_build_digest_holds_for_every_platform(repository):
    image(
        repository, "1.0", hours_ago=1, platforms={"linux/amd64": [], "linux/arm64/v8": [], "": ["curl@8.5"]}
    )
    assert rows(search("curl")) == [("1.0", ["linux/amd64", "linux/arm64/v8"], ["8.5"], False)]


def test_a_single_platform_build_and_a_build_without_platforms_are_found(repository):
    single = image(repository, "1.0", hours_ago=2, platforms={"linux/amd64": ["curl@8.5"]})
    bare = image(repository, "0.9", hours_ago=3, platforms={"": ["curl@8.4"]})
    assert [(found.build, found.platforms) for found in search("curl").items] == [
        (single, ["linux/amd64"]),
        (bare, []),
    ]


def test_a_failed_sbom_or_another_kind_of_attachment_is_no_package_list(repository):
    build = image(repository, "1.0", hours_ago=1, platforms={"linux/amd64": []})
    Attachment.objects.create(
        build=build, subject=build.digest, source="referrers", kind="sbom", manifest_digest=digest("bad"),
        error="the document is not JSON", found_at=NOW,
    )  # fmt: skip
    Attachment.objects.create(
        build=build, subject=build.digest, source="referrers", kind="vulnerabilities",
        manifest_digest=digest("v"),
        packages=package_set([deb("curl@8.5")]), found_at=NOW,
    )  # fmt: skip
    assert search("curl").items == []


def test_current_says_whether_a_tag_points_at_the_build_now(builds, repository):
    old, middle, new = builds
    TagState.objects.filter(build=middle).update(present=False)  # 1.1 deleted: it pointed there last
    assert [(found.build, found.current) for found in search("openssl").items] == [
        (new, True),
        (middle, False),
        (old, False),
    ]


def test_pages_of_builds_continue_where_the_last_ended_without_repeats(repository):
    made = [
        image(repository, f"1.{n}", hours_ago=n, platforms={"linux/amd64": ["curl@8.5"]}) for n in range(7)
    ]
    seen, cursor = [], None
    for _ in range(4):
        page = search("curl", cursor=cursor, size=3)
        seen += [found.build for found in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == made  # newest (fewest hours ago) first, each once
    assert len(search("curl", size=7).items) == 7 and search("curl", size=7).next_cursor is None
    assert search("curl", cursor=Cursor.decode(Cursor(NOW - timedelta(hours=100), 1).encode())).items == []


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize(
    "holds",
    [
        "x.x.x.x.x.x.x.x",  # common: the newest builds fill every page
        "..........xx.x.",  # only old builds: the index finds them past the newest read
        "x.........x...x",  # one new, the rest old: a page from both
        "...............",
        "xxxxxxxxxxxxxxx",
    ],
)
def test_pages_hold_exactly_the_builds_that_contain_it_whichever_way_they_were_found(repository, holds, size):
    """`holds`: newest build first, x where its SBOM names curl."""
    made = []
    for n, mark in enumerate(holds):
        platforms = {"linux/amd64": ["bash@5.2"] + (["curl@8.5"] if mark == "x" else [])}
        made.append(image(repository, f"1.{n}", hours_ago=n, platforms=platforms))
    seen, cursor = [], None
    for _ in range(len(holds) + 1):
        page = search("curl", cursor=cursor, size=size)
        assert len(page.items) <= size
        seen += [found.build for found in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [build for build, mark in zip(made, holds, strict=True) if mark == "x"]


@pytest.mark.skipif(connection.vendor == "sqlite", reason="this is the SQLite run")
def test_the_search_finds_the_same_on_sqlite(tmp_path):
    """SQLite has no JSON containment: the sets holding a package are found with json_each there.
    The paging tests, which reach past the newest builds to that query, run on a SQLite database."""
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'tagledger.sqlite3'}"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        __file__,
        "-k",
        "pages_hold_exactly",
    ]
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "15 passed" in done.stdout, done.stdout


def test_a_page_is_a_fixed_number_of_queries_whatever_its_size(repository, django_assert_max_num_queries):
    for n in range(30):
        platforms = {"linux/amd64": ["curl@8.5", f"lib{n}@1"], "linux/arm64/v8": ["curl@8.4"], "": ["curl@3"]}
        image(repository, f"1.{n}", hours_ago=n, tag=f"1.{n}", platforms=platforms)
    # The package ids, the newest builds' sets, the page's builds, their platforms.
    with django_assert_max_num_queries(4):
        page = search("curl", size=25)
    assert len(page.items) == 25 and page.items[0].platforms == ["linux/amd64", "linux/arm64/v8"]
    with django_assert_max_num_queries(5):  # the newest builds leave the page short: the index too
        assert len(search("curl", cursor=page.next_cursor, size=25).items) == 5
    with django_assert_max_num_queries(6):  # and the SBOMs of what it found, which were not read
        assert len(search("lib0", size=2).items) == 1


# --- a build's packages -----------------------------------------------------------------------------


def listed(page) -> list[str]:
    return [f"{row.name}@{row.version}" for row in page.items]


def test_a_platform_lists_its_packages_by_name(builds):
    _, middle, _ = builds
    assert listed(in_build(middle.digest, "linux/arm64/v8")) == ["bash@5.2", "openssl@3.0.11"]
    assert listed(in_build(middle.digest, "linux/amd64")) == ["bash@5.2", "openssl@3.0.13"]


def test_without_a_platform_every_platforms_packages_are_listed(builds):
    _, middle, _ = builds
    assert listed(in_build(middle.digest)) == ["bash@5.2", "openssl@3.0.11", "openssl@3.0.13"]


def test_a_platform_digest_lists_that_platform(builds):
    _, middle, _ = builds
    arm64 = middle.platforms.get(architecture="arm64")
    page = in_build(arm64.digest)
    assert (page.build, page.platform, listed(page)) == (
        middle,
        "linux/arm64/v8",
        ["bash@5.2", "openssl@3.0.11"],
    )
    with pytest.raises(InvalidPackageQuery, match="is the platform image linux/arm64/v8, not linux/amd64"):
        in_build(arm64.digest, "linux/amd64")


def test_an_sbom_of_the_build_digest_adds_to_each_platform(repository):
    build = image(
        repository,
        "1.0",
        hours_ago=1,
        platforms={"linux/amd64": ["bash@5.2"], "linux/arm64": [], "": ["ca-certificates@2024"]},
    )
    assert listed(in_build(build.digest, "linux/amd64")) == ["bash@5.2", "ca-certificates@2024"]
    assert listed(in_build(build.digest, "linux/arm64")) == ["ca-certificates@2024"]


def test_a_build_without_an_sbom_lists_nothing(repository):
    build = image(repository, "1.0", hours_ago=1, platforms={"linux/amd64": []})
    page = in_build(build.digest)
    assert (page.items, page.next_cursor) == ([], None)


def test_pages_of_packages_continue_by_name_version_and_purl(repository, django_assert_max_num_queries):
    packages = [f"pkg{n:02d}@1" for n in range(12)] + ["pkg05@0.9", "pkg05@2"]
    build = image(repository, "1.0", hours_ago=1, platforms={"linux/amd64": packages})
    Attachment.objects.create(
        build=build, subject=build.digest, source="cosign-tag", kind="sbom", manifest_digest=digest("cdx"),
        packages=package_set([Pkg("pkg05", "1", "deb", "pkg:deb/ubuntu/pkg05@1")]), found_at=NOW,
    )  # fmt: skip
    seen, cursor = [], None
    while True:
        with django_assert_max_num_queries(5):
            page = in_build(build.digest, "linux/amd64", cursor, size=4)
        seen += [(row.name, row.version, row.purl) for row in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 15
    assert [row for row in seen if row[0] == "pkg05"] == [
        ("pkg05", "0.9", "pkg:deb/debian/pkg05@0.9?arch=amd64"),
        ("pkg05", "1", "pkg:deb/debian/pkg05@1?arch=amd64"),
        ("pkg05", "1", "pkg:deb/ubuntu/pkg05@1"),
        ("pkg05", "2", "pkg:deb/debian/pkg05@2?arch=amd64"),
    ]


def test_a_package_cursor_is_checked_like_every_other(builds):
    _, middle, _ = builds
    assert PackageCursor.decode(PackageCursor(7).encode()) == (7,)
    for token in [
        "",
        "p1",
        "!!",
        Cursor(NOW, 1).encode(),
        PackageCursor(7).encode() + "=",
        "cDA",
        "cC0x",
        "eDE",
    ]:
        with pytest.raises(InvalidCursor):
            PackageCursor.decode(token)
    with pytest.raises(InvalidCursor):  # no such package
        in_build(middle.digest, cursor=PackageCursor(10**12))


def test_an_unknown_build_or_hostile_platform_is_refused(builds):
    _, middle, _ = builds
    with pytest.raises(UnknownBuild):
        in_build(digest("nothing"))
    for bad in ["sha256:abc", "sha256:" + "g" * 64, "", "x" * 10_000, middle.digest + "\0"]:
        with pytest.raises(InvalidPackageQuery, match="is not a digest"):
            in_build(bad)
    with pytest.raises(
        InvalidPackageQuery,
        match=r"has no platform linux/s390x \(its platforms: linux/amd64, linux/arm64/v8\)",
    ):
        in_build(middle.digest, "linux/s390x")
    for bad in ["linux", "linux/amd64/v8/x", "linux/\0", "linux/amd64 ", "linux/" + "a" * 100]:
        with pytest.raises(InvalidPackageQuery, match="is not a platform"):
            in_build(middle.digest, bad)


# --- the API ----------------------------------------------------------------------------------------

API = "/api/v1"


def get(client, path: str, status: int = 200, **params):
    response = client.get(f"{API}/{path}", params)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


@pytest.mark.usefixtures("public")
def test_the_api_lists_the_builds_containing_a_package(client, builds):
    _, middle, new = builds
    body = get(client, "packages", name="openssl", version="3.0.13")
    app = {"repository": "registry.test/library/app", "variant": "", "platforms": ["linux/amd64"]}
    assert body == {
        "items": [
            {**app, "digest": new.digest, "version": "1.2", "package_version": "3.0.13", "current": True},
            {**app, "digest": middle.digest, "version": "1.1", "package_version": "3.0.13", "current": True},
        ],
        "next": None,
    }
    assert get(client, "packages", name="openssl@3.0.13") == body
    assert get(client, "packages", name="nothing") == {"items": [], "next": None}


@pytest.mark.usefixtures("public")
def test_the_api_pages_with_the_cursor_it_gave(client, builds):
    first = get(client, "packages", name="openssl", limit="2")
    assert len(first["items"]) == 2 and first["next"]
    rest = get(client, "packages", name="openssl", limit="2", cursor=first["next"])
    assert [item["version"] for item in first["items"] + rest["items"]] == ["1.2", "1.1", "1.0"]
    assert rest["next"] is None


@pytest.mark.usefixtures("public")
@pytest.mark.parametrize(
    "params, error",
    [
        ({}, "name"),
        ({"name": ""}, "give a package name"),
        ({"name": "open\0ssl"}, "control character"),
        ({"name": "openssl\x07"}, "control character"),
        ({"name": "x" * 5000}, "name"),
        ({"name": "openssl", "version": "1\x00"}, "control character"),
        ({"name": "openssl", "cursor": "bogus!"}, "cursor: this page link is damaged"),
        ({"name": "openssl", "cursor": "cDE"}, "cursor: this page link is damaged"),  # a package cursor
        ({"name": "openssl", "limit": "0"}, "limit"),
        ({"name": "openssl", "limit": "1e3"}, "limit"),
        ({"name": "pkg:"}, "not a package URL"),
    ],
)
def test_the_api_refuses_hostile_search_parameters_with_400(client, builds, params, error):
    assert error in get(client, "packages", 400, **params)["detail"]


@pytest.mark.usefixtures("public")
def test_the_api_lists_a_builds_packages_by_platform(client, builds):
    _, middle, _ = builds
    body = get(client, f"builds/{middle.digest}/packages", platform="linux/arm64/v8")
    assert body == {
        "items": [
            {"name": "bash", "version": "5.2", "type": "deb", "purl": "pkg:deb/debian/bash@5.2?arch=amd64"},
            {
                "name": "openssl",
                "version": "3.0.11",
                "type": "deb",
                "purl": "pkg:deb/debian/openssl@3.0.11?arch=amd64",
            },
        ],
        "next": None,
    }
    everything = get(client, f"builds/{middle.digest}/packages", limit="2")
    rest = get(client, f"builds/{middle.digest}/packages", limit="2", cursor=everything["next"])
    assert [row["version"] for row in everything["items"] + rest["items"]] == ["5.2", "3.0.11", "3.0.13"]


@pytest.mark.usefixtures("public")
def test_the_api_says_404_for_an_unknown_build_and_400_for_a_bad_platform_or_cursor(client, builds):
    _, middle, _ = builds
    assert "no watched repository" in get(client, f"builds/{digest('none')}/packages", 404)["detail"]
    assert "is not a digest" in get(client, "builds/sha256:abc/packages", 400)["detail"]
    assert (
        "has no platform linux/s390x"
        in get(client, f"builds/{middle.digest}/packages", 400, platform="linux/s390x")["detail"]
    )
    assert (
        "is not a platform" in get(client, f"builds/{middle.digest}/packages", 400, platform="x\0")["detail"]
    )
    for cursor in ("bogus!", Cursor(NOW, 1).encode(), PackageCursor(10**12).encode()):
        detail = get(client, f"builds/{middle.digest}/packages", 400, cursor=cursor)["detail"]
        assert detail.startswith("cursor: this page link is damaged")


# --- the CLI ----------------------------------------------------------------------------------------


def lookup(*args: str) -> str:
    out = StringIO()
    call_command("lookup", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_cli_lists_one_line_per_build(builds):
    old, middle, _ = builds
    output = lookup("--package", "openssl@3.0.11")
    assert output.splitlines() == [
        "2 builds contain 'openssl@3.0.11':",
        f"registry.test/library/app  1.1  {middle.digest}  linux/arm64/v8              3.0.11  current",
        f"registry.test/library/app  1.0  {old.digest}  linux/amd64,linux/arm64/v8  3.0.11",
    ]
    assert lookup("--package", "OpenSSL").count("registry.test/library/app") == 3


def test_the_cli_prints_the_api_body_as_json(client, builds, public):
    assert json.loads(lookup("--package", "openssl", "--json")) == get(client, "packages", name="openssl")


def test_the_cli_pages_with_limit_and_cursor(builds):
    first = lookup("--package", "openssl", "--limit", "2")
    assert "the newest 2 only; older ones: --cursor " in first
    cursor = first.rsplit("--cursor ", 1)[1].strip()
    assert "1 build contains 'openssl':" in lookup("--package", "openssl", "--cursor", cursor)


@pytest.mark.parametrize(
    "args, returncode, message",
    [
        (["--package", "openssl@9"], 1, "no build contains 'openssl@9'"),
        (["--package", "unknown", "--json"], 1, "no build contains 'unknown'"),
        (
            ["--package", "open\0ssl"],
            1,
            "invalid package: the package 'open\\x00ssl' holds a control character",
        ),
        (["--package", ""], 1, "invalid package: give a package name"),
        ([], 1, "give either a query or --package, not both"),
        (["python:3.14", "--package", "openssl"], 1, "give either a query or --package, not both"),
        (["--package", "openssl", "--cursor", "bogus"], 1, "--cursor: this page link is damaged"),
    ],
)
def test_the_cli_fails_with_the_reason(builds, args, returncode, message):
    with pytest.raises(CommandError) as failed:
        lookup(*args)
    assert (failed.value.returncode, message in str(failed.value)) == (returncode, True), str(failed.value)


# --- the page ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("public")
def test_the_search_page_lists_the_builds_with_links(client, builds):
    _, middle, new = builds
    response = client.get("/search", {"package": "openssl@3.0.13"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 builds containing <code>openssl@3.0.13</code>" in page
    for build in (middle, new):
        assert f'href="/builds/{build.pk}"' in page or reverse("history:build", args=[build.pk]) in page
    assert reverse("history:repository", args=[new.repository_id]) in page
    assert page.count("a tag points here") == 2
    assert 'data-label="Platforms">linux/amd64</td>' in page


@pytest.mark.usefixtures("public")
def test_the_search_page_says_when_nothing_matches(client, builds):
    assert (
        "No build's SBOM names the package <code>openssl@0.1</code>."
        in client.get("/search", {"package": "openssl@0.1"}).content.decode()
    )


@pytest.mark.usefixtures("public")
@pytest.mark.parametrize(
    "params, error",
    [
        ({"package": "open\0ssl"}, "holds a control character"),
        ({"package": "x" * 3000}, "too long"),
        ({"package": "openssl", "cursor": "bogus!"}, "this page link is damaged"),
    ],
)
def test_the_search_page_shows_a_bad_package_query_as_400(client, builds, params, error):
    response = client.get("/search", params)
    assert response.status_code == 400
    assert error in response.content.decode()


# --- the build's packages page ----------------------------------------------------------------------


@pytest.mark.usefixtures("public")
def test_the_build_s_packages_page_lists_what_the_api_lists_by_platform_and_page(client, builds):
    _, middle, _ = builds
    url = reverse("history:build_packages", args=[middle.pk])

    def shown(response) -> list[str]:
        assert response.status_code == 200
        return [
            row.split("</code>")[0]
            for row in response.content.decode().split('<td><a href="/search?package=')[1:]
        ]

    assert shown(client.get(url)) == ['bash"><code>bash', 'openssl"><code>openssl', 'openssl"><code>openssl']
    assert shown(client.get(url, {"platform": "linux/arm64/v8"})) == [
        'bash"><code>bash',
        'openssl"><code>openssl',
    ]
    first = client.get(url, {"platform": "linux/amd64"})
    assert b"3.0.13" in first.content and b"3.0.11" not in first.content
    after_bash = in_build(middle.digest, size=1).next_cursor.encode()  # the API's cursor is the page's
    assert shown(client.get(url, {"cursor": after_bash})) == ['openssl"><code>openssl'] * 2


@pytest.mark.usefixtures("public")
@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"platform": "linux/s390x"}, "has no platform linux/s390x"),
        ({"platform": "linux/\0"}, "is not a platform"),
        ({"platform": "<script>/x"}, "is not a platform"),
        ({"cursor": "not-a-cursor"}, "damaged or was edited"),
    ],
)
def test_the_build_s_packages_page_answers_bad_parameters_with_a_400_that_says_why(
    client, builds, params, says
):
    _, middle, _ = builds
    response = client.get(reverse("history:build_packages", args=[middle.pk]), params)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert b"<script>" not in response.content
    assert client.get(reverse("history:build_packages", args=[10**9])).status_code == 404
