"""Tag classification, version ordering and line grouping, on tags real registries serve."""

import random
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.oci.reference import is_valid_tag
from catalog.tags import (
    Kind,
    TagInfo,
    classify,
    default_line_depth,
    is_prerelease,
    line_of,
    version_key,
    version_of,
)

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"

LATEST, MAJOR, MINOR, EXACT = Kind.LATEST, Kind.MAJOR, Kind.MINOR, Kind.EXACT
REVISION, TIMESTAMP, FLOATING = Kind.REVISION, Kind.TIMESTAMP, Kind.FLOATING
ARTIFACT, OTHER = Kind.ARTIFACT, Kind.OTHER

# (tag, kind, version, variant, other fields that must hold)
TABLE = [
    # Docker Hub python
    ("latest", LATEST, "", "", {"channel": "latest"}),
    ("3", MAJOR, "3", "", {}),
    ("3.14", MINOR, "3.14", "", {}),
    ("3.13.1", EXACT, "3.13.1", "", {}),
    ("3.12.7-slim-bookworm", EXACT, "3.12.7", "slim-bookworm", {}),
    ("3.12-alpine3.20", MINOR, "3.12", "alpine3.20", {}),
    ("3.13-slim", MINOR, "3.13", "slim", {}),
    ("3-bookworm", MAJOR, "3", "bookworm", {}),
    ("3.12.7-windowsservercore-ltsc2022", EXACT, "3.12.7", "windowsservercore-ltsc2022", {}),
    ("3.14.0rc1-bookworm", EXACT, "3.14.0rc1", "bookworm", {}),
    ("3.14.0a1", EXACT, "3.14.0a1", "", {}),
    ("3.14.0b2-slim", EXACT, "3.14.0b2", "slim", {}),
    ("3.14-rc-alpine", MINOR, "3.14-rc", "alpine", {}),
    ("slim", OTHER, "", "", {}),
    ("alpine", OTHER, "", "", {}),
    # nginx
    ("1.27.3-alpine-slim", EXACT, "1.27.3", "alpine-slim", {}),
    ("1.26-alpine-perl", MINOR, "1.26", "alpine-perl", {}),
    ("mainline", FLOATING, "", "", {"channel": "mainline"}),
    ("mainline-alpine", FLOATING, "", "alpine", {"channel": "mainline"}),
    ("stable", FLOATING, "", "", {"channel": "stable"}),
    ("stable-perl", FLOATING, "", "perl", {"channel": "stable"}),
    ("stable-alpine3.20-slim", FLOATING, "", "alpine3.20-slim", {"channel": "stable"}),
    # node
    ("lts", FLOATING, "", "", {"channel": "lts"}),
    ("current-alpine", FLOATING, "", "alpine", {"channel": "current"}),
    ("lts-bookworm-slim", FLOATING, "", "bookworm-slim", {"channel": "lts"}),
    ("22.12.0-alpine3.21", EXACT, "22.12.0", "alpine3.21", {}),
    ("22-bookworm-slim", MAJOR, "22", "bookworm-slim", {}),
    ("iron", OTHER, "", "", {}),
    # golang
    ("1.23.4-bookworm", EXACT, "1.23.4", "bookworm", {}),
    ("1.23", MINOR, "1.23", "", {}),
    ("1.24rc1-alpine", EXACT, "1.24rc1", "alpine", {}),  # a numbered prerelease names one release
    ("1.25rc3-alpine3.22", EXACT, "1.25rc3", "alpine3.22", {}),
    # eclipse-temurin, openjdk: `_N` is upstream build metadata, part of the version
    ("17.0.13_11-jdk-noble", EXACT, "17.0.13_11", "jdk-noble", {}),
    ("1.8.0_432", EXACT, "1.8.0_432", "", {}),
    ("1.2.3_1", EXACT, "1.2.3_1", "", {}),
    ("17-jdk", MAJOR, "17", "jdk", {}),
    ("21-jre-alpine", MAJOR, "21", "jre-alpine", {}),
    # Java 8 update versions, and the build after them
    ("8u432-b06-jdk", EXACT, "8u432-b06", "jdk", {}),
    ("8u502-b07-jdk-alpine", EXACT, "8u502-b07", "jdk-alpine", {}),
    ("8u462", EXACT, "8u462", "", {}),
    ("8u462-al2023-jre", EXACT, "8u462", "al2023-jre", {}),
    ("8-jdk", MAJOR, "8", "jdk", {}),
    ("25_36-jdk-noble", EXACT, "25_36", "jdk-noble", {}),
    ("21.0.8_9-jre", EXACT, "21.0.8_9", "jre", {}),
    # a second dotted version directly after the first is part of it (pypy, vendors' builds)
    ("8.96-8.0.504-jdk", EXACT, "8.96-8.0.504", "jdk", {}),
    ("3.11-7.3.20-trixie", EXACT, "3.11-7.3.20", "trixie", {}),
    ("v1.19.0-1.0", EXACT, "1.19.0-1.0", "", {}),
    # words before the version are the front of the variant
    ("open-21.0.8_9-jdk-noble", EXACT, "21.0.8_9", "open-jdk-noble", {}),
    ("cli-2.12.0-php8.4", EXACT, "2.12.0", "cli-php8.4", {}),
    ("enterprise-7.6.7", EXACT, "7.6.7", "enterprise", {}),
    ("k8s-1.31", MINOR, "1.31", "k8s", {}),
    # after words, the longest version is the version: clojure's tools-deps release on temurin 21
    ("temurin-21-tools-deps-1.12.1.1550-trixie", EXACT, "1.12.1.1550", "temurin-21-tools-deps-trixie", {}),
    ("temurin-21-lein", MAJOR, "21", "temurin-lein", {}),
    ("25-jdk-ubuntu-24.04", MAJOR, "25", "jdk-ubuntu-24.04", {}),
    # ubuntu, debian, alpine, busybox
    ("24.04", MINOR, "24.04", "", {}),
    ("noble", OTHER, "", "", {}),
    ("noble-20241118.1", TIMESTAMP, "", "", {"built_at": datetime(2024, 11, 18, tzinfo=UTC)}),
    ("rolling", FLOATING, "", "", {"channel": "rolling"}),
    ("12.8-slim", MINOR, "12.8", "slim", {}),
    ("bookworm-slim", OTHER, "", "", {}),
    ("bookworm-20241111", TIMESTAMP, "", "", {"built_at": datetime(2024, 11, 11, tzinfo=UTC)}),
    ("bookworm-20260803-slim", TIMESTAMP, "", "", {"built_at": datetime(2026, 8, 3, tzinfo=UTC)}),
    ("trixie", OTHER, "", "", {}),
    ("stable-slim", FLOATING, "", "slim", {"channel": "stable"}),
    ("oldstable-slim", FLOATING, "", "slim", {"channel": "oldstable"}),
    ("testing", FLOATING, "", "", {"channel": "testing"}),
    ("unstable", FLOATING, "", "", {"channel": "unstable"}),
    ("edge", FLOATING, "", "", {"channel": "edge"}),
    ("3.21.0", EXACT, "3.21.0", "", {}),
    ("1.37.0-uclibc", EXACT, "1.37.0", "uclibc", {}),
    ("1.37-musl", MINOR, "1.37", "musl", {}),
    # postgres, redis, mysql, jenkins, chrome-style four-part, traefik, CalVer
    ("17.2-bookworm", MINOR, "17.2", "bookworm", {}),
    ("17-alpine3.21", MAJOR, "17", "alpine3.21", {}),
    ("7.4.1-alpine", EXACT, "7.4.1", "alpine", {}),
    ("8.0.40-debian", EXACT, "8.0.40", "debian", {}),
    ("8.4-oraclelinux9", MINOR, "8.4", "oraclelinux9", {}),
    ("2.479.2-lts-jdk17", EXACT, "2.479.2", "lts-jdk17", {}),
    ("lts-jdk17", FLOATING, "", "jdk17", {"channel": "lts"}),
    ("131.0.6778.85", EXACT, "131.0.6778.85", "", {}),
    ("1.2.3.4", EXACT, "1.2.3.4", "", {}),
    ("v2.45.0", EXACT, "2.45.0", "", {}),
    ("v3.2", MINOR, "3.2", "", {}),
    ("v3", MAJOR, "3", "", {}),
    ("2024.11.3", EXACT, "2024.11.3", "", {}),
    ("2024.11.26", EXACT, "2024.11.26", "", {}),
    ("2024", MAJOR, "2024", "", {}),
    # prereleases are part of the version, never a variant
    ("1.2.3-rc1", EXACT, "1.2.3-rc1", "", {}),
    ("1.2.3-rc.1", EXACT, "1.2.3-rc.1", "", {}),
    ("1.2.3-beta.2", EXACT, "1.2.3-beta.2", "", {}),
    ("1.2.3-alpha", EXACT, "1.2.3-alpha", "", {}),
    ("v2.45.0-rc.0", EXACT, "2.45.0-rc.0", "", {}),
    ("9.0.100-preview.7-bookworm-slim", EXACT, "9.0.100-preview.7", "bookworm-slim", {}),
    # prerelease labels in any case, attached, dotted or dashed, with the number after a dash
    ("1.2.3-RC1", EXACT, "1.2.3-RC1", "", {}),
    ("8.5.10RC1-cli", EXACT, "8.5.10RC1", "cli", {}),
    ("2.12.0-RC.2-alpine", EXACT, "2.12.0-RC.2", "alpine", {}),
    ("19beta3", EXACT, "19beta3", "", {}),
    ("19beta3-alpine3.22", EXACT, "19beta3", "alpine3.22", {}),
    ("12.1.0.beta3-jre21", EXACT, "12.1.0.beta3", "jre21", {}),
    ("4.0.0-rc-5-eclipse-temurin-17", EXACT, "4.0.0-rc-5", "eclipse-temurin-17", {}),
    ("5.0.0-alpha-13-jdk21", EXACT, "5.0.0-alpha-13", "jdk21", {}),
    ("26-ea-11-jdk-trixie", EXACT, "26-ea-11", "jdk-trixie", {}),
    ("26-ea-jdk", MAJOR, "26-ea", "jdk", {}),
    ("8.0-M02-alpine", EXACT, "8.0-M02", "alpine", {}),
    ("10.0.100-rc.1.25451.107-noble", EXACT, "10.0.100-rc.1.25451.107", "noble", {}),
    ("36.0.1.Final-jdk21", EXACT, "36.0.1.Final", "jdk21", {}),
    ("3.10.0-21.0.beta-sdk", EXACT, "3.10.0-21.0.beta", "sdk", {}),  # Dart: numbers lead the label
    ("3.10.0-75.0.dev-sdk", EXACT, "3.10.0-75.0.dev", "sdk", {}),
    ("1.2.3-a", EXACT, "1.2.3", "a", {}),  # a lone letter is a variant word
    # Ubuntu's own images: the base release and its risk are the variant
    ("2.4-26.04_edge", MINOR, "2.4", "26.04_edge", {}),
    ("10.0.3-22.04_stable", EXACT, "10.0.3", "22.04_stable", {}),
    # dates as a version's last part (Bitnami odoo), and six-digit dates (BellSoft)
    (
        "18.0.20241205-debian-12-r0",
        TIMESTAMP,
        "18.0",
        "",
        {"revision": "debian-12-r0", "built_at": datetime(2024, 12, 5, tzinfo=UTC)},
    ),
    (
        "jdk-21.0.3_11-crac-cds-slim-stream-glibc-240710",
        TIMESTAMP,
        "21.0.3_11",
        "jdk-crac-cds-slim-stream-glibc",
        {"built_at": datetime(2024, 7, 10, tzinfo=UTC)},
    ),
    ("1.2.3-123456", REVISION, "1.2.3", "", {"revision": "123456"}),  # no date: a build number
    # Chainguard
    ("latest-dev", LATEST, "", "dev", {"channel": "latest"}),
    ("3.14.4-dev", EXACT, "3.14.4", "dev", {}),
    ("17-dev", MAJOR, "17", "dev", {}),
    ("3.12.7-r1", REVISION, "3.12.7", "", {"revision": "r1"}),
    ("3.12.7-r1-dev", REVISION, "3.12.7", "dev", {"revision": "r1"}),
    ("1.27.3-r0", REVISION, "1.27.3", "", {"revision": "r0"}),
    ("1.2.3-r2", REVISION, "1.2.3", "", {"revision": "r2"}),
    # a revision only counts directly after the version
    ("3.12.7-slim-r2", EXACT, "3.12.7", "slim-r2", {"revision": ""}),
    # Bitnami
    ("8.0.40-debian-12-r3", REVISION, "8.0.40", "", {"revision": "debian-12-r3"}),
    ("6.4.3-debian-12-r10", REVISION, "6.4.3", "", {"revision": "debian-12-r10"}),
    ("11.4.0-debian-11-r5", REVISION, "11.4.0", "", {"revision": "debian-11-r5"}),
    ("8.0.40", EXACT, "8.0.40", "", {}),
    ("8.0", MINOR, "8.0", "", {}),
    # Minimus-style build timestamps
    ("3.14.4-202611261200", TIMESTAMP, "3.14.4", "", {"built_at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC)}),
    (
        "3.14.4-202611261200-dev",
        TIMESTAMP,
        "3.14.4",
        "dev",
        {"built_at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC)},
    ),
    (
        "3.14.4-20261126120030",
        TIMESTAMP,
        "3.14.4",
        "",
        {"built_at": datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)},
    ),
    # a name before the version is the front of the variant, and only with a timestamp
    (
        "openjdk-17-202412120223",
        TIMESTAMP,
        "17",
        "openjdk",
        {"built_at": datetime(2024, 12, 12, 2, 23, tzinfo=UTC)},
    ),
    (
        "openjdk-17-202412120223-dev",
        TIMESTAMP,
        "17",
        "openjdk-dev",
        {"built_at": datetime(2024, 12, 12, 2, 23, tzinfo=UTC)},
    ),
    (
        "3.12.7-r1-202412120223",
        TIMESTAMP,
        "3.12.7",
        "",
        {"revision": "r1", "built_at": datetime(2024, 12, 12, 2, 23, tzinfo=UTC)},
    ),
    ("202412120223", TIMESTAMP, "", "", {"built_at": datetime(2024, 12, 12, 2, 23, tzinfo=UTC)}),
    ("3.14.4-202613451200", OTHER, "", "", {"built_at": None}),
    ("nightly-202412120223", TIMESTAMP, "", "", {"built_at": datetime(2024, 12, 12, 2, 23, tzinfo=UTC)}),
    # a stamp anywhere: the rest of the tag says version and variant, never the stamp
    (
        "3.14.4-dev-202611231200",
        TIMESTAMP,
        "3.14.4",
        "dev",
        {"built_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC)},
    ),
    ("10.2-20260602", TIMESTAMP, "10.2", "", {"built_at": datetime(2026, 6, 2, tzinfo=UTC)}),
    (
        "10-kitten-minimal-20260602",
        TIMESTAMP,
        "10",
        "kitten-minimal",
        {"built_at": datetime(2026, 6, 2, tzinfo=UTC)},
    ),
    ("20260805", TIMESTAMP, "", "", {"built_at": datetime(2026, 8, 5, tzinfo=UTC)}),
    ("base-20260816.0.574111", TIMESTAMP, "", "", {"built_at": datetime(2026, 8, 16, tzinfo=UTC)}),
    ("devel-20260817-alpine3.24", TIMESTAMP, "", "", {"built_at": datetime(2026, 8, 17, tzinfo=UTC)}),
    ("2023.12.20260817.0", TIMESTAMP, "2023.12", "", {"built_at": datetime(2026, 8, 17, tzinfo=UTC)}),
    ("2.0.20250818.2", TIMESTAMP, "2.0", "", {"built_at": datetime(2025, 8, 18, tzinfo=UTC)}),
    ("18.0-20250812", TIMESTAMP, "18.0", "", {"built_at": datetime(2025, 8, 12, tzinfo=UTC)}),
    (
        "latest-dev-202611261200",
        TIMESTAMP,
        "",
        "dev",
        {"built_at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC)},
    ),
    ("nightly", FLOATING, "", "", {"channel": "nightly"}),
    # signatures, attestations, SBOMs and referrers fallback tags name their subject
    (f"sha256-{HEX}.sig", ARTIFACT, "", "", {"subject_digest": DIGEST, "artifact": "signature"}),
    (f"sha256-{HEX}.att", ARTIFACT, "", "", {"subject_digest": DIGEST, "artifact": "attestation"}),
    (f"sha256-{HEX}.sbom", ARTIFACT, "", "", {"subject_digest": DIGEST, "artifact": "sbom"}),
    (f"sha256-{HEX}", ARTIFACT, "", "", {"subject_digest": DIGEST, "artifact": "referrers"}),
    (f"sha256-{HEX}.SIG", OTHER, "", "", {"subject_digest": ""}),
    (f"sha256-{HEX[:-1]}.sig", OTHER, "", "", {}),
    (f"sha256-{HEX.upper()}.sig", OTHER, "", "", {}),
    (f"sha256-{HEX}.sig.bak", OTHER, "", "", {}),
    (f"sha512-{HEX}", OTHER, "", "", {}),
    # branches, commits, pull requests, dates and everything else
    ("main", OTHER, "", "", {}),
    ("master", OTHER, "", "", {}),
    ("dev", OTHER, "", "", {}),
    ("sha-1a2b3c4", OTHER, "", "", {}),
    ("sha-1234567", OTHER, "", "", {}),
    ("pr-42", OTHER, "", "", {}),
    ("release-1.2", OTHER, "", "", {}),
    ("pr-42-slim", OTHER, "", "", {}),
    ("sha-bd9c186", OTHER, "", "", {}),
    ("1.2.3-bd9c186", OTHER, "", "", {}),  # a commit id names one build, never a flavour
    ("1.2.3-nightly20261126", OTHER, "", "", {}),
    ("1.2.3-20261345", OTHER, "", "", {}),  # stamp-shaped, but no date
    ("12345", OTHER, "", "", {}),
    ("1.2.3-1", REVISION, "1.2.3", "", {"revision": "1"}),
    ("2024.3-u0", REVISION, "2024.3", "", {"revision": "u0"}),
    ("9.6-1755678605", REVISION, "9.6", "", {"revision": "1755678605"}),
    ("1.2.3-20241126", TIMESTAMP, "1.2.3", "", {"built_at": datetime(2024, 11, 26, tzinfo=UTC)}),
    ("1.2.3.4.5", OTHER, "", "", {}),
    ("1.2.3.4.5.6.7", OTHER, "", "", {}),
    ("3.14.4a", OTHER, "", "", {}),
    ("3..14", OTHER, "", "", {}),
    ("3.14.", OTHER, "", "", {}),
    ("1.2.3--slim", OTHER, "", "", {}),
    ("1.2.3-", OTHER, "", "", {}),
    ("latest-202412120223", TIMESTAMP, "", "", {}),
    ("Latest", OTHER, "", "", {}),
    ("LATEST", OTHER, "", "", {}),
    ("V1.2.3", OTHER, "", "", {}),
    ("v", OTHER, "", "", {}),
    ("_", OTHER, "", "", {}),
]


@pytest.mark.parametrize(("tag", "kind", "version", "variant", "extra"), TABLE, ids=[row[0] for row in TABLE])
def test_classify(tag, kind, version, variant, extra):
    info = classify(tag)
    assert (info.name, info.kind, info.version, info.variant) == (tag, kind, version, variant)
    assert {field: getattr(info, field) for field in extra} == extra


def test_table_is_large_and_has_no_duplicates():
    tags = [row[0] for row in TABLE]
    assert len(tags) >= 80
    assert len(set(tags)) == len(tags)


@pytest.mark.parametrize("row", [row for row in TABLE if row[2]], ids=lambda row: row[0])
def test_every_classified_version_reads_back_as_a_version(row):
    version = row[2]
    assert version_key(version)[0] == 1
    assert version.startswith(line_of(version, 2))
    assert line_of(version, 1) != ""


def test_other_tags_carry_nothing_but_their_name():
    assert classify("main") == TagInfo("main", Kind.OTHER)


def test_kind_values_are_lowercase_words_for_storage():
    assert [kind.value for kind in Kind] == [
        "latest", "major", "minor", "exact", "revision", "timestamp", "floating", "artifact", "other",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("tag", "is_floating", "is_immutable"),
    [
        ("latest", True, False),
        ("latest-dev", True, False),
        ("3", True, False),
        ("3.14-slim", True, False),
        ("stable-perl", True, False),
        ("3.14.4", False, False),
        ("1.2.3-rc1", False, False),
        ("8.0.40-debian-12-r3", False, False),
        ("3.14.4-202611261200", False, True),
        ("openjdk-17-202412120223", False, True),
        # cosign re-pushes .sig when a signature is added: bound to a build, but not immutable
        (f"sha256-{HEX}.sig", False, False),
        ("main", False, False),
    ],
)
def test_floating_and_immutable(tag, is_floating, is_immutable):
    info = classify(tag)
    assert (info.is_floating, info.is_immutable) == (is_floating, is_immutable)


@pytest.mark.parametrize(
    ("stamp", "built_at"),
    [
        ("202611261200", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),
        ("20261126235959", datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)),
        ("202402291200", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),
        ("200001010000", datetime(2000, 1, 1, 0, 0, tzinfo=UTC)),
        ("202302291200", None),  # not a leap year
        ("202613451200", None),  # month 13
        ("202611311200", None),  # November 31st
        ("202611262400", None),
        ("202611261260", None),
        ("20261126120060", None),  # no leap seconds
        ("000001010000", None),
        ("199912312359", None),  # before containers: a number, not a build time
    ],
)
def test_timestamps_must_be_real_utc_times(stamp, built_at):
    info = classify(f"3.14.4-{stamp}")
    assert info.built_at == built_at
    assert info.kind is (Kind.TIMESTAMP if built_at else Kind.OTHER)
    if built_at:
        assert info.built_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("stamp", ["2026112612", "20261126120", "2026112612003", "202611261200300"])
def test_other_long_numbers_after_a_version_are_build_numbers(stamp):
    info = classify(f"3.14.4-{stamp}")
    assert (info.kind, info.revision, info.built_at) == (Kind.REVISION, stamp, None)


def test_version_key_orders_numerically_with_prereleases_first():
    expected = [
        "1.2",
        "1.2.0",
        "1.2.3-alpha",
        "1.2.3-alpha.1",
        "1.2.3-beta.2",
        "1.2.3-preview.1",
        "1.2.3-rc1",
        "1.2.3-rc.2",
        "1.2.3",
        "1.2.3_1",
        "1.2.3_10",
        "1.2.4",
        "1.2.10",
        "1.10.0",
        "3.9.9",
        "3.10.0",
        "3.14.0a1",
        "3.14.0b2",
        "3.14.0rc1",
        "3.14.0",
        "3.14.0.1",
        "17.0.9_9",
        "17.0.13_11",
        "2024.11.3",
    ]
    shuffled = expected[:]
    random.Random(42).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == expected


def test_version_key_examples_from_the_issue():
    assert version_key("3.10.0") > version_key("3.9.9")
    assert version_key("1.2.3-rc1") < version_key("1.2.3")
    assert version_key("1.24rc1") < version_key("1.24")


def test_version_key_is_total_and_puts_non_versions_first():
    versions = ["3.14", "main", "", "1.2.3", "v1.2.3", "3.1", "03.1"]
    assert sorted(versions, key=version_key) == ["", "main", "1.2.3", "v1.2.3", "03.1", "3.1", "3.14"]
    # the same version spelled two ways compares equal up to the text tie-break
    assert version_key("v1.2.3")[:-1] == version_key("1.2.3")[:-1]


@pytest.mark.parametrize(
    ("version", "depth", "line"),
    [
        ("3.14.4", 2, "3.14"),
        ("3.14.4", 1, "3"),
        ("3.14", 2, "3.14"),
        ("3.14", 1, "3"),
        ("3", 2, "3"),
        ("3", 1, "3"),
        ("1.2.3-rc1", 2, "1.2"),
        ("3.14-rc", 2, "3.14"),
        ("3.14.0rc1", 2, "3.14"),
        ("17.0.13_11", 2, "17.0"),
        ("24.04", 1, "24"),
        ("131.0.6778.85", 2, "131.0"),
        ("", 2, ""),
        ("main", 1, ""),
    ],
)
def test_line_of(version, depth, line):
    assert line_of(version, depth) == line


@pytest.mark.parametrize("depth", [0, 3, -1])
def test_line_of_rejects_other_depths(depth):
    with pytest.raises(ValueError, match="depth"):
        line_of("3.14.4", depth)


@pytest.mark.parametrize(
    ("versions", "depth"),
    [
        (["3.14.4", "3.14", "3", ""], 2),
        (["17.2", "16.6", "17"], 1),
        (["24.04", "22.04"], 1),
        (["131.0.6778.85"], 1),  # no tag floats by minor: lines are majors
        (["1.2.3-rc1"], 1),
        (["21.0.8_9", "21", "17.0.16_8", "17"], 1),  # JDK lines are named 21, not 21.0
        (["18.3", "18", "19beta3"], 1),
        (["main", "", "1.2.3.4.5"], 1),
        ([], 1),
        ((v for v in ["7.4", "7.4.1"]), 2),
    ],
)
def test_default_line_depth(versions, depth):
    assert default_line_depth(versions) == depth


HOSTILE = [
    "",
    " ",
    "latest\n",
    "3.14\n",
    "\n3.14",
    "3.14.4 ",
    "latest\x00",
    "3.14.4-dev\u200b",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: \d and int() would take them
    "\uff13.\uff11\uff14",  # full-width digits
    "3.14.4-\uff12\uff10\uff12\uff16\uff11\uff11\uff12\uff16\uff11\uff12\uff10\uff10",
    "../../etc/passwd",
    "latest:3",
    "3.14@sha256:abc",
    "-latest",
    ".3.14",
    "a" * 129,
    "1" * 10_000,
]
# Valid tag grammar, at the 128-character limit, shaped to trip backtracking regexes.
PATHOLOGICAL = [
    "1" * 128,
    "1." * 63 + "1a",
    "1." * 64,
    "-".join(["1"] * 64),
    "a-" * 63 + "aa",
    "1-" * 63 + "r1",
    "1.2.3-" + "r1-" * 40 + "r",
    "1.2.3-" + "debian-12-" * 12,
    "1.2.3-" + "9" * 122,
    "sha256-" + "a" * 121,
    "v" * 128,
    "3.14.4-" + "rc" * 60 + "1",
    "1_" * 64,
    "3.14.4-" + "202611261200-" * 9,
]


@pytest.mark.parametrize("tag", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_are_other(tag):
    assert classify(tag) == TagInfo(tag, Kind.OTHER)


@pytest.mark.parametrize("tag", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_names_classify_quickly(tag):
    assert is_valid_tag(tag)  # so classify parses it rather than rejecting it up front
    started = time.perf_counter()
    for _ in range(100):
        info = classify(tag)
    # Catastrophic backtracking takes seconds to ages per call; 100 linear calls take ~1 ms.
    assert time.perf_counter() - started < 0.5
    assert info.name == tag


def test_arbitrary_strings_never_raise():
    rng = random.Random(7)
    alphabet = "0123456789.-_vrcabelatstdigh" + "\n\x00\u00e9\u0661"
    for _ in range(5_000):
        tag = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        info = classify(tag)
        assert info.name == tag
        if info.version:
            assert version_key(info.version)[0] == 1


def test_version_key_orders_the_spellings_real_images_use():
    expected = [
        "8",
        "8u452-b09",
        "8u462-b07",
        "8u462-b08",
        "17.0.16_8",
        "18.3",
        "19beta2",
        "19beta3",
        "19rc1",
        "19",
        "26-ea-11",
        "26-ea-12",
        "26",
        "3.11",
        "3.11-7.3.19",
        "3.11-7.3.20",
    ]
    by_line = sorted(expected, key=lambda v: (int(line_of(v, 1)), version_key(v)))
    assert by_line == sorted(expected, key=lambda v: (int(line_of(v, 1)), expected.index(v)))
    assert version_key("4.0.0-rc-5") < version_key("4.0.0")
    assert version_key("8.5.10RC1") < version_key("8.5.10") < version_key("8.5.11RC1")
    assert (
        version_key("3.15.0a1") < version_key("3.15.0b1") < version_key("3.15.0rc1") < version_key("3.15.0")
    )
    assert version_key("2.12.0-RC.2") < version_key("2.12.0")


@pytest.mark.parametrize(
    ("tags", "named"),
    [
        (["latest", "3", "3.14", "3.14.4"], "3.14.4"),
        (["18", "18.3", "latest", "18.3-trixie", "18-trixie"], "18.3"),
        (["3.14.4-slim-trixie", "3.14.4-slim", "3.14-slim", "slim"], "3.14.4-slim"),
        (["21", "21-jdk", "21.0.8_9-jdk", "21.0.8_9", "latest"], "21.0.8_9"),
        (["8", "8-jdk", "8u462-b08-jdk", "8u462-b08"], "8u462-b08"),
        (["3.15-rc", "3.15.0rc1", "3.15.0rc1-slim"], "3.15.0rc1"),
        (["17.6.0-debian-12-r3", "17.6.0", "17", "latest"], "17.6.0"),
        (["3.14.4-dev", "3.14-dev", "latest-dev", "3.14.4-dev-202611231200"], "3.14.4-dev"),
        (["12.11", "12", "bookworm", "bookworm-20260803", "latest"], "12.11"),
        (["2023", "latest", "2023.12.20260817.0"], "2023.12.20260817.0"),
    ],
)
def test_version_of_names_the_most_specific_version_then_the_plainest_variant(tags, named):
    assert version_of(classify(tag) for tag in tags).name == named


@pytest.mark.parametrize(
    "tags",
    [["latest"], ["bookworm", "bookworm-slim"], ["main", "sha-bd9c186"], [f"sha256-{HEX}.sig"], []],
)
def test_version_of_is_none_without_a_version(tags):
    assert version_of(classify(tag) for tag in tags) is None


# --- properties over the grammar: every combination of the pieces real tags are built from ----

RELEASES = st.sampled_from(
    ["3", "3.14", "3.14.4", "21.0.8_9", "8u462-b08", "19beta3", "3.15.0rc1", "2.12.0-RC.2"]
)
VARIANTS = st.sampled_from(
    ["", "dev", "slim-trixie", "alpine3.24", "jdk-noble", "windowsservercore-ltsc2025"]
)
STAMPS = st.builds(
    lambda when, digits: when.strftime("%Y%m%d%H%M%S")[:digits],
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.sampled_from([8, 12, 14]),
)


@given(release=RELEASES, variant=VARIANTS, stamp=STAMPS, where=st.integers(min_value=0, max_value=3))
def test_a_stamp_anywhere_makes_a_timestamp_tag_of_the_rest(release, variant, stamp, where):
    plain = "-".join(filter(None, [release, variant]))
    tokens = plain.split("-")
    where = min(where, len(tokens))
    stamped = "-".join([*tokens[:where], stamp, *tokens[where:]])
    info, rest = classify(stamped), classify(plain)
    assert info.kind is Kind.TIMESTAMP
    assert info.built_at.strftime("%Y%m%d%H%M%S").startswith(stamp)
    assert (info.version, info.variant) == (rest.version, rest.variant)


@given(tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True))
def test_no_variant_holds_a_long_number_and_every_version_reads_back(tag):
    info = classify(tag)
    assert not re.search(r"[0-9]{6}", info.variant)
    if info.version:
        assert version_key(info.version)[0] == 1
        assert line_of(info.version, 1)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("3.15.0rc1", True), ("19beta3", True), ("3.15-rc", True), ("26-ea-11", True), ("8.0-M02", True),
     ("3.14.4", False), ("18.3", False), ("21.0.8_9", False), ("8u462-b08", False), ("main", False),
     ("", False)],
)  # fmt: skip
def test_is_prerelease(version, expected):
    assert is_prerelease(version) is expected
