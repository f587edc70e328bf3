"""Compare's supply-chain part: packages added, removed and changed (old → new version), for the
whole builds and per matched platform, and differences in signatures and provenance; on the page
(escaped) and in `compare?a=&b=` (the issue's `packages` shape)."""

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from history.compare import compare
from history.models import Attachment
from history.supply_chain import PackageRow, diff_packages
from tests.history.factories import Image, attachment, platform, sbom, signature

pytestmark = pytest.mark.django_db

BASE = [
    ("busybox", "1.36.1-r29"),
    ("musl", "1.2.5-r0"),
    ("zlib", "1.3.1-r1"),
    ("ca-certificates", "20240705-r0"),
]


def row(name: str, version: str, kind: str = "apk") -> PackageRow:
    return PackageRow(name, kind, version, f"pkg:{kind}/{name}@{version}")


# --- the diff, pure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("only_a", "only_b", "added", "removed", "changed"),
    [
        ([], [], [], [], []),
        (
            [row("openssl", "3.3.1-r0")],
            [row("openssl", "3.3.2-r0")],
            [],
            [],
            [("openssl", "3.3.1-r0", "3.3.2-r0")],
        ),
        ([], [row("curl", "8.9.1-r0")], ["curl"], [], []),
        ([row("curl", "8.9.1-r0")], [], [], ["curl"], []),
        # another type is another package: an npm `semver` is no apk `semver`
        ([row("semver", "7.6.2", "npm")], [row("semver", "7.6.3", "apk")], ["semver"], ["semver"], []),
        # two versions on one side, one on the other: the lowest pairs with the lowest (numbers as numbers)
        (
            [row("libssl", "1.10.0"), row("libssl", "1.9.0")],
            [row("libssl", "3.0.0")],
            [],
            ["libssl"],
            [("libssl", "1.9.0", "3.0.0")],
        ),
        # the same version under another purl (a qualifier changed) is no change
        (
            [PackageRow("zlib", "apk", "1.3", "pkg:apk/zlib@1.3?arch=x86_64")],
            [row("zlib", "1.3")],
            [],
            [],
            [],
        ),
    ],
)
def test_added_removed_and_changed(only_a, only_b, added, removed, changed):
    diff = diff_packages(only_a, only_b, len(only_a), len(only_b))
    assert [found.name for found in diff.added] == added
    assert [found.name for found in diff.removed] == removed
    assert [(found.name, found.before, found.after) for found in diff.changed] == changed


versions = st.text("0123456789.-r", min_size=1, max_size=8)
packages = st.lists(st.builds(row, st.sampled_from(["a", "b", "c"]), versions), max_size=8, unique=True)


@settings(max_examples=200, database=None)
@given(packages, packages)
def test_every_package_only_one_side_has_is_told_exactly_once(a, b):
    only_a, only_b = [p for p in a if p not in b], [p for p in b if p not in a]
    diff = diff_packages(only_a, only_b, len(a), len(b))
    before = [(p.type, p.name, p.version) for p in diff.removed] + [
        (c.type, c.name, c.before) for c in diff.changed
    ]
    after = [(p.type, p.name, p.version) for p in diff.added] + [
        (c.type, c.name, c.after) for c in diff.changed
    ]
    same = {(p.type, p.name, p.version) for p in only_a} & {(p.type, p.name, p.version) for p in only_b}
    assert sorted(before) == sorted(
        (p.type, p.name, p.version) for p in only_a if (p.type, p.name, p.version) not in same
    )
    assert sorted(after) == sorted(
        (p.type, p.name, p.version) for p in only_b if (p.type, p.name, p.version) not in same
    )
    assert all(change.before != change.after for change in diff.changed)


# --- two builds ---------------------------------------------------------------------------------


@pytest.fixture
def image():
    return Image("acme/app")


@pytest.fixture
def rebuilt(image):
    """1.0 built twice for two platforms: openssl moved on, curl came, ca-certificates went."""
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    for build, packages in (
        (old, [*BASE, ("openssl", "3.3.1-r0")]),
        (new, [*BASE[:3], ("openssl", "3.3.2-r0"), ("curl", "8.9.1-r0")]),
    ):
        amd64, arm64 = platform(build, "linux/amd64"), platform(build, "linux/arm64/v8")
        sbom(build, *packages, platform=amd64)
        sbom(build, *packages, ("linux-arm-firmware", "1"), platform=arm64)
    return old, new


def test_a_rebuild_s_packages_added_removed_and_changed(rebuilt):
    old, new = rebuilt
    supply = compare(old, new).supply
    packages = supply.packages.as_dict()
    assert packages["changed"] == [{"name": "openssl", "type": "apk", "from": "3.3.1-r0", "to": "3.3.2-r0"}]
    assert packages["added"] == [
        {"name": "curl", "type": "apk", "version": "8.9.1-r0", "purl": "pkg:apk/curl@8.9.1-r0"}
    ]
    assert [found["name"] for found in packages["removed"]] == ["ca-certificates"]
    assert (packages["a_count"], packages["b_count"], supply.packages.unchanged) == (6, 6, 4)
    assert [found.platform for found in supply.by_platform] == ["linux/amd64", "linux/arm64/v8"]
    assert [len(found.diff.changed) for found in supply.by_platform] == [1, 1]
    assert [found.diff.a_count for found in supply.by_platform] == [5, 6]


def test_no_sbom_on_a_side_compares_nothing_and_says_so(image, client, public):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    sbom(new, *BASE)
    supply = compare(old, new).supply
    assert supply.packages.as_dict() == {
        "added": [],
        "removed": [],
        "changed": [],
        "a_count": None,
        "b_count": 4,
    }
    text = words(client.get("/compare", {"a": old.digest, "b": new.digest}).content.decode())
    assert "The first build has no SBOM recorded: no packages to compare (the second has 4)." in text


def test_only_platforms_both_builds_have_are_compared_per_platform(image):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    sbom(old, *BASE, platform=platform(old, "linux/amd64"))
    sbom(new, *BASE, platform=platform(new, "linux/amd64"))
    sbom(new, *BASE, platform=platform(new, "linux/riscv64"))
    supply = compare(old, new).supply
    assert [found.platform for found in supply.by_platform] == ["linux/amd64"]
    assert not supply.packages.differs


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        ([], [], []),
        (["dev@acme.example"], [], [("signature", "signed by dev@acme.example (verified)", "unsigned")]),
        ([], ["dev@acme.example"], [("signature", "unsigned", "signed by dev@acme.example (verified)")]),
        (["dev@acme.example"], ["dev@acme.example"], []),
        (
            ["dev@acme.example"],
            ["mallory@evil.example"],
            [("signer identity", "dev@acme.example", "mallory@evil.example")],
        ),
    ],
)
def test_signature_differences(image, before, after, changes):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    for build, identities in ((old, before), (new, after)):
        for identity in identities:
            signature(build, identity)
    found = compare(old, new).supply.changes
    assert [(change.field, change.before, change.after) for change in found] == changes


def test_a_signature_that_stops_verifying_and_another_issuer_are_differences(image):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    signature(old, "dev@acme.example")
    signature(
        new,
        "dev@acme.example",
        verified=False,
        details={"issuer": "https://token.actions.githubusercontent.com"},
    )
    found = [(change.field, change.before, change.after) for change in compare(old, new).supply.changes]
    assert found == [
        ("signer issuer", "https://accounts.example.com", "https://token.actions.githubusercontent.com"),
        ("verified", "yes", "no"),
    ]


def test_provenance_differences_per_platform(image):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    for build, builder, commit in (
        (old, "https://github.com/actions/runner", "aaa"),
        (new, "https://evil.example/ci", "bbb"),
    ):
        attachment(
            build, Attachment.Kind.PROVENANCE, platform=platform(build, "linux/amd64"),
            details={"builder": builder, "source_repository": REPOSITORY, "source_commit": commit},
        )  # fmt: skip
    found = [
        (change.field, change.platform, change.before, change.after)
        for change in compare(old, new).supply.changes
    ]
    assert found == [
        ("builder", "linux/amd64", "https://github.com/actions/runner", "https://evil.example/ci"),
        ("source", "linux/amd64", "https://github.com/acme/app@aaa", "https://github.com/acme/app@bbb"),
    ]


# --- the page and the API -----------------------------------------------------------------------


def words(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()).replace(" .", ".")


def table(content: str, kind: str) -> list[tuple[str, ...]]:
    """The body rows of every table of `kind` (the whole builds', then each platform's), as cell texts."""
    found = []
    for body in re.findall(rf'<table class="[^"]*{kind}">.*?<tbody>(.*?)</tbody>', content, re.S):
        for cells in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
            found.append(tuple(words(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)))
    return found


def test_the_page_shows_counts_and_tables(client, public, rebuilt):
    old, new = rebuilt
    content = client.get("/compare", {"a": old.digest, "b": new.digest}).content.decode()
    text = words(content)
    assert "Packages 1 changed · 1 added · 1 removed · 4 unchanged (6 → 6 packages)" in text
    assert table(content, "compare-packages-changed") == [("openssl", "apk", "3.3.1-r0", "3.3.2-r0")] * 3
    assert table(content, "compare-packages-added") == [("curl", "apk", "8.9.1-r0")] * 3
    assert table(content, "compare-packages-removed") == [("ca-certificates", "apk", "20240705-r0")] * 3
    assert "linux/arm64/v8: 1 changed, 1 added, 1 removed" in text


def test_the_api_gives_the_issue_s_packages_and_per_platform_detail(client, public, rebuilt):
    old, new = rebuilt
    body = client.get("/api/v1/compare", {"a": old.digest, "b": new.digest}).json()
    assert set(body["packages"]) == {"added", "removed", "changed", "a_count", "b_count"}
    assert body["packages"]["changed"] == [
        {"name": "openssl", "type": "apk", "from": "3.3.1-r0", "to": "3.3.2-r0"}
    ]
    assert [found["platform"] for found in body["packages_by_platform"]] == ["linux/amd64", "linux/arm64/v8"]
    assert body["supply_changes"] == []


HOSTILE = "<script>alert(1)</script>"
REPOSITORY = "https://github.com/acme/app"


def test_hostile_package_names_and_signers_are_escaped_on_the_page(client, public, image):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    sbom(old, (HOSTILE, HOSTILE), ("a", "1"))
    sbom(new, (HOSTILE, "<b>2</b>"), ("<img src=x onerror=alert(1)>", "1", HOSTILE))
    signature(old, HOSTILE)
    content = client.get("/compare", {"a": old.digest, "b": new.digest}).content.decode()
    section = content[
        content.index('id="packages"') : content.index("</section>", content.index('id="packages"'))
    ]
    assert "<script" not in section and "<img" not in section and "<b>" not in section
    assert section.count("&lt;script&gt;") >= 3


def test_the_supply_part_costs_a_few_queries_whatever_the_sizes(image, django_assert_max_num_queries):
    old, new = image.release("1.0", "", "1.0"), image.release("1.0", "", "1.0")
    for build in (old, new):
        for name in ("linux/amd64", "linux/arm64", "linux/s390x"):
            sbom(build, *[(f"pkg{n}", str(n)) for n in range(200)], platform=platform(build, name))
            signature(build)
    with django_assert_max_num_queries(12):  # compare's own (platforms, held tags, …) and the supply chain's
        compare(old, new)
