"""Any JSON, in any field of a manifest, an index or an image config, parses into values PostgreSQL
can store (no NUL, no lone surrogate, sizes in a bigint, names that fit their columns) or fails
with BadResponse; a config, all of whose fields are informational, never fails for a field."""

import contextlib
import copy
import dataclasses
import json
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.oci import mediatypes
from catalog.oci.errors import BadResponse
from catalog.oci.manifest import (
    LAST_YEAR,
    MAX_PLATFORM_TEXT,
    MAX_SIZE,
    UNSET_BEFORE,
    Descriptor,
    HistoryEntry,
    ImageConfig,
    Manifest,
    Platform,
    parse_config,
    parse_manifest,
    parse_time,
)

DIGEST = "sha256:" + "a" * 64
TIME = "2026-11-26T12:00:00.123456789Z"

BOUNDED = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
# Any character, surrogates (Cs) included; half the time made of those PostgreSQL refuses (NUL, lone
# surrogates, which JSON escapes as \u0000 and \ud800) among a media type's and RFC 3339's characters.
TEXT = st.text(st.characters(exclude_categories=())) | st.text(st.sampled_from("\x00\ud800\udfffa/+:-.Z0"))
NUMBERS = st.integers() | st.sampled_from([-1, 2**63 - 1, 2**63, 10**20, -(10**20)]) | st.floats()
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)

CONFIG = {
    "created": TIME, "author": "someone", "architecture": "arm64", "os": "linux", "variant": "v8",
    "config": {
        "User": "app", "WorkingDir": "/app", "Env": ["PATH=/usr/bin", "A=1"],
        "Entrypoint": ["/init"], "Cmd": ["serve", "--port", "80"],
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
        "Labels": {"org.opencontainers.image.version": "3.14.4", "a": "b"},
    },
    "rootfs": {"type": "layers", "diff_ids": [DIGEST, DIGEST]},
    "history": [
        {"created": TIME, "created_by": "RUN make", "author": "x", "comment": "kit", "empty_layer": True},
        {"created": TIME, "created_by": "COPY . /app"},
    ],
}  # fmt: skip


def descriptor(media_type: str, **extra) -> dict:
    return {"mediaType": media_type, "digest": DIGEST, "size": 10, "annotations": {"a": "b"}, **extra}


IMAGE = {
    "schemaVersion": 2,
    "mediaType": mediatypes.OCI_MANIFEST,
    "artifactType": "application/vnd.example+json",
    "config": descriptor(mediatypes.OCI_CONFIG),
    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip"), descriptor("application/x-tar")],
    "subject": descriptor(mediatypes.OCI_MANIFEST),
    "annotations": {"org.opencontainers.image.created": TIME},
}
INDEX = {
    "schemaVersion": 2,
    "mediaType": mediatypes.OCI_INDEX,
    "manifests": [
        descriptor(mediatypes.OCI_MANIFEST, platform={
            "os": "windows", "architecture": "amd64", "variant": "v3",
            "os.version": "10.0.20348.2340", "os.features": ["win32k"],
        }),
        descriptor(mediatypes.OCI_MANIFEST, artifactType="application/vnd.example+json"),
    ],
    "annotations": {"a": "b"},
}  # fmt: skip


def paths(document, prefix=()) -> list[tuple]:
    """Every place in a document a value sits: each key of each object, each item of each list."""
    found = []
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list) and value:
            found += paths(value, (*prefix, key))
    return found


def replaced(document: dict, path: tuple, value) -> bytes:
    document = copy.deepcopy(document)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return json.dumps(document).encode()  # NaN and Infinity as Python writes them; surrogates as \ud800


def structural(path: tuple) -> bool:
    """What the document means nothing without: its schema version and type, its descriptors' digests
    and sizes, and the descriptors themselves (the config, the layers, the manifests, a subject)."""
    if len(path) == 1:
        return path[0] in ("schemaVersion", "mediaType", "config", "layers", "manifests", "subject")
    if path[0] in ("layers", "manifests"):
        return len(path) == 2 or (len(path) == 3 and path[2] in ("digest", "size"))
    return path[0] in ("config", "subject") and len(path) == 2 and path[1] in ("digest", "size")


def assert_storable(value, field: str = "") -> None:
    """Every string fits PostgreSQL text and JSONB; every number a bigint; names fit their columns."""
    if isinstance(value, str):
        assert "\x00" not in value, field
        value.encode("utf-8")  # raises on a lone surrogate
        if field in ("os", "architecture", "variant", "os_version", "os_features"):
            assert len(value) <= MAX_PLATFORM_TEXT, field
        if field in ("media_type", "artifact_type") and value:
            assert mediatypes.parse(value) == value and len(value) <= 255, field
    elif isinstance(value, bool) or value is None or isinstance(value, bytes):
        return
    elif isinstance(value, int):
        assert 0 <= value <= MAX_SIZE, field
    elif isinstance(value, Manifest | Descriptor | Platform | ImageConfig | HistoryEntry):
        for item in dataclasses.fields(value):
            assert_storable(getattr(value, item.name), item.name)
    elif isinstance(value, tuple):
        for item in value:
            assert_storable(item, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str) and isinstance(item, str), field  # annotations, labels: str→str
            assert_storable(key, field)
            assert_storable(item, field)
    else:
        raise AssertionError(f"{field} holds a {type(value).__name__}")


def assert_config_storable(config: ImageConfig) -> None:
    assert_storable(config)
    for text in (config.created, *(entry.created for entry in config.history)):
        moment = parse_time(text)
        assert moment is None or moment.tzinfo is UTC
        assert moment is None or (moment >= UNSET_BEFORE and moment.year <= LAST_YEAR)


def parsed_manifest(body: bytes, content_type: str) -> Manifest | None:
    try:
        manifest = parse_manifest(body, content_type, DIGEST)
    except BadResponse:
        return None
    assert_storable(manifest)
    return manifest


# Each place in each document gets its own examples: a hostile value in one field among forty is
# otherwise left to chance.
EACH_PATH = settings(BOUNDED, max_examples=40)


@pytest.mark.parametrize("path", paths(CONFIG), ids=repr)
@EACH_PATH
@given(value=TEXT | JSON)
def test_any_value_in_any_config_field_parses(path, value):
    assert_config_storable(parse_config(replaced(CONFIG, path, value), DIGEST))


@pytest.mark.parametrize("path", paths(IMAGE), ids=repr)
@EACH_PATH
@given(value=TEXT | JSON)
def test_any_value_in_an_image_manifest_fails_at_most_for_a_structural_field(path, value):
    manifest = parsed_manifest(replaced(IMAGE, path, value), mediatypes.OCI_MANIFEST)
    assert manifest is not None or structural(path)


@pytest.mark.parametrize("path", paths(INDEX), ids=repr)
@EACH_PATH
@given(value=TEXT | JSON)
def test_any_value_in_an_index_fails_at_most_for_a_structural_field(path, value):
    manifest = parsed_manifest(replaced(INDEX, path, value), mediatypes.OCI_INDEX)
    assert manifest is not None or structural(path)


# Whole documents made of the fields the parsers read, holding values the parsers accept (digests,
# media types, schema versions) as often as anything else: the mixtures no single field shows.
FIELDS = st.sampled_from(sorted({path[-1] for document in (CONFIG, IMAGE, INDEX) for path in paths(document)
                                 if isinstance(path[-1], str)}))  # fmt: skip
USABLE = st.sampled_from(
    [DIGEST, 2, 1, 10, TIME, mediatypes.OCI_MANIFEST, mediatypes.OCI_INDEX, mediatypes.OCI_CONFIG]
)
DOCUMENTS = st.dictionaries(
    FIELDS | TEXT,
    st.recursive(
        st.none() | st.booleans() | NUMBERS | TEXT | USABLE,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS | TEXT, inner, max_size=6),
        max_leaves=30,
    ),
    max_size=8,
)


@BOUNDED
@given(document=DOCUMENTS | JSON)
def test_any_json_document_parses_or_is_a_bad_response(document):
    body = json.dumps(document).encode()
    for content_type in (mediatypes.OCI_MANIFEST, mediatypes.DOCKER_MANIFEST_LIST, "text/html"):
        parsed_manifest(body, content_type)
    try:
        config = parse_config(body, DIGEST)
    except BadResponse:
        assert not isinstance(document, dict)
    else:
        assert_config_storable(config)


@pytest.mark.parametrize("document", [CONFIG, IMAGE, INDEX], ids=["config", "image", "index"])
@BOUNDED
@given(data=st.data())
def test_valid_documents_with_bytes_spliced_in_parse_or_are_bad_responses(document, data):
    """Broken strings and brackets, where the depth scan has to tell strings from structure."""
    body = json.dumps(document).encode()
    at = data.draw(st.integers(0, len(body)), label="at")
    cut = data.draw(st.integers(0, 20), label="cut")
    spliced = data.draw(
        st.binary(max_size=20) | st.lists(st.sampled_from(list(b'"\\[]{},:'))).map(bytes),
        label="spliced",
    )
    body = body[:at] + spliced + body[at + cut :]
    for content_type in (mediatypes.OCI_MANIFEST, mediatypes.OCI_INDEX):
        parsed_manifest(body, content_type)
    with contextlib.suppress(BadResponse):
        assert_config_storable(parse_config(body, DIGEST))
