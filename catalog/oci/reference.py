"""Parse image references exactly as distribution/reference's ParseNormalizedNamed does."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from catalog.text import quoted

__all__ = [
    "DEFAULT_REGISTRY",
    "ImageReference",
    "InvalidReference",
    "is_valid_host",
    "is_valid_tag",
    "parse",
    "parse_digest",
]

DEFAULT_REGISTRY = "docker.io"
_LEGACY_REGISTRY = "index.docker.io"
_OFFICIAL_PREFIX = "library/"

# Upstream counts only the repository path, not the registry host (distribution/reference#9).
MAX_REPOSITORY_LENGTH = 255
# Not an upstream rule: a bound that keeps hostile input cheap. The longest real reference
# (253-char host + port, 255-char path, 128-char tag, sha512 digest) is under 800 characters.
MAX_REFERENCE_LENGTH = 1024

# The grammar of distribution/reference's regexp.go. Go's \w and [[:xdigit:]] are ASCII-only,
# so the classes are spelled out; every pattern is used with fullmatch, because Python's `$`
# would also accept a trailing newline.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# IPv6 literals in brackets, without zone identifiers or embedded IPv4 (upstream's choice).
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(_DOMAIN)
_REMOTE_NAME_RE = re.compile(_REMOTE_NAME)
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}")
_TAG_RE = re.compile(_TAG)
_REFERENCE_RE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_REMOTE_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
# A bare image ID; as a name it would be ambiguous with `docker run <id>`.
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# go-digest validates only the algorithms it knows, with a fixed hex length; any other
# well-formed algorithm is "unsupported", which makes ParseNormalizedNamed fail too.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


class InvalidReference(ValueError):
    """The text is not an image reference that distribution/reference would accept."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A normalized reference: `str()` of it always parses back to an equal reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.registry, str) or not _DOMAIN_RE.fullmatch(self.registry):
            raise InvalidReference(f"invalid registry host {quoted(self.registry)}")
        if not isinstance(self.repository, str):
            raise InvalidReference(f"invalid repository name {quoted(self.repository)}")
        if len(self.repository) > MAX_REPOSITORY_LENGTH:
            raise InvalidReference(
                f"invalid reference format: repository name must not be more than "
                f"{MAX_REPOSITORY_LENGTH} characters (got {len(self.repository)})"
            )
        if not _REMOTE_NAME_RE.fullmatch(self.repository):
            raise InvalidReference(f"invalid repository name {quoted(self.repository)}")
        # Refuse forms like docker.io/python or index.docker.io/...: they would re-parse differently.
        if _split_docker_domain(self.name) != (self.registry, self.repository):
            raise InvalidReference(f"{quoted(self.name)} is not a normalized name; use parse()")
        if self.tag is not None and not is_valid_tag(self.tag):
            raise InvalidReference(f"invalid tag {quoted(self.tag)}")
        if self.digest is not None:
            parse_digest(self.digest)
        if len(str(self)) > MAX_REFERENCE_LENGTH:
            raise InvalidReference("invalid reference format: reference is too long")

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar(self) -> str:
        """The short form the Docker CLI shows: `python:3.12`, `user/app`, `ghcr.io/o/app`."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            short = self.repository
            if short.startswith(_OFFICIAL_PREFIX) and "/" not in short[len(_OFFICIAL_PREFIX) :]:
                short = short[len(_OFFICIAL_PREFIX) :]
            # Go would print localhost/x for docker.io/localhost/x, which names another registry,
            # and a bare 64-hex name, which reads as an image ID: keep the long form for those.
            round_trips = _split_docker_domain(short) == (DEFAULT_REGISTRY, self.repository)
            if round_trips and not _IDENTIFIER_RE.fullmatch(short + self._suffix):
                name = short
        return name + self._suffix

    @property
    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    def with_tag(self, tag: str | None) -> ImageReference:
        """The same reference with another tag (None drops it); the digest is kept."""
        return replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> ImageReference:
        """The same reference pinned to another digest (None drops it); the tag is kept."""
        return replace(self, digest=digest)

    def __str__(self) -> str:
        return self.name + self._suffix


def parse(text: str) -> ImageReference:
    """Parse a familiar or full reference (`python`, `ghcr.io/o/app:1@sha256:...`) and normalize it."""
    if not isinstance(text, str):
        raise InvalidReference(f"invalid reference format: expected a string, got {type(text).__name__}")
    if not text:
        raise InvalidReference("invalid reference format: reference is empty")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise InvalidReference(
            f"invalid reference format: reference is too long "
            f"({len(text)} > {MAX_REFERENCE_LENGTH} characters)"
        )
    # Every valid reference is ASCII; rejecting the rest early keeps the lowercase checks ASCII too.
    if not text.isascii():
        raise InvalidReference(f"invalid reference format: {quoted(text)} contains non-ASCII characters")
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            "invalid repository name: cannot specify 64-byte hexadecimal strings (ambiguous with an image ID)"
        )

    registry, remainder = _split_docker_domain(text)
    # As upstream: everything before the first ":" of the remainder must already be lowercase.
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise InvalidReference(
            f"invalid reference format: repository name must be lowercase ({quoted(remote)})"
        )

    full = f"{registry}/{remainder}"
    match = _REFERENCE_RE.fullmatch(full)
    if match is None:
        lowered = full.lower()
        if lowered != full and _REFERENCE_RE.fullmatch(lowered):
            raise InvalidReference("invalid reference format: repository name must be lowercase")
        raise InvalidReference(_explain(full))
    if match["domain"] is None:
        # e.g. "foo_bar.com/app": Go keeps it with an empty domain; a reference needs a registry.
        raise InvalidReference(f"invalid reference format: {quoted(registry)} is not a valid registry host")
    return ImageReference(match["domain"], match["path"], match["tag"], match["digest"])


def is_valid_tag(text: object) -> bool:
    """Whether `text` is a tag: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'."""
    return isinstance(text, str) and _TAG_RE.fullmatch(text) is not None


def is_valid_repository(text: object) -> bool:
    """Whether `text` is a repository path (`library/python`), safe to put in a registry URL."""
    return (
        isinstance(text, str)
        and len(text) <= MAX_REPOSITORY_LENGTH
        and _REMOTE_NAME_RE.fullmatch(text) is not None
    )


def is_valid_host(text: object) -> bool:
    """Whether `text` is a registry host as references name one (`ghcr.io`, `127.0.0.1:5000`)."""
    return (
        isinstance(text, str) and len(text) <= MAX_REFERENCE_LENGTH and _DOMAIN_RE.fullmatch(text) is not None
    )


def parse_digest(text: str) -> tuple[str, str]:
    """Split `algorithm:hex` into its parts, validating it as go-digest does."""
    if not isinstance(text, str):
        raise InvalidReference(f"invalid digest format: expected a string, got {type(text).__name__}")
    algorithm, _, encoded = text.partition(":")
    if not algorithm or not encoded:
        raise InvalidReference(f"invalid digest format: {quoted(text)} is not algorithm:hex")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        if _GO_DIGEST_RE.fullmatch(text):
            raise InvalidReference(f"unsupported digest algorithm {quoted(algorithm)}")
        raise InvalidReference(f"invalid digest format: {quoted(text)}")
    if len(encoded) != length or not _LOWER_HEX_RE.fullmatch(encoded):
        raise InvalidReference(f"invalid digest: {algorithm} needs exactly {length} lowercase hex characters")
    return algorithm, encoded


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Upstream's splitDockerDomain: pick the registry and add Docker Hub's `library/`."""
    first, slash, rest = name.partition("/")
    if not slash:
        # A single component is always a Docker Hub image, even "localhost" or "example.com".
        return DEFAULT_REGISTRY, _OFFICIAL_PREFIX + name
    if first == _LEGACY_REGISTRY:
        registry, remote = DEFAULT_REGISTRY, rest
    elif first == "localhost" or "." in first or ":" in first or first.lower() != first:
        # Namespaces are lowercase without '.' or ':', so anything else must be a host.
        registry, remote = first, rest
    else:
        registry, remote = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in remote:
        remote = _OFFICIAL_PREFIX + remote
    return registry, remote


def _explain(full: str) -> str:
    """Name the part that broke the grammar; upstream only says "invalid reference format"."""
    rest, at, digest = full.partition("@")
    name, tag = rest, None
    if ":" in rest.rpartition("/")[2]:
        name, _, tag = rest.rpartition(":")
    if not _NAME_RE.fullmatch(name):
        return (
            "invalid reference format: a name is an optional registry host followed by '/'-separated "
            "lowercase alphanumeric components, joined inside by '.', '_', '__' or '-'"
        )
    if tag is not None and not _TAG_RE.fullmatch(tag):
        return (
            f"invalid reference format: invalid tag {quoted(tag)} "
            "(up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')"
        )
    if at:
        return f"invalid reference format: invalid digest {quoted(digest)}"
    return "invalid reference format"
