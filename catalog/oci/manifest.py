"""Typed, validated views of manifests and image configs: what the client hands to its callers.

A registry (or anyone who can push one tag to it) chooses every byte parsed here. Each value is
read with the JSON type the OCI image spec and Docker's schema2 give it: an informational field
of another type is dropped (it fails nothing), and only what makes a document meaningless (no
config descriptor, a descriptor without a digest) raises BadResponse, which fails only the tag
it came with. Every string handed on can be stored in PostgreSQL text and JSONB, every size in
a bigint, and no document makes the parser recurse deeper than MAX_DEPTH.
"""

import hashlib
import itertools
import json
import re
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate
from typing import Any

from catalog.text import quoted

from . import mediatypes
from .errors import BadResponse, DigestMismatch

_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}

#: The largest size stored: PostgreSQL's bigint. Callers clamp sums of sizes with it too.
MAX_SIZE = 2**63 - 1
#: Real manifests and configs nest under 10 deep; annotation values are free JSON in practice,
#: so leave them room. json.loads recurses once per level and Python stops near 1000 frames.
MAX_DEPTH = 128
#: Platform fields are short names (linux, arm64, v8) stored in 64-character columns.
MAX_PLATFORM_TEXT = 64
MAX_OS_FEATURES = 16
#: Labels, annotations, Env, Entrypoint, Cmd, ports and volumes of one document: real images carry
#: dozens. A config of 100 000 labels fits the 4 MiB cap, and every page that shows or compares
#: it paid for each one (seconds per page); past this many, the rest are dropped.
MAX_ENTRIES = 1000
# Go's zero time (cosign signatures) and the Unix epoch (reproducible builds) mean "not set".
UNSET_BEFORE = datetime(1970, 1, 2, tzinfo=UTC)
# A time that must still be shown in any time zone (±1 day) without leaving datetime's range.
LAST_YEAR = 9998


def is_digest(value: object) -> bool:
    return isinstance(value, str) and bool(_DIGEST.fullmatch(value))


def digest_of(content: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_ALGORITHMS[algorithm](content).hexdigest()}"


def verify(content: bytes, expected: str) -> str:
    """Hash the exact bytes with the expected digest's algorithm; raise if they differ."""
    if not is_digest(expected):
        raise BadResponse(f"not a sha256/sha512 digest: {quoted(expected)}")
    actual = digest_of(content, expected.split(":", 1)[0])
    if actual != expected:
        raise DigestMismatch(expected, actual)
    return actual


# RFC 3339 as Go marshals time.Time (Docker, BuildKit): up to nine fractional digits, Z or ±hh:mm.
# Also what django.utils.dateparse read before: one-digit fields, a space for T, ±hhmm, no zone
# (taken as UTC). ASCII digits only: int() reads "²" and "٣" as well.
_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[Tt ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,12}))?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def parse_time(value: object) -> datetime | None:
    """An image config's or history entry's time in UTC, or None when it says nothing usable:
    not text, not RFC 3339, before UNSET_BEFORE (a placeholder), or out of datetime's range."""
    if not isinstance(value, str) or not (match := _TIME.fullmatch(value)):
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = 0
    if zone and zone not in ("Z", "z"):
        hours, minutes = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
        if minutes > 59:
            return None
        offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
            int((fraction or "").ljust(6, "0")[:6]), tzinfo=timezone(timedelta(minutes=offset)),
        ).astimezone(UTC)  # fmt: skip
    except (ValueError, OverflowError):  # 2026-02-30, hour 24, offset ≥ 24 h; or past year 9999 in UTC
        return None
    if moment < UNSET_BEFORE or moment.year > LAST_YEAR:
        return None
    return moment


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD (or the headers of a GET) says about a manifest."""

    digest: str
    media_type: str
    size: int | None
    legacy: bool = False


@dataclass(frozen=True)
class Manifest:
    """A manifest fetched with GET, its digest verified over the exact bytes."""

    digest: str
    media_type: str
    size: int
    body: bytes
    legacy: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False
    author: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config a person compares between builds.

    `created` is the raw text, for display; parse_time(created) is the time, when there is one.
    """

    digest: str
    created: str = ""
    os: str = ""
    architecture: str = ""
    variant: str = ""
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    author: str = ""
    volumes: tuple[str, ...] = ()


def parse_manifest(body: bytes, content_type: str, digest: str) -> Manifest:
    """Validate a manifest body whose digest was already verified; the registry is untrusted."""
    content_type = mediatypes.bare(content_type)
    if content_type in mediatypes.LEGACY:
        # schema1 bodies carry a signature that changes per request: never a stable thing to hash.
        return Manifest(digest, content_type, len(body), body, legacy=True)
    document = json_object(body, "manifest")
    declared = document.get("mediaType")
    if declared is not None and declared != content_type:
        raise BadResponse(
            f"manifest mediaType {quoted(declared)} does not match Content-Type {quoted(content_type)}"
        )
    if _integer(document.get("schemaVersion")) == 1:
        # Old registries served schema1 as application/json. The Content-Type is not kept: it is
        # whatever the registry said, of any length, and the body says what this is.
        return Manifest(digest, mediatypes.DOCKER_SCHEMA1, len(body), body, legacy=True)
    if content_type not in mediatypes.MANIFESTS:
        raise BadResponse(f"unsupported manifest media type {quoted(content_type)}")
    if _integer(document.get("schemaVersion")) != 2:
        raise BadResponse("manifest schemaVersion is not 2")
    subject = document.get("subject")
    common = {
        "annotations": _string_map(document.get("annotations")),
        "artifact_type": mediatypes.parse(document.get("artifactType")),
        # A referrer's link to what it describes: informational unless it is there to be read.
        "subject": _descriptor(subject) if isinstance(subject, dict) and subject else None,
    }
    if content_type in mediatypes.INDEXES:
        children = _list(document.get("manifests"), "manifests")
        return Manifest(
            digest, content_type, len(body), body,
            manifests=tuple(_descriptor(child) for child in children), **common,
        )  # fmt: skip
    if "config" not in document:
        raise BadResponse("image manifest has no config")
    return Manifest(
        digest, content_type, len(body), body,
        config=_descriptor(document["config"]),
        layers=tuple(_descriptor(layer) for layer in _list(document.get("layers"), "layers")),
        **common,
    )  # fmt: skip


def parse_config(body: bytes, digest: str) -> ImageConfig:
    """The summary of an image config; only a body that is no JSON object (or nests too deep) fails."""
    document = json_object(body, "image config")
    config = dict_or_empty(document.get("config"))
    rootfs = dict_or_empty(document.get("rootfs"))
    return ImageConfig(
        digest=digest,
        created=_text(document.get("created")),
        author=_text(document.get("author")),
        os=_text(document.get("os"), MAX_PLATFORM_TEXT),
        architecture=_text(document.get("architecture"), MAX_PLATFORM_TEXT),
        variant=_text(document.get("variant"), MAX_PLATFORM_TEXT),
        env=_strings(config.get("Env")),
        labels=_string_map(config.get("Labels")),
        # Docker reads a lone string as a one-item list here (strslice), so some configs have one.
        entrypoint=_strings(config.get("Entrypoint"), lone=True),
        cmd=_strings(config.get("Cmd"), lone=True),
        user=_text(config.get("User")),
        workdir=_text(config.get("WorkingDir")),
        exposed_ports=_keys(config.get("ExposedPorts")),
        volumes=_keys(config.get("Volumes")),
        diff_ids=_strings(rootfs.get("diff_ids")),
        history=tuple(
            HistoryEntry(
                created=_text(entry.get("created")),
                created_by=_text(entry.get("created_by")),
                author=_text(entry.get("author")),
                comment=_text(entry.get("comment")),
                empty_layer=entry.get("empty_layer") is True,
            )
            # Compared step by step between builds (difflib, quadratic): bounded like the rest.
            for entry in itertools.islice(
                (entry for entry in list_or_empty(document.get("history")) if isinstance(entry, dict)),
                MAX_ENTRIES,
            )
        ),
    )


# A JSON string whole (escapes included; one left open runs to the end), possessive so that each
# character is looked at once: what is left of a document outside its strings holds its brackets.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_NESTING_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as signed bytes


def json_object(body: bytes, what: str) -> dict[str, Any]:
    # JSON between systems is UTF-8 (RFC 8259), and Go's decoder (the registry's) reads nothing
    # else; json.loads would also guess UTF-16 and UTF-32, whose bytes the depth scan cannot read.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadResponse(f"{what} is not UTF-8") from None
    # `[[[[…` 200 000 deep fits in a few hundred KiB: refuse it before json.loads recurses into it.
    steps = _STRING.sub("", text).encode().translate(_NESTING_STEPS, _NOT_BRACKETS)
    if max(accumulate(array("b", steps)), default=0) > MAX_DEPTH:
        raise BadResponse(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        # NaN and Infinity are no JSON; Python reads them as floats. No field takes a float, and
        # None is what an absent value is: read them as None and let each field drop them.
        document = json.loads(text, parse_constant=lambda _: None)
    except ValueError:  # malformed, or an integer of more than 4300 digits
        raise BadResponse(f"{what} is not valid JSON") from None
    except RecursionError:  # the scan above bounds depth; should a stack be shallower than thought
        raise BadResponse(f"{what} nests deeper than Python's JSON parser goes") from None
    if not isinstance(document, dict):
        raise BadResponse(f"{what} is not a JSON object")
    return document


def _descriptor(value: Any) -> Descriptor:
    if not isinstance(value, dict):
        raise BadResponse("descriptor is not an object")
    digest, size = value.get("digest"), value.get("size")
    if not is_digest(digest):
        raise BadResponse(f"descriptor digest is invalid: {quoted(digest)}")
    if _integer(size) is None or size < 0:
        raise BadResponse(f"descriptor size is invalid: {quoted(size)}")
    return Descriptor(
        media_type=mediatypes.parse(value.get("mediaType")),
        digest=digest,
        # A size past a bigint is a lie (no blob is 8 EiB), but not one worth failing the tag for.
        size=min(size, MAX_SIZE),
        platform=_platform(value.get("platform")),
        annotations=_string_map(value.get("annotations")),
        artifact_type=mediatypes.parse(value.get("artifactType")),
    )


def _platform(value: Any) -> Platform | None:
    if not isinstance(value, dict):
        return None
    return Platform(
        os=_text(value.get("os"), MAX_PLATFORM_TEXT),
        architecture=_text(value.get("architecture"), MAX_PLATFORM_TEXT),
        variant=_text(value.get("variant"), MAX_PLATFORM_TEXT),
        os_version=_text(value.get("os.version"), MAX_PLATFORM_TEXT),
        os_features=tuple(
            storable_text(feature, MAX_PLATFORM_TEXT) for feature in _strings(value.get("os.features"))
        )[:MAX_OS_FEATURES],
    )


def _integer(value: Any) -> int | None:
    """A JSON integer; True is no 1 and 2.0 no 2, though Python says so."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(value: Any, what: str) -> list:
    """A list the document cannot do without (an index's manifests, a manifest's layers)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponse(f"'{what}' is not a list")
    return value


def list_or_empty(value: Any) -> list:
    return value if isinstance(value, list) else []


def dict_or_empty(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _string_map(value: Any) -> dict[str, str]:
    """Annotations and labels: string to string by the spec; a value of another type is dropped."""
    kept = ((key, item) for key, item in dict_or_empty(value).items() if isinstance(item, str))
    return {storable_text(key): storable_text(item) for key, item in itertools.islice(kept, MAX_ENTRIES)}


def _keys(value: Any) -> tuple[str, ...]:
    """The keys of a set written as an object (ExposedPorts, Volumes: `{"80/tcp": {}}`), sorted."""
    return tuple(sorted({storable_text(key) for key in itertools.islice(dict_or_empty(value), MAX_ENTRIES)}))


def _strings(value: Any, *, lone: bool = False) -> tuple[str, ...]:
    """An array of strings, without its items of other types; a lone string only when `lone`."""
    if lone and isinstance(value, str):
        return (storable_text(value),)
    kept = (item for item in list_or_empty(value) if isinstance(item, str))
    return tuple(storable_text(item) for item in itertools.islice(kept, MAX_ENTRIES))


def _text(value: Any, limit: int | None = None) -> str:
    return storable_text(value, limit) if isinstance(value, str) else ""


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str, limit: int | None = None) -> str:
    """Text PostgreSQL can store: no NUL (text and JSONB refuse it), no lone surrogate (`"\\ud800"`
    in JSON; UTF-8 cannot encode it), so U+FFFD in its place; cut to `limit` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text if limit is None else text[:limit]
