"""What a hostile registry has sent: each value fails at most its own field, or its own tag with
BadResponse, and whatever is kept can be stored (no NUL, no lone surrogate, sizes in a bigint)."""

import json
import time

import pytest

from catalog.oci import mediatypes
from catalog.oci.errors import BadResponse
from catalog.oci.manifest import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_SIZE,
    HistoryEntry,
    parse_config,
    parse_manifest,
    parse_time,
)

DIGEST = "sha256:" + "a" * 64
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def image(config=None, layers=None, **extra) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": config or {"mediaType": mediatypes.OCI_CONFIG, "digest": DIGEST, "size": 10},
        "layers": [{"mediaType": LAYER, "digest": DIGEST, "size": 5}] if layers is None else layers,
        **extra,
    }
    return json.dumps(document).encode()


def index(*children, **extra) -> bytes:
    document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": list(children), **extra}
    return json.dumps(document).encode()


def child(**extra) -> dict:
    return {"mediaType": mediatypes.OCI_MANIFEST, "digest": DIGEST, "size": 3, **extra}


def config_of(**fields) -> bytes:
    """A config whose `config` object holds `fields`, besides what every image has."""
    return json.dumps({"os": "linux", "architecture": "amd64", "config": fields}).encode()


# --- the values that stopped whole polls (issue 10) ----------------------------------------------------


def test_a_created_past_year_9999_in_utc_is_kept_as_text_and_read_as_no_time():
    config = parse_config(json.dumps({"created": "9999-12-31T23:59:59-23:59"}).encode(), DIGEST)
    assert config.created == "9999-12-31T23:59:59-23:59"
    assert parse_time(config.created) is None


@pytest.mark.parametrize("ports", [5, True, "80/tcp", ["80/tcp"], 1.5, None, [{"80/tcp": {}}]])
def test_exposed_ports_that_are_no_object_are_no_ports(ports):
    assert parse_config(config_of(ExposedPorts=ports, Volumes=ports), DIGEST).exposed_ports == ()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"config": {"Labels": {"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}}",
        b'{"a": ' * 200_000 + b"1" + b"}" * 200_000,
        b'{"history": ' + b"[{}, " * 200_000 + b"]" * 200_000 + b"}",
        b"[" * 200_000,  # never closed: refused as deep before it is seen to be broken
    ],
    ids=["arrays", "in-a-label", "objects", "mixed", "unclosed"],
)
def test_json_nested_200_000_deep_is_refused_at_once(body):
    for parse in (
        lambda: parse_config(body, DIGEST),
        lambda: parse_manifest(body, mediatypes.OCI_INDEX, DIGEST),
    ):
        started = time.perf_counter()
        with pytest.raises(BadResponse, match="nests deeper"):
            parse()
        assert time.perf_counter() - started < 1.0


def nested(depth: int, inner: str = "1") -> bytes:
    """A config whose label `a` is an array `depth` - 2 deep: `depth` levels in all."""
    return b'{"config": {"Labels": {"a": ' + b"[" * (depth - 3) + inner.encode() + b"]" * (depth - 3) + b"}}}"


def test_the_depth_bound_counts_brackets_outside_strings_only():
    assert parse_config(nested(MAX_DEPTH), DIGEST).labels == {}
    with pytest.raises(BadResponse, match="nests deeper"):
        parse_config(nested(MAX_DEPTH + 1), DIGEST)
    # brackets in strings, escaped quotes and backslashes included, are text, not nesting
    text = '"\\\\\\"' + "[{" * 100_000 + '"'
    assert parse_config(nested(MAX_DEPTH, text), DIGEST).labels == {}
    labels = {"a": "[{" * 100_000, "b\\": '\\"[', "[": "]"}
    assert parse_config(config_of(Labels=labels), DIGEST).labels == labels


@pytest.mark.parametrize("number", [b"1" * 4301, b"-" + b"9" * 5000])
def test_an_integer_python_will_not_read_is_a_bad_response(number):
    """Past 4300 digits json.loads raises ValueError (CVE-2020-10735): the document's tag fails."""
    with pytest.raises(BadResponse, match="not valid JSON"):
        parse_config(b'{"config": {"Labels": {"a": ' + number + b"}}}", DIGEST)


@pytest.mark.parametrize("number", [b"1" * 4301 + b".5", b"1e999999", b"-1e999999", b"NaN", b"-Infinity"])
def test_floats_and_what_python_reads_as_floats_are_dropped(number):
    body = b'{"created": ' + number + b', "config": {"Labels": {"a": ' + number + b', "b": "kept"}}}'
    config = parse_config(body, DIGEST)
    assert (config.created, config.labels) == ("", {"b": "kept"})


@pytest.mark.parametrize(
    ("size", "kept"),
    [(10**20, MAX_SIZE), (MAX_SIZE, MAX_SIZE), (MAX_SIZE + 1, MAX_SIZE), (10**4000, MAX_SIZE), (0, 0)],
)
def test_a_size_past_a_bigint_is_clamped(size, kept):
    layer = {"mediaType": LAYER, "digest": DIGEST, "size": size}
    manifest = parse_manifest(image(config={**layer, "mediaType": mediatypes.OCI_CONFIG}, layers=[layer]),
                              mediatypes.OCI_MANIFEST, DIGEST)  # fmt: skip
    assert manifest.config.size == kept and manifest.layers[0].size == kept
    assert parse_manifest(index(child(size=size)), mediatypes.OCI_INDEX, DIGEST).manifests[0].size == kept


@pytest.mark.parametrize(
    "size",
    [b"-1", b"true", b"false", b"null", b"1.0", b"1e3", b'"10"', b"[10]", b"NaN", b"Infinity", b"-Infinity",
     b"1" * 4301],
)  # fmt: skip
def test_a_descriptor_size_that_is_no_non_negative_integer_fails_the_tag(size):
    body = image().replace(b'"size": 5', b'"size": ' + size)
    with pytest.raises(BadResponse):
        parse_manifest(body, mediatypes.OCI_MANIFEST, DIGEST)


# --- strings PostgreSQL could not store ----------------------------------------------------------------

NUL = "a\x00b"
SURROGATES = "\ud800x\udfff"  # as JSON writes them: "\ud800x\udfff", each half alone
REPLACED = "\ufffdx\ufffd"


def test_nul_and_lone_surrogates_leave_every_key_and_value_of_a_config():
    body = json.dumps({
        "created": NUL, "author": SURROGATES, "os": NUL, "architecture": SURROGATES, "variant": NUL,
        "config": {
            "Env": [NUL, SURROGATES], "Labels": {NUL: SURROGATES, SURROGATES: NUL},
            "Entrypoint": NUL, "Cmd": [SURROGATES], "User": NUL, "WorkingDir": SURROGATES,
            "ExposedPorts": {NUL: {}, SURROGATES: {}}, "Volumes": {NUL: {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [NUL]},
        "history": [{"created": NUL, "created_by": SURROGATES, "author": NUL, "comment": SURROGATES}],
    }).encode()  # fmt: skip
    assert b"\\u0000" in body and b"\\ud800" in body

    config = parse_config(body, DIGEST)

    assert (config.created, config.author, config.os, config.architecture) == ("ab", REPLACED, "ab", REPLACED)
    assert config.env == ("ab", REPLACED)
    assert config.labels == {"ab": REPLACED, REPLACED: "ab"}
    assert (config.entrypoint, config.cmd) == (("ab",), (REPLACED,))
    assert (config.user, config.workdir) == ("ab", REPLACED)
    assert config.exposed_ports == ("ab", REPLACED) and config.volumes == ("ab",)
    assert config.diff_ids == ("ab",)
    assert config.history[0].created == "ab" and config.history[0].comment == REPLACED


def test_nul_and_lone_surrogates_leave_annotations_and_platforms():
    platform = {"os": NUL, "architecture": SURROGATES, "variant": NUL, "os.version": SURROGATES,
                "os.features": [NUL, 5, SURROGATES]}  # fmt: skip
    body = index(child(platform=platform, annotations={NUL: SURROGATES}), annotations={SURROGATES: NUL})

    manifest = parse_manifest(body, mediatypes.OCI_INDEX, DIGEST)

    assert manifest.annotations == {REPLACED: "ab"}
    [entry] = manifest.manifests
    assert entry.annotations == {"ab": REPLACED}
    assert (entry.platform.os, entry.platform.architecture, entry.platform.variant) == ("ab", REPLACED, "ab")
    assert entry.platform.os_version == REPLACED
    assert entry.platform.os_features == ("ab", REPLACED)


# --- only the types the spec gives --------------------------------------------------------------------

OTHER_THAN_TEXT = [5, -1.5, True, False, None, [], ["x"], {}, {"x": "y"}, 10**30]


@pytest.mark.parametrize("value", [*OTHER_THAN_TEXT, "NaN", "Infinity"], ids=repr)
def test_labels_and_annotations_keep_string_values_only(value):
    raw = json.dumps(value).encode() if value not in ("NaN", "Infinity") else value.encode()
    labels = b'{"keep": "1", "drop": ' + raw + b"}"
    config = parse_config(b'{"config": {"Labels": ' + labels + b"}}", DIGEST)
    assert config.labels == {"keep": "1"}
    body = b'{"schemaVersion": 2, "manifests": [], "annotations": ' + labels + b"}"
    assert parse_manifest(body, mediatypes.OCI_INDEX, DIGEST).annotations == {"keep": "1"}


@pytest.mark.parametrize("value", OTHER_THAN_TEXT, ids=repr)
def test_text_fields_of_another_type_are_empty(value):
    config = parse_config(json.dumps({
        "created": value, "author": value, "os": value, "architecture": value, "variant": value,
        "config": {"User": value, "WorkingDir": value},
        "history": [{"created": value, "created_by": value, "comment": value, "author": value,
                     "empty_layer": value}],
    }).encode(), DIGEST)  # fmt: skip
    assert (config.created, config.author, config.os, config.architecture, config.variant) == ("",) * 5
    assert (config.user, config.workdir) == ("", "")
    assert config.history == (HistoryEntry(empty_layer=value is True),)
    platform = {"os": value, "architecture": value, "variant": value, "os.version": value,
                "os.features": [value]}  # fmt: skip
    manifest = parse_manifest(index(child(platform=platform, artifactType=value, mediaType=value)),
                              mediatypes.OCI_INDEX, DIGEST)  # fmt: skip
    [entry] = manifest.manifests
    assert (entry.media_type, entry.artifact_type) == ("", "")
    assert (str(entry.platform), entry.platform.os_version, entry.platform.os_features) == ("", "", ())


@pytest.mark.parametrize(
    ("value", "env", "cmd"),
    [
        # Env is []string; Entrypoint and Cmd are Docker's strslice, which reads a lone string as one item
        ("A=1", (), ("A=1",)),
        (["A=1", 5, None, ["B=2"], {"C": "3"}, True, 1.5, "D=4"], ("A=1", "D=4"), ("A=1", "D=4")),
        (5, (), ()),
        (True, (), ()),
        (None, (), ()),
        ({"A": "1"}, (), ()),
    ],
)
def test_string_lists_keep_their_strings_only(value, env, cmd):
    config = parse_config(
        json.dumps({"config": {"Env": value, "Entrypoint": value, "Cmd": value},
                    "rootfs": {"diff_ids": value}}).encode(),
        DIGEST,
    )  # fmt: skip
    assert (config.env, config.entrypoint, config.cmd, config.diff_ids) == (env, cmd, cmd, env)


def test_platform_names_are_cut_to_their_columns_and_features_bounded():
    platform = {"os": "l" * 1000, "architecture": "a" * 65, "variant": "v" * 64, "os.version": "1" * 100,
                "os.features": ["f" * 100] * 100}  # fmt: skip
    [entry] = parse_manifest(index(child(platform=platform)), mediatypes.OCI_INDEX, DIGEST).manifests
    assert (entry.platform.os, entry.platform.architecture) == ("l" * 64, "a" * 64)
    assert entry.platform.variant == "v" * 64
    assert entry.platform.os_version == "1" * 64
    assert entry.platform.os_features == ("f" * 64,) * 16
    config = parse_config(json.dumps({"os": "l" * 1000, "architecture": "a" * 65}).encode(), DIGEST)
    assert (config.os, config.architecture) == ("l" * 64, "a" * 64)


@pytest.mark.parametrize(
    ("media_type", "kept"),
    [
        (LAYER, LAYER),
        ("application/vnd.in-toto+json", "application/vnd.in-toto+json"),
        ("a/b", "a/b"),
        ("x" * 127 + "/" + "y" * 127, "x" * 127 + "/" + "y" * 127),
        ("x" * 128 + "/y", ""),
        ("x/" + "y" * 128, ""),
        ("application/json; charset=utf-8", ""),
        ("application/json\n", ""),
        ("application", ""),
        ("/json", ""),
        ("application/json/x", ""),
        ("<script>/x", ""),
        ("app\x00lication/json", ""),
        ("\uff41pplication/json", ""),  # a fullwidth a: not the ASCII RFC 6838 allows
    ],
)
def test_descriptor_media_types_are_rfc_6838_names_or_nothing(media_type, kept):
    layer = {"mediaType": media_type, "digest": DIGEST, "size": 1, "artifactType": media_type}
    manifest = parse_manifest(image(layers=[layer], artifactType=media_type), mediatypes.OCI_MANIFEST, DIGEST)
    [layer] = manifest.layers
    assert (layer.media_type, layer.artifact_type, manifest.artifact_type) == (kept, kept, kept)


# --- what still fails the tag, and only it ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        image(config={"mediaType": mediatypes.OCI_CONFIG, "digest": DIGEST + "\n", "size": 1}),
        image(config={"mediaType": mediatypes.OCI_CONFIG, "digest": DIGEST.upper(), "size": 1}),
        image(config={"mediaType": mediatypes.OCI_CONFIG, "digest": ["sha256:" + "a" * 64], "size": 1}),
        image(config="sha256:" + "a" * 64),
        image(layers=[{"mediaType": LAYER, "size": 1}]),
        image(layers=[5]),
        image(layers=5),
        image(subject={"mediaType": mediatypes.OCI_MANIFEST, "digest": "sha256:x", "size": 1}),
        image(schemaVersion=True),  # True == 1 to Python; no schema1 manifest either
        image(schemaVersion=2.0),
        image(mediaType=[mediatypes.OCI_MANIFEST]),
        "\ufeff".encode() + image(),  # Go's decoder refuses a BOM, and so no registry stores one
        image().decode().encode("utf-16"),
        image() + b"\xff",
        image().replace(b"}", b"", 1),
    ],
    ids=[
        "digest-newline", "digest-upper", "digest-list", "config-string", "layer-without-digest",
        "layer-number", "layers-number", "subject-bad-digest", "schema-true", "schema-float",
        "media-type-list", "bom", "utf-16", "not-utf-8", "truncated",
    ],
)  # fmt: skip
def test_structural_faults_are_bad_responses(body):
    with pytest.raises(BadResponse):
        parse_manifest(body, mediatypes.OCI_MANIFEST, DIGEST)


@pytest.mark.parametrize("subject", [5, "sha256:" + "a" * 64, ["x"], True, {}])
def test_a_subject_that_is_no_descriptor_object_is_no_subject(subject):
    assert parse_manifest(image(subject=subject), mediatypes.OCI_MANIFEST, DIGEST).subject is None


@pytest.mark.parametrize("content_type", ["application/json", "text/html", "x/" + "y" * 500])
def test_a_schema1_body_under_another_content_type_is_recorded_as_schema1(content_type):
    manifest = parse_manifest(b'{"schemaVersion": 1, "name": "x"}', content_type, DIGEST)
    assert manifest.legacy and manifest.media_type == mediatypes.DOCKER_SCHEMA1


@pytest.mark.parametrize(
    ("fields", "read"),
    [
        ({"Labels": {f"l{n}": "v" for n in range(100_000)}}, lambda c: len(c.labels)),
        ({"Env": [f"E{n}=v" for n in range(5000)]}, lambda c: len(c.env)),
        ({"Cmd": ["x"] * 5000}, lambda c: len(c.cmd)),
        ({"ExposedPorts": {f"{n}/tcp": {} for n in range(5000)}}, lambda c: len(c.exposed_ports)),
    ],
    ids=["labels", "env", "cmd", "ports"],
)
def test_a_document_keeps_at_most_max_entries_of_each_list_and_map(fields, read):
    """Every page that shows or compares a config pays per entry: 100 000 labels took seconds."""
    assert read(parse_config(config_of(**fields), DIGEST)) == MAX_ENTRIES


def test_a_config_keeps_at_most_max_entries_history_steps():
    document = {"os": "linux", "history": [{"created_by": f"RUN step {n}"} for n in range(5000)]}
    assert len(parse_config(json.dumps(document).encode(), DIGEST).history) == MAX_ENTRIES


def test_annotations_keep_at_most_max_entries():
    body = image(annotations={f"a{n}": "v" for n in range(5000)})
    assert len(parse_manifest(body, mediatypes.OCI_MANIFEST, DIGEST).annotations) == MAX_ENTRIES
