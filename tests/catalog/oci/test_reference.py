"""Conformance of catalog.oci.reference with distribution/reference's ParseNormalizedNamed.

The cases come from distribution/reference's reference_test.go, normalize_test.go and
regexp_test.go. Cases that upstream runs through Parse, ParseNamed, WithName or bare
regexps are given here with what ParseNormalizedNamed (our `parse`) returns for the same
text: familiar names gain docker.io and library/, and a first component only counts as a
registry when it has '.', ':', uppercase, or is "localhost".
"""

import time
from dataclasses import FrozenInstanceError

import pytest

from catalog.oci.reference import (
    DEFAULT_REGISTRY,
    ImageReference,
    InvalidReference,
    is_valid_tag,
    parse,
    parse_digest,
)

D = DEFAULT_REGISTRY
F256 = "sha256:" + "f" * 64
F384 = "sha384:" + "f" * 96
F512 = "sha512:" + "f" * 128
BE178 = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912"
DBCC = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
E669 = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
B86E = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
S1234 = "sha256:1234567890098765432112345667890098765432112345667890098765432112"
HEX_1A3F = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
HEX_DA30 = "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"
HEX_DBCC = DBCC.removeprefix("sha256:")
SONG = "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"  # 64 chars, not hex
LONG_NAMESPACE = "_".join(["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"] * 4)

# Fragments of the messages, so each invalid case also says *why* it is refused.
FORMAT = "invalid reference format"
LOWER = "must be lowercase"
TOO_LONG = "must not be more than 255 characters"
HEX_NAME = "cannot specify 64-byte hexadecimal strings"
BAD_TAG = "invalid tag"
BAD_DIGEST = "invalid digest"
UNSUPPORTED = "unsupported digest algorithm"
NOT_STR = "expected a string"


def _id(value):
    if isinstance(value, str) and len(value) > 48:
        return f"{value[:32]}...<{len(value)} chars>"
    return None


def ok(text, registry, repository, tag=None, digest=None):
    return pytest.param(text, registry, repository, tag, digest, id=_id(text) or text or "<empty>")


def bad(text, why=FORMAT):
    return pytest.param(text, why, id=_id(text) or text or "<empty>")


VALID = [
    # reference_test.go: TestReferenceParse
    ok("test_com", D, "library/test_com"),
    ok("test.com:tag", D, "library/test.com", "tag"),
    ok("test.com:5000", D, "library/test.com", "5000"),
    ok("test.com/repo:tag", "test.com", "repo", "tag"),
    ok("test:5000/repo", "test:5000", "repo"),
    ok("test:5000/repo:tag", "test:5000", "repo", "tag"),
    ok("test:5000/repo@" + F256, "test:5000", "repo", None, F256),
    ok("test:5000/repo:tag@" + F256, "test:5000", "repo", "tag", F256),
    # As upstream does (a quirk it marks for fixing): an uppercase first component is a registry host.
    ok("Uppercase/lowercase:tag", "Uppercase", "lowercase", "tag"),
    ok("lowercase:Uppercase", D, "library/lowercase", "Uppercase"),
    # 255-character path: "a" is not a host when normalizing, so it all lands on docker.io.
    ok("a/" * 127 + "a:tag-puts-this-over-max", D, "a/" * 127 + "a", "tag-puts-this-over-max"),
    ok("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux"),
    ok("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag"),
    ok(
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io",
        "test.example.com/my-app",
        "test.example.com",
    ),
    ok("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com"),
    ok("xn--7o8h.com/myimage:xn--7o8h.com@" + F512, "xn--7o8h.com", "myimage", "xn--7o8h.com", F512),
    ok("foo_bar.com:8080", D, "library/foo_bar.com", "8080"),
    ok("foo/foo_bar.com:8080", D, "foo/foo_bar.com", "8080"),
    ok("192.168.1.1", D, "library/192.168.1.1"),
    ok("192.168.1.1:tag", D, "library/192.168.1.1", "tag"),
    ok("192.168.1.1:5000", D, "library/192.168.1.1", "5000"),
    ok("192.168.1.1/repo", "192.168.1.1", "repo"),
    ok("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo"),
    ok("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050"),
    ok("[2001:db8::1]/repo", "[2001:db8::1]", "repo"),
    ok("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag"),
    ok("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo"),
    ok("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag"),
    ok("[2001:db8::1]:5000/repo@" + F256, "[2001:db8::1]:5000", "repo", None, F256),
    ok("[2001:db8::1]:5000/repo:tag@" + F256, "[2001:db8::1]:5000", "repo", "tag", F256),
    ok("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo"),
    ok("[::1]:5000/repo", "[::1]:5000", "repo"),
    # Only the path counts towards 255 (distribution/reference#9), not the host.
    ok("example.com/" + "a" * 255 + ":tag", "example.com", "a" * 255, "tag"),
    # reference_test.go: TestParseNamed, TestDomainAndPath, TestSerialization
    ok("test.com/foo", "test.com", "foo"),
    ok("test:8080/foo", "test:8080", "foo"),
    ok("test_com/foo", D, "test_com/foo"),
    ok("test.com", D, "library/test.com"),
    ok("foo", D, "library/foo"),
    ok("library/foo", D, "library/foo"),
    ok("docker.io/library/foo", D, "library/foo"),
    ok("docker.io/foo", D, "library/foo"),
    ok("test.com:8080/foo", "test.com:8080", "foo"),
    ok("test-com:8080/foo", "test-com:8080", "foo"),
    ok("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
    ok("example.com:8000/named", "example.com:8000", "named"),
    ok("example.com:8000/named:tagged", "example.com:8000", "named", "tagged"),
    ok("other.com/named@" + S1234, "other.com", "named", None, S1234),
    # normalize_test.go: TestValidateReferenceName (valid)
    ok("docker/docker", D, "docker/docker"),
    ok("library/debian", D, "library/debian"),
    ok("debian", D, "library/debian"),
    ok("docker.io/docker/docker", D, "docker/docker"),
    ok("docker.io/library/debian", D, "library/debian"),
    ok("docker.io/debian", D, "library/debian"),
    ok("index.docker.io/docker/docker", D, "docker/docker"),
    ok("index.docker.io/library/debian", D, "library/debian"),
    ok("index.docker.io/debian", D, "library/debian"),
    ok("127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker"),
    ok("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian"),
    ok("127.0.0.1:5000/debian", "127.0.0.1:5000", "debian"),
    ok("192.168.0.1", D, "library/192.168.0.1"),
    ok("192.168.0.1:80", D, "library/192.168.0.1", "80"),
    ok("192.168.0.1:8/debian", "192.168.0.1:8", "debian"),
    ok("192.168.0.2:25000/debian", "192.168.0.2:25000", "debian"),
    ok(SONG, D, "library/" + SONG),
    ok("[fc00::1]:5000/docker", "[fc00::1]:5000", "docker"),
    ok("[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker"),
    ok("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian"),
    # With a registry in front, 64 hex digits are no longer ambiguous with an image ID.
    ok("docker.io/" + HEX_1A3F, D, "library/" + HEX_1A3F),
    ok("Docker/docker", "Docker", "docker"),
    ok("DOCKER/docker", "DOCKER", "docker"),
    # normalize_test.go: TestValidateRemoteName (valid)
    ok("docker-rules/docker", D, "docker-rules/docker"),
    ok("docker---rules/docker", D, "docker---rules/docker"),
    ok("doc/docker", D, "doc/docker"),
    ok("d/docker", D, "d/docker"),
    ok("jess/t", D, "jess/t"),
    ok("dock__er/docker", D, "dock__er/docker"),
    # normalize_test.go: TestParseReferenceWithTagAndDigest
    ok("busybox:latest@" + B86E, D, "library/busybox", "latest", B86E),
    # normalize_test.go: TestParseAnyReference (the named ones)
    ok("redis", D, "library/redis"),
    ok("redis:latest", D, "library/redis", "latest"),
    ok("docker.io/library/redis:latest", D, "library/redis", "latest"),
    ok("redis@" + DBCC, D, "library/redis", None, DBCC),
    ok("docker.io/library/redis@" + DBCC, D, "library/redis", None, DBCC),
    ok("dmcgowan/myapp", D, "dmcgowan/myapp"),
    ok("dmcgowan/myapp:latest", D, "dmcgowan/myapp", "latest"),
    ok("docker.io/mcgowan/myapp:latest", D, "mcgowan/myapp", "latest"),
    ok("dmcgowan/myapp@" + DBCC, D, "dmcgowan/myapp", None, DBCC),
    ok("docker.io/dmcgowan/myapp@" + DBCC, D, "dmcgowan/myapp", None, DBCC),
    ok(HEX_DBCC[:63], D, "library/" + HEX_DBCC[:63]),
    ok("dbcc1", D, "library/dbcc1"),
    # ParseAnyReference reads this as a bare digest; as a name it is image "sha256" with a hex tag.
    ok(DBCC, D, "library/sha256", HEX_DBCC),
    # normalize_test.go: TestNormalizedSplitHostname
    ok("docker/migrator", D, "docker/migrator"),
    ok("xn--n3h.com/foo", "xn--n3h.com", "foo"),
    ok("docker.io/library/foo/bar", D, "library/foo/bar"),
    # normalize_test.go: TestParseDockerRef (parse keeps the tag absent and keeps both tag and digest)
    ok("busybox", D, "library/busybox"),
    ok("busybox:latest", D, "library/busybox", "latest"),
    ok("busybox@" + E669, D, "library/busybox", None, E669),
    ok("library/busybox", D, "library/busybox"),
    ok("docker.io/busybox", D, "library/busybox"),
    ok("docker.io/library/busybox", D, "library/busybox"),
    ok("docker.io/busybox:latest", D, "library/busybox", "latest"),
    ok("library/busybox:latest", D, "library/busybox", "latest"),
    ok("docker.io/library/busybox:latest", D, "library/busybox", "latest"),
    ok("gcr.io/library/busybox", "gcr.io", "library/busybox"),
    ok("gcr.io/library/busybox:latest@" + E669, "gcr.io", "library/busybox", "latest", E669),
    # regexp_test.go: TestDomainRegexp, as "<domain>/foo"
    ok("test.com/foo", "test.com", "foo"),
    ok("test.com:10304/foo", "test.com:10304", "foo"),
    ok("localhost/foo", "localhost", "foo"),
    ok("localhost:8080/foo", "localhost:8080", "foo"),
    ok("a/foo", D, "a/foo"),  # matches the domain regexp, but normalizing treats "a" as a namespace
    ok("a.b/foo", "a.b", "foo"),
    ok("ab.cd.com/foo", "ab.cd.com", "foo"),
    ok("a-b.com/foo", "a-b.com", "foo"),
    ok("ab.c-om/foo", "ab.c-om", "foo"),
    ok("0101.com/foo", "0101.com", "foo"),
    ok("001a.com/foo", "001a.com", "foo"),
    ok("b.gbc.io:443/foo", "b.gbc.io:443", "foo"),
    ok("b.gbc.io/foo", "b.gbc.io", "foo"),
    ok("Asdf.com/foo", "Asdf.com", "foo"),
    # Upstream does not range-check ports.
    ok("192.168.1.1:75050/foo", "192.168.1.1:75050", "foo"),
    ok("192.168.1.1:750050/foo", "192.168.1.1:750050", "foo"),
    ok("[fd00:1:2::3]:75050/foo", "[fd00:1:2::3]:75050", "foo"),
    # Upstream does not check the address inside the brackets either.
    ok("[fd00123123123]:75050/foo", "[fd00123123123]:75050", "foo"),
    ok(
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050/foo",
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050",
        "foo",
    ),
    ok(
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505/foo",
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505",
        "foo",
    ),
    # regexp_test.go: TestFullNameRegexp
    ok("short", D, "library/short"),
    ok("simple/name", D, "simple/name"),
    ok("library/ubuntu", D, "library/ubuntu"),
    ok("docker/stevvooe/app", D, "docker/stevvooe/app"),
    ok("aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb", D, "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb"),
    ok("aa/aa/bb/bb/bb", D, "aa/aa/bb/bb/bb"),
    ok("a/a/a/a", D, "a/a/a/a"),
    ok("a", D, "library/a"),
    ok("a/aa", D, "a/aa"),
    ok("a/aa/a", D, "a/aa/a"),
    ok("foo.com", D, "library/foo.com"),
    ok("foo.com:8080/bar", "foo.com:8080", "bar"),
    ok("foo.com/bar", "foo.com", "bar"),
    ok("foo.com/bar/baz", "foo.com", "bar/baz"),
    ok("localhost:8080/bar", "localhost:8080", "bar"),
    ok("blog.foo.com/bar/baz", "blog.foo.com", "bar/baz"),
    ok("aa-a/a", D, "aa-a/a"),
    ok("foo_bar", D, "library/foo_bar"),
    ok("foo_bar.com", D, "library/foo_bar.com"),
    ok("foo.com/foo_bar", "foo.com", "foo_bar"),
    ok("xn--7o8h.com/myimage", "xn--7o8h.com", "myimage"),
    ok("example.com/xn--7o8h.com/myimage", "example.com", "xn--7o8h.com/myimage"),
    ok("example.com/some_separator__underscore/myimage", "example.com", "some_separator__underscore/myimage"),
    ok("do__cker/docker", D, "do__cker/docker"),
    ok(
        "registry.io/foo/project--id.module--name.ver---sion--name",
        "registry.io",
        "foo/project--id.module--name.ver---sion--name",
    ),
    ok("Asdf.com/foo/bar", "Asdf.com", "foo/bar"),
    # regexp_test.go: TestReferenceRegexp
    ok("registry.com:8080/myapp:tag", "registry.com:8080", "myapp", "tag"),
    ok("registry.com:8080/myapp@" + BE178, "registry.com:8080", "myapp", None, BE178),
    ok("registry.com:8080/myapp:tag2@" + BE178, "registry.com:8080", "myapp", "tag2", BE178),
    # A single component is never a host: "localhost:8080" is image localhost, tag 8080.
    ok("localhost:8080@" + BE178, D, "library/localhost", "8080", BE178),
    ok("localhost:8080/name@" + BE178, "localhost:8080", "name", None, BE178),
    ok("localhost@" + BE178, D, "library/localhost", None, BE178),
    # regexp_test.go: TestIdentifierRegexp (only exactly 64 lowercase hex digits is an ID)
    ok(HEX_DA30[:60], D, "library/" + HEX_DA30[:60]),
    ok(HEX_DA30 + "8482", D, "library/" + HEX_DA30 + "8482"),
    ok("sha256:" + HEX_DA30, D, "library/sha256", HEX_DA30),
    # Ours: localhost, ports, IPv6, digests, lengths.
    ok("localhost", D, "library/localhost"),
    ok("localhost:5000", D, "library/localhost", "5000"),
    ok("localhost/library/foo", "localhost", "library/foo"),
    ok("localhost:5000/team/app:v1.2.3", "localhost:5000", "team/app", "v1.2.3"),
    ok("registry:5000/foo", "registry:5000", "foo"),
    ok("example.com:0/foo", "example.com:0", "foo"),
    ok("[::1]/repo", "[::1]", "repo"),
    ok("[::1]:5000/a/b/c:tag", "[::1]:5000", "a/b/c", "tag"),
    ok("[ABCD::EF]:443/repo", "[ABCD::EF]:443", "repo"),
    ok("ghcr.io/owner/app:1.0@" + F384, "ghcr.io", "owner/app", "1.0", F384),
    ok("ghcr.io/owner/app@" + F512, "ghcr.io", "owner/app", None, F512),
    ok("python:3.12-slim-bookworm", D, "library/python", "3.12-slim-bookworm"),
    ok("python:_", D, "library/python", "_"),
    ok("python:" + "a" * 128, D, "library/python", "a" * 128),
    ok("a" * 247, D, "library/" + "a" * 247),
    ok("registry.example.com:5000/" + "a" * 255, "registry.example.com:5000", "a" * 255),
    ok("quay.io/a.b/c-d/e__f/g---h", "quay.io", "a.b/c-d/e__f/g---h"),
    ok("Registry.Example.COM/app", "Registry.Example.COM", "app"),
]

INVALID = [
    # reference_test.go: TestReferenceParse
    bad("", "empty"),
    bad(":justtag"),
    bad("@" + F256),
    bad("repo@sha256:" + "f" * 34, BAD_DIGEST),
    bad("validname@invaliddigest:" + "f" * 64, UNSUPPORTED),
    bad("Uppercase:tag", LOWER),
    bad("test:5000/Uppercase/lowercase:tag", LOWER),
    bad("domain/" + "a" * 256 + ":tag", TOO_LONG),
    bad("a/" * 128 + "a:tag", TOO_LONG),
    bad("aa/asdf$$^/aa"),
    bad("[2001:db8::1]"),
    bad("[2001:db8::1]:5000"),
    bad("[2001:db8::1]:tag"),
    bad("[fe80::1%eth0]:5000/repo"),
    bad("[fe80::1%@invalidzone]:5000/repo"),
    # reference_test.go: TestWithNameFailure
    bad("example.com/" + "a" * 256, TOO_LONG),
    # normalize_test.go: TestValidateReferenceName (invalid)
    bad("https://github.com/docker/docker"),
    bad("docker/Docker", LOWER),
    bad("-docker"),
    bad("-docker/docker"),
    bad("-docker.io/docker/docker"),
    bad("docker///docker"),
    bad("docker.io/docker/Docker", LOWER),
    bad("docker.io/docker///docker"),
    bad("[fc00::1]"),
    bad("[fc00::1]:5000"),
    bad("fc00::1:5000/debian"),
    bad("[fe80::1%eth0]:5000/debian"),
    bad("[2001:db8:3:4::192.0.2.33]:5000/debian"),
    bad(HEX_1A3F, HEX_NAME),
    # normalize_test.go: TestValidateRemoteName (invalid)
    bad("docker-/docker"),
    bad("-docker-/docker"),
    bad("____/____"),
    bad("_docker/_docker"),
    bad("dock..er/docker"),
    bad("dock_.er/docker"),
    bad("dock-.er/docker"),
    bad("docker/"),
    bad(LONG_NAMESPACE + "/docker", TOO_LONG),
    # normalize_test.go: TestInvalidReferenceComponents, TestParseAnyReference (bare image ID)
    bad("-foo"),
    bad(HEX_DBCC, HEX_NAME),
    # regexp_test.go: TestDomainRegexp, as "<domain>/foo"
    bad("test.com:http/foo"),
    bad("-ab.com/foo"),
    bad("ab-.com/foo"),
    bad("ab.-com/foo"),
    bad("ab.com-/foo"),
    bad("[fd00:1:2::3]75050/foo"),
    bad("[fd00:1:2::3]::75050/foo"),
    bad("[fd00:1:2::3%eth0]:75050/foo"),
    bad("fd00:1:2::3:75050/foo"),
    # regexp_test.go: TestFullNameRegexp
    bad("a/a/a/a/"),
    bad("a//a/a"),
    bad("foo.com/"),
    bad("foo.com:http/bar"),
    bad("a^a"),
    bad("asdf$$^/aa"),
    bad("a/" * 128 + "a", TOO_LONG),  # matches the name regexp; 257 characters of path once on docker.io
    bad("a-/a/a/a"),
    bad("foo.com/a-/a/a"),
    bad("-foo/bar"),
    bad("foo/bar-"),
    bad("foo-/bar"),
    bad("foo/-bar"),
    bad("_foo/bar"),
    bad("foo_bar.com:8080/app"),
    bad("docker_/docker_"),
    bad("example.com/__underscore/myimage"),
    bad("example.com/..dots/myimage"),
    bad("example.com/.dots/myimage"),
    bad("example.com/nodouble..dots/myimage"),
    bad("docker./docker"),
    bad(".docker/docker"),
    bad("do..cker/docker"),
    bad("do__cker:8080/docker"),
    bad("Foo/FarB", LOWER),
    # regexp_test.go: TestReferenceRegexp
    bad("registry.com:8080/myapp@sha256:badbadbadbad", BAD_DIGEST),
    bad("registry.com:8080/myapp:invalid~tag", BAD_TAG),
    bad("bad_hostname.com:8080/myapp:tag"),
    bad("localhost:http/name@" + BE178),
    bad("registry.com:8080/myapp@bad", BAD_DIGEST),
    bad("registry.com:8080/myapp@2bad", BAD_DIGEST),
    # regexp_test.go: TestIdentifierRegexp
    bad(HEX_DA30, HEX_NAME),
    bad(HEX_DA30.upper(), LOWER),
    # Ours: a first component that looks like a host but is not one (Go keeps it, domain "").
    bad("foo_bar.com/app", "not a valid registry host"),
    bad("a_b.c/d", "not a valid registry host"),
    # Ours: tags.
    bad("python:", BAD_TAG),
    bad("python:-rc", BAD_TAG),
    bad("python:.hidden", BAD_TAG),
    bad("python:" + "a" * 129, BAD_TAG),
    bad("python:3.12:slim"),
    bad("python:tag/with/slash"),
    # Ours: digests (go-digest knows sha256, sha384 and sha512, lowercase hex of exact length).
    bad("python@", BAD_DIGEST),
    bad("python@sha256:" + "f" * 63, BAD_DIGEST),
    bad("python@sha256:" + "f" * 65, BAD_DIGEST),
    bad("python@sha256:" + "F" * 64, BAD_DIGEST),
    bad("python@sha256:" + "g" * 64, BAD_DIGEST),
    bad("python@sha512:" + "f" * 127, BAD_DIGEST),
    bad("python@sha512:" + "f" * 64, BAD_DIGEST),
    bad("python@sha384:" + "f" * 64, BAD_DIGEST),
    bad("python@md5:" + "f" * 32, UNSUPPORTED),
    bad("python@blake3:" + "f" * 64, UNSUPPORTED),
    bad("python@sha256+b64:" + "f" * 64, UNSUPPORTED),
    bad("python@SHA256:" + "f" * 64, LOWER),  # upstream lowercases everything before the first ':'
    bad("ghcr.io/o/app@SHA256:" + "f" * 64),
    bad("python@" + "f" * 64, BAD_DIGEST),
    bad("python@sha256:" + "f" * 64 + "@" + F256, BAD_DIGEST),
    # Ours: ports and hosts.
    bad("example.com:/foo"),
    bad("example.com:-1/foo"),
    bad("example.com:80:80/foo"),
    bad("[::1/repo"),
    bad("::1/repo"),
    bad("a" * 248, TOO_LONG),
]

HOSTILE_STRINGS = [
    " python",
    "python ",
    "python\n",
    "\npython",
    "python\r\n",
    "python:latest\n",
    "python@" + F256 + "\n",
    "py\x00thon",
    "python\t",
    "\x1b[31mpython",
    "python\x7f",
    "<script>alert(1)</script>",
    "<b>python</b>",
    'python"><img src=x onerror=alert(1)>',
    "ghcr.io/o/app:<svg/onload=alert(1)>",
    "&lt;python&gt;",
    "🐳",
    "pythön",
    "\uff50\uff59\uff54\uff48\uff4f\uff4e",  # fullwidth "python"
    "pyth\u043en",  # Cyrillic o
    "\u212aube",  # Kelvin sign, lowercases to ASCII k
    "python\u200b",
    "\u202epython",
    "../../etc/passwd",
    "docker.io/../x",
    "./python",
    "python;rm -rf /",
    "$(id)",
    "`id`",
    "python:latest;ls",
    "python|cat",
    "%2e%2e/python",
    "python#frag",
    "python?x=1",
    "user@host/repo",
    "http://example.com/foo",
    "docker://python",
    "/python",
    "python/",
    "//",
    "/",
    ":",
    "@",
    ":@",
    "*",
    "python:*",
    "' OR 1=1 --",
    "\\\\server\\share",
    "a" * 1025,
    "a" * 10_000,
    "a" * 1_000_000,
    "ghcr.io/" + "a/" * 5000 + "b",
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), VALID)
def test_parse_valid(text, registry, repository, tag, digest):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.name == f"{registry}/{repository}"
    expected = ref.name + (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest else "")
    assert str(ref) == expected
    # Both printed forms are themselves references to the same thing.
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref


@pytest.mark.parametrize(("text", "why"), INVALID)
def test_parse_invalid(text, why):
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    message = str(caught.value)
    assert why in message
    assert len(message) < 400


FAMILIAR = [
    # normalize_test.go: TestParseRepositoryInfo as (familiar, full, ambiguous spellings)
    ("fooo/bar", "docker.io/fooo/bar", ["index.docker.io/fooo/bar"]),
    ("ubuntu", "docker.io/library/ubuntu", ["library/ubuntu"]),
    ("nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", []),
    ("other/library", "docker.io/other/library", []),
    ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", []),
    ("127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", []),
    ("example.com/private/moonbase", "example.com/private/moonbase", []),
    ("example.com/privatebase", "example.com/privatebase", []),
    ("example.com:8000/private/moonbase", "example.com:8000/private/moonbase", []),
    ("example.com:8000/privatebasee", "example.com:8000/privatebasee", []),
    (
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        ["index.docker.io/library/ubuntu-12.04-base"],
    ),
    ("foo", "docker.io/library/foo", ["docker.io/foo"]),
    ("library/foo/bar", "docker.io/library/foo/bar", []),
    ("store/foo/bar", "docker.io/store/foo/bar", []),
    ("Foo/bar", "Foo/bar", []),
    ("FOO/bar", "FOO/bar", []),
    # normalize_test.go: TestParseReferenceWithTagAndDigest
    ("busybox:latest@" + B86E, "docker.io/library/busybox:latest@" + B86E, []),
    # Ours
    ("python:3.12", "docker.io/library/python:3.12", ["index.docker.io/python:3.12"]),
    ("user/app@" + F256, "docker.io/user/app@" + F256, ["index.docker.io/user/app@" + F256]),
    ("localhost/app", "localhost/app", []),
    # Deliberately not "localhost/foo" (what Go prints): that would name another registry.
    ("docker.io/localhost/foo", "docker.io/localhost/foo", []),
    ("docker.io/foo.bar/baz", "docker.io/foo.bar/baz", []),
    ("foo.bar", "docker.io/library/foo.bar", ["library/foo.bar"]),
    # Deliberately not the bare hex name Go prints: parse() refuses that as an image ID.
    ("docker.io/library/" + HEX_1A3F, "docker.io/library/" + HEX_1A3F, ["docker.io/" + HEX_1A3F]),
    (HEX_1A3F + ":v1", "docker.io/library/" + HEX_1A3F + ":v1", ["docker.io/" + HEX_1A3F + ":v1"]),
]


@pytest.mark.parametrize(
    ("spelling", "familiar", "full"),
    [
        pytest.param(spelling, familiar, full, id=_id(spelling) or spelling)
        for familiar, full, others in FAMILIAR
        for spelling in [familiar, full, *others]
    ],
)
def test_familiar_and_full_forms(spelling, familiar, full):
    ref = parse(spelling)
    assert str(ref) == full
    assert ref.familiar == familiar


TAGS = [
    ("latest", True),
    ("3.12", True),
    ("TAG5", True),
    ("v1.0.0-rc.1", True),
    ("_", True),
    ("_private", True),
    ("0", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("", False),
    ("-foo", False),
    (".foo", False),
    ("a:b", False),
    ("a/b", False),
    ("a@b", False),
    ("a~b", False),
    ("a+b", False),
    ("a b", False),
    ("latest\n", False),
    ("tág", False),
    ("\uff4c\uff41\uff54\uff45\uff53\uff54", False),  # fullwidth "latest"
    (None, False),
    (b"latest", False),
    (5, False),
]


@pytest.mark.parametrize(("text", "valid"), TAGS, ids=[repr(t)[:40] for t, _ in TAGS])
def test_is_valid_tag(text, valid):
    assert is_valid_tag(text) is valid


DIGESTS_OK = [
    (F256, ("sha256", "f" * 64)),
    (BE178, ("sha256", BE178.removeprefix("sha256:"))),
    (F384, ("sha384", "f" * 96)),
    (F512, ("sha512", "f" * 128)),
]

DIGESTS_BAD = [
    ("", "invalid digest format"),
    ("sha256", "invalid digest format"),
    ("sha256:", "invalid digest format"),
    (":" + "f" * 64, "invalid digest format"),
    ("sha256:" + "f" * 63, BAD_DIGEST),
    ("sha256:" + "f" * 65, BAD_DIGEST),
    ("sha256:" + "F" * 64, BAD_DIGEST),
    ("sha256:" + "z" * 64, BAD_DIGEST),
    ("sha256:" + "f" * 64 + "\n", BAD_DIGEST),
    ("sha256:" + "f" * 32, BAD_DIGEST),
    ("sha512:" + "f" * 64, BAD_DIGEST),
    ("sha512:" + "f" * 129, BAD_DIGEST),
    ("SHA256:" + "f" * 64, "invalid digest format"),
    ("md5:" + "f" * 32, UNSUPPORTED),
    ("blake3:" + "f" * 64, UNSUPPORTED),
    ("sha256+b64:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", UNSUPPORTED),
    ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", UNSUPPORTED),
    ("sha256:ÿ" + "f" * 63, BAD_DIGEST),
    ("sha256:" + "\u0660" * 64, BAD_DIGEST),  # Arabic-Indic zeros are not hex
    ("<b>sha256</b>:" + "f" * 64, "invalid digest format"),
    (None, "invalid digest format"),
    (b"sha256:" + b"f" * 64, "invalid digest format"),
]


@pytest.mark.parametrize(("text", "parts"), DIGESTS_OK, ids=[t[:16] for t, _ in DIGESTS_OK])
def test_parse_digest_valid(text, parts):
    assert parse_digest(text) == parts


@pytest.mark.parametrize(("text", "why"), DIGESTS_BAD, ids=[repr(t)[:40] for t, _ in DIGESTS_BAD])
def test_parse_digest_invalid(text, why):
    with pytest.raises(InvalidReference, match=why):
        parse_digest(text)


@pytest.mark.parametrize("value", [None, b"python", bytearray(b"python"), 42, 4.2, ["python"], object()])
def test_non_strings_are_invalid_references(value):
    with pytest.raises(InvalidReference, match=NOT_STR):
        parse(value)


@pytest.mark.parametrize("text", HOSTILE_STRINGS, ids=[repr(t)[:40] for t in HOSTILE_STRINGS])
def test_hostile_strings_are_refused_quickly_and_quietly(text):
    started = time.perf_counter()
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    assert time.perf_counter() - started < 0.5
    message = str(caught.value)
    assert message.startswith("invalid reference format")
    # Messages may quote the input, but escaped and cut short: safe for logs and flash messages.
    assert message.isprintable()
    assert len(message) < 400


def test_too_long_is_reported_as_such():
    with pytest.raises(InvalidReference, match="reference is too long"):
        parse("a" * 10_000)


def test_invalid_reference_is_a_value_error():
    with pytest.raises(ValueError):
        parse("Not A Reference")


@pytest.mark.parametrize(
    "text",
    [
        "a-" * 511 + "!",
        "a." * 511 + "!",
        "a_" * 511 + "!",
        "a" + "-" * 1020 + "!",
        "a-a.a_a__a" * 100 + "!",
        "a-a-a." * 150 + ":1/x!",
        "a.b/" * 255 + "!",
        "a:" + "a" * 1000,
        "a@a:" + "f" * 1000 + "!",
    ],
    ids=lambda t: f"{t[:12]}...",
)
def test_backtracking_stays_cheap(text):
    started = time.perf_counter()
    with pytest.raises(InvalidReference):
        parse(text)
    assert time.perf_counter() - started < 0.5


def test_with_tag_and_with_digest():
    # reference_test.go: TestWithTag / TestWithDigest, with digests go-digest accepts.
    ref = parse("test.com:8000/foo")
    assert str(parse("test.com/foo").with_tag("tag")) == "test.com/foo:tag"
    assert str(parse("foo").with_tag("tag2")) == "docker.io/library/foo:tag2"
    assert str(ref.with_tag("tag4")) == "test.com:8000/foo:tag4"
    assert str(ref.with_tag("TAG5")) == "test.com:8000/foo:TAG5"
    assert str(ref.with_digest(F256).with_tag("TAG5")) == f"test.com:8000/foo:TAG5@{F256}"
    assert str(ref.with_tag("latest").with_digest(F256)) == f"test.com:8000/foo:latest@{F256}"
    assert str(parse("foo").with_digest(F256)) == f"docker.io/library/foo@{F256}"
    pinned = parse(f"ghcr.io/o/app:1@{F256}")
    assert pinned.with_tag(None) == parse(f"ghcr.io/o/app@{F256}")
    assert pinned.with_digest(None) == parse("ghcr.io/o/app:1")
    assert pinned.with_tag("1") == pinned


@pytest.mark.parametrize("tag", ["-foo", "", "a" * 129, "a/b", 5, b"x"], ids=repr)
def test_with_tag_refuses_invalid_tags(tag):
    with pytest.raises(InvalidReference, match=BAD_TAG):
        parse("busybox").with_tag(tag)


@pytest.mark.parametrize(
    "digest",
    # The first is from upstream's WithDigest tests: its loose regexp takes 39 hex digits.
    ["sha256:1234567890098765432112345667890098765", "foo", "sha256:" + "F" * 64, "md5:" + "f" * 32, 1],
    ids=repr,
)
def test_with_digest_refuses_what_parse_would_refuse(digest):
    with pytest.raises(InvalidReference):
        parse("busybox").with_digest(digest)


def test_references_are_frozen_hashable_values():
    ref = parse("python:3.12")
    with pytest.raises(FrozenInstanceError):
        ref.tag = "3.13"  # type: ignore[misc]
    assert ref == ImageReference("docker.io", "library/python", "3.12")
    assert len({ref, parse("docker.io/library/python:3.12"), parse("index.docker.io/python:3.12")}) == 1
    assert ref != parse("python")


@pytest.mark.parametrize(
    ("registry", "repository", "tag", "digest"),
    [
        ("docker.io", "python", None, None),  # would re-parse as library/python
        ("index.docker.io", "library/python", None, None),
        ("quay", "team/app", None, None),  # a bare lowercase word is a Docker Hub namespace
        ("", "app", None, None),
        ("foo_bar.com", "app", None, None),
        ("ghcr.io", "Team/App", None, None),
        ("ghcr.io", "", None, None),
        ("ghcr.io", "app/", None, None),
        ("ghcr.io", "a" * 256, None, None),
        ("ghcr.io", "app", "-tag", None),
        ("ghcr.io", "app", None, "sha256:abc"),
        ("x" * 800 + ".io", "a" * 255, None, None),
        (None, "app", None, None),
        ("ghcr.io", None, None, None),
        ("ghcr.io", b"app", None, None),
    ],
)
def test_constructor_keeps_references_normalized(registry, repository, tag, digest):
    with pytest.raises(InvalidReference):
        ImageReference(registry, repository, tag, digest)


def test_constructor_accepts_what_parse_returns():
    ref = ImageReference("ghcr.io", "owner/app", "1.0", F256)
    assert ref == parse(f"ghcr.io/owner/app:1.0@{F256}")
    assert ref.familiar == str(ref) == f"ghcr.io/owner/app:1.0@{F256}"
