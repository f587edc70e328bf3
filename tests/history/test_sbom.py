"""The packages of an SBOM: SPDX 2.x and CycloneDX 1.x JSON from real tools read into name, version,
purl type and normalised purl, the image itself left out, deduplicated and sorted; any JSON at all
either reads into packages that fit their columns or fails with UnreadableDocument."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from history import sbom
from history.sbom import (
    MAX_COMPONENT_DEPTH,
    MAX_NAME,
    MAX_PURL,
    MAX_TYPE,
    MAX_VERSION,
    Package,
    Sbom,
    UnreadableDocument,
    parse_sbom,
)

CORPUS = Path(__file__).parent / "sboms"
ALPINE_3_15 = "arch=x86_64&distro=3.15.11"
BOUNDED = settings(
    max_examples=75, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def corpus(name: str) -> dict:
    return json.loads((CORPUS / name).read_text())


def spdx(*packages, **document) -> dict:
    return {"spdxVersion": "SPDX-2.3", "packages": list(packages), **document}


def cyclonedx(*components, **document) -> dict:
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": list(components), **document}


def purl_ref(locator: str, category: str = "PACKAGE-MANAGER") -> dict:
    return {"referenceCategory": category, "referenceType": "purl", "referenceLocator": locator}


# --- real SBOMs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "format", "tool", "count", "expected"),
    [
        (
            "trivy-alpine-3.15.spdx.json", "SPDX 2.3", "trivy-0.58.0", 11,
            [
                Package("musl", "1.2.2-r9", "apk", f"pkg:apk/alpine/musl@1.2.2-r9?{ALPINE_3_15}"),
                Package("libssl1.1", "1.1.1w-r1", "apk", f"pkg:apk/alpine/libssl1.1@1.1.1w-r1?{ALPINE_3_15}"),
                Package("alpine", "3.15.11", "", ""),  # the OS: no purl, but a thing the image holds
            ],
        ),
        (
            "trivy-alpine-3.15.cdx-1.5.json", "CycloneDX 1.5", "trivy-dev", 15,
            [
                Package("zlib", "1.2.11-r3", "apk", "pkg:apk/alpine/zlib@1.2.11-r3?distro=3.15.0"),
                Package("busybox", "1.34.1-r3", "apk", "pkg:apk/alpine/busybox@1.34.1-r3?distro=3.15.0"),
            ],
        ),
        (
            "syft-image-encoder.spdx.json", "SPDX 2.3", "syft-v0.42.0-bogus", 2,
            # "a-purl-1" is no purl: the package stays, without one
            [
                Package("package-1", "1.0.1", "", ""),
                Package("package-2", "2.0.1", "deb", "pkg:deb/debian/package-2@2.0.1"),
            ],
        ),
        (
            "vendor-alpine-3.10.spdx.json", "SPDX 2.2", "vendor", 3,
            [Package("busybox", "1.30.1-r5", "", ""), Package("ssl_client", "1.30.1-r5", "", "")],
        ),
        (
            "cyclonedx-python-lib-nested-1.4.cdx.json", "CycloneDX 1.4", "", 3,
            [Package("A", "0.1", "", ""), Package("B", "1.0", "", ""), Package("C", "1.0", "", "")],
        ),
        (
            "cyclonedx-spec-compositions-1.6.cdx.json", "CycloneDX 1.6", "", 3,
            [Package("Some Opensource Library", "2.0", "maven", "pkg:maven/ossproject/library@2.0")],
        ),
    ],
)  # fmt: skip
def test_real_sboms_read_into_their_packages(name, format, tool, count, expected):
    read = parse_sbom(corpus(name))
    assert (read.format, read.tool, len(read.packages), read.truncated) == (format, tool, count, False)
    assert set(expected) <= set(read.packages)
    assert list(read.packages) == sorted(set(read.packages))


def test_the_image_an_sbom_describes_is_not_one_of_its_packages():
    names = {package.name for package in parse_sbom(corpus("trivy-alpine-3.15.spdx.json")).packages}
    assert "alpine:3.15" not in names  # primaryPackagePurpose CONTAINER, purl pkg:oci/…
    names = {package.name for package in parse_sbom(corpus("syft-image-encoder.spdx.json")).packages}
    assert "user-image-input" not in names  # syft's SPDXRef-DocumentRoot-Image-…
    names = {package.name for package in parse_sbom(corpus("trivy-alpine-3.15.cdx-1.5.json")).packages}
    assert "alpine:3.15" not in names  # metadata.component
    names = {
        package.name for package in parse_sbom(corpus("cyclonedx-python-lib-nested-1.4.cdx.json")).packages
    }
    assert "my-project" not in names


@pytest.mark.parametrize(
    ("package", "kept"),
    [
        ({"name": "app", "primaryPackagePurpose": "CONTAINER"}, False),
        ({"name": "/src", "SPDXID": "SPDXRef-DocumentRoot-Directory-src"}, False),
        ({"name": "img", "externalRefs": [purl_ref("pkg:docker/library/alpine@3.19")]}, False),
        ({"name": "img", "externalRefs": [purl_ref("pkg:oci/alpine@sha256%3Aab?arch=amd64")]}, False),
        ({"name": "alpine", "primaryPackagePurpose": "OPERATING-SYSTEM", "versionInfo": "3.19.1"}, True),
        ({"name": "musl", "externalRefs": [purl_ref("pkg:apk/alpine/musl@1.2.4", "PACKAGE_MANAGER")]}, True),
    ],
)
def test_spdx_image_roots_are_skipped_by_purpose_id_or_purl_type(package, kept):
    assert bool(parse_sbom(spdx(package)).packages) is kept


def test_cyclonedx_skips_containers_and_files_but_reads_their_neighbours():
    read = parse_sbom(
        cyclonedx(
            {"type": "container", "name": "base-image", "components": [{"name": "inside", "version": "1"}]},
            {"type": "file", "name": "/bin/busybox"},
            {"type": "operating-system", "name": "debian", "version": "12.5"},
        )
    )
    assert read.packages == (Package("debian", "12.5", "", ""), Package("inside", "1", "", ""))


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ([{"vendor": "anchore", "name": "syft", "version": "1.4.1"}], "syft-1.4.1"),  # 1.4: a list
        ({"components": [{"type": "application", "name": "syft", "version": "1.4.1"}]}, "syft-1.4.1"),  # 1.5
        ({"services": [{"name": "scanner"}], "components": [{"name": "trivy"}]}, "trivy, scanner"),
        ([{"name": "a"}, {"name": "a"}, {"name": 7}, "x", None], "a"),
        ("syft", ""),
        ({"components": "syft"}, ""),
    ],
)
def test_cyclonedx_tools_in_either_shape(tools, expected):
    assert parse_sbom(cyclonedx(metadata={"tools": tools})).tool == expected


@pytest.mark.parametrize(
    ("creators", "expected"),
    [
        (["Organization: Anchore, Inc", "Tool: syft-1.4.1"], "syft-1.4.1"),
        (["Tool: syft-v0.105.0", "Tool: buildkit-v0.17.2"], "syft-v0.105.0, buildkit-v0.17.2"),
        (["Person: someone"], ""),
        ("Tool: syft", ""),
        ([7, None, "Tool:   "], ""),
    ],
)
def test_spdx_tool_is_what_the_creators_name_as_tools(creators, expected):
    assert parse_sbom(spdx(creationInfo={"creators": creators})).tool == expected


# --- normalised, deduplicated, sorted, bounded ---------------------------------------------------


def test_purls_are_normalised_and_give_the_type():
    read = parse_sbom(
        cyclonedx(
            {"name": "Django", "version": "4.2", "purl": "pkg:PyPI/Django@4.2"},
            {"name": "core", "version": "1.0", "purl": "pkg:NPM/%40angular/core@1.0"},
            {
                "name": "libc6",
                "version": "2.36-9+b1",
                "purl": "pkg:deb/debian/libc6@2.36-9+b1?distro=debian-12&arch=x",
            },
        )
    )
    assert read.packages == (
        Package("Django", "4.2", "pypi", "pkg:pypi/django@4.2"),
        Package("core", "1.0", "npm", "pkg:npm/%40angular/core@1.0"),
        Package("libc6", "2.36-9+b1", "deb", "pkg:deb/debian/libc6@2.36-9%2Bb1?arch=x&distro=debian-12"),
    )


@pytest.mark.parametrize(
    "purl",
    [
        "musl",
        "pkg:",
        "pkg:/musl",
        "",
        7,
        None,
        ["pkg:apk/a@1"],
        "pkg:apk/" + "a" * MAX_PURL,
    ],
)
def test_a_purl_that_does_not_parse_or_fit_leaves_the_package_without_one(purl):
    assert parse_sbom(cyclonedx({"name": "musl", "version": "1", "purl": purl})).packages == (
        Package("musl", "1", "", ""),
    )


def test_the_same_package_twice_is_one_and_the_list_is_sorted():
    musl = {"name": "musl", "version": "1.2.4", "purl": "pkg:apk/alpine/musl@1.2.4"}
    read = parse_sbom(cyclonedx(musl, {"name": "zlib"}, musl, {"name": "busybox", "components": [musl]}))
    assert [package.name for package in read.packages] == ["busybox", "musl", "zlib"]


def test_past_max_packages_the_first_ones_in_order_are_kept_and_it_says_so(monkeypatch):
    monkeypatch.setattr(sbom, "MAX_PACKAGES", 3)
    read = parse_sbom(cyclonedx(*({"name": f"p{number}"} for number in (5, 1, 4, 2, 3))))
    assert [package.name for package in read.packages] == ["p1", "p2", "p3"]
    assert read.truncated
    assert not parse_sbom(cyclonedx({"name": "p1"}, {"name": "p2"}, {"name": "p3"})).truncated


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        ({"name": "a\x00b", "version": "1\x00"}, Package("ab", "1", "", "")),
        ({"name": "line\nbreak\x1b[31m", "version": "\t2 "}, Package("linebreak[31m", "2", "", "")),
        ({"name": "\ud800x"}, Package("\ufffdx", "", "", "")),
        ({"name": "n" * 10_000, "version": "v" * 10_000}, Package("n" * MAX_NAME, "v" * MAX_VERSION, "", "")),
        ({"name": "x", "version": 1.5}, Package("x", "", "", "")),
    ],
)
def test_text_is_cleaned_and_clipped_to_the_columns(component, expected):
    assert parse_sbom(cyclonedx(component)).packages == (expected,)


@pytest.mark.parametrize("name", [None, 7, True, [], {}, "", "  ", "\x00\x01"])
def test_a_package_without_a_name_is_dropped(name):
    assert parse_sbom(cyclonedx({"name": name, "version": "1"}, {"name": "kept"})).packages == (
        Package("kept", "", "", ""),
    )


def test_wrong_types_inside_the_lists_are_skipped():
    read = parse_sbom(
        spdx(
            None,
            7,
            "musl",
            [],
            {"name": "ok", "externalRefs": "pkg:apk/a@1"},
            {"name": "ok2", "externalRefs": [None, 3]},
        )
    )
    assert [package.name for package in read.packages] == ["ok", "ok2"]


def test_nesting_deeper_than_the_bound_is_not_read_and_costs_no_recursion():
    component: dict = {"name": "leaf"}
    for depth in range(5000):
        component = {"name": f"level{depth}", "components": [component]}
    read = parse_sbom(cyclonedx(component))
    assert len(read.packages) == MAX_COMPONENT_DEPTH  # the outermost MAX_COMPONENT_DEPTH levels


# --- documents that are no SBOM ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "the SBOM is not a JSON object"),
        ({"name": "x"}, "neither SPDX"),
        ({"spdxVersion": "SPDX-3.0"}, "SPDX version 'SPDX-3.0' is not read"),
        ({"spdxVersion": 2.3}, "SPDX version 2.3 is not read"),
        ({"spdxVersion": "SPDX-2.3", "packages": {"name": "x"}}, "SPDX packages are not a list"),
        ({"bomFormat": "CycloneDX", "specVersion": 1.5}, "CycloneDX specVersion 1.5 is not read"),
        ({"bomFormat": "CycloneDX"}, "CycloneDX specVersion None is not read"),
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": "x"},
            "CycloneDX components are not a list",
        ),
    ],
)
def test_what_cannot_be_an_sbom_fails_with_the_reason(document, reason):
    with pytest.raises(UnreadableDocument, match=reason.replace("(", r"\(")):
        parse_sbom(document)


def test_an_sbom_of_nothing_is_an_sbom():
    assert parse_sbom({"spdxVersion": "SPDX-2.3"}) == Sbom("SPDX 2.3", "", ())
    assert parse_sbom({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": None}) == Sbom(
        "CycloneDX 1.6", "", ()
    )


# --- any JSON ------------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=())) | st.text(st.sampled_from("\x00\ud800\n pkg:/@?apk"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
PURL = st.from_regex(
    r"pkg:[a-zA-Z]{1,8}/([a-z%0-9]{1,5}/)?[A-Za-z0-9.%\x00-]{1,8}(@[^?#]{0,8})?(\?[a-z]{1,3}=.{0,4})?",
    fullmatch=True,
)
FIELD = JSON | PURL | TEXT
SPDX_PACKAGE = st.fixed_dictionaries(
    {},
    optional={
        "name": FIELD, "versionInfo": FIELD, "SPDXID": FIELD, "primaryPackagePurpose": FIELD,
        "externalRefs": st.lists(
            st.fixed_dictionaries({"referenceCategory": st.sampled_from(["PACKAGE-MANAGER", "OTHER"]) | FIELD,
                                   "referenceType": st.just("purl") | FIELD, "referenceLocator": FIELD})
            | JSON, max_size=3,
        ) | JSON,
    },
)  # fmt: skip
COMPONENT = st.recursive(
    st.fixed_dictionaries({}, optional={"name": FIELD, "version": FIELD, "purl": FIELD, "type": FIELD}),
    lambda inner: st.fixed_dictionaries({"name": FIELD, "components": st.lists(inner | JSON, max_size=3)}),
    max_leaves=10,
)
DOCUMENTS = (
    JSON
    | st.builds(lambda packages, version: {"spdxVersion": version, "packages": packages},
                st.lists(SPDX_PACKAGE | JSON, max_size=6) | JSON, st.just("SPDX-2.3") | FIELD)
    | st.builds(lambda components, tools: cyclonedx(*components, metadata={"tools": tools}),
                st.lists(COMPONENT | JSON, max_size=6), JSON)
)  # fmt: skip


def respects_the_bounds(read: Sbom) -> None:
    assert list(read.packages) == sorted(set(read.packages))
    for package in read.packages:
        assert package.name.strip() and len(package.name) <= MAX_NAME
        assert len(package.version) <= MAX_VERSION and len(package.type) <= MAX_TYPE
        assert len(package.purl) <= MAX_PURL and bool(package.purl) == bool(package.type)
        for text in (package.name, package.version, package.type, package.purl, read.tool):
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
            text.encode("utf-8")  # no lone surrogate
    assert all(package.type not in ("oci", "docker") for package in read.packages)


@BOUNDED
@given(DOCUMENTS)
def test_any_json_reads_into_bounded_packages_or_fails_with_a_reason(document):
    try:
        read = parse_sbom(document)
    except UnreadableDocument as error:
        assert str(error)
        return
    respects_the_bounds(read)
