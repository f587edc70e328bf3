"""Manifests and configs from a registry are validated, never trusted."""

import json

import pytest

from catalog.oci import mediatypes
from catalog.oci.errors import BadResponse, DigestMismatch
from catalog.oci.manifest import digest_of, parse_config, parse_manifest, verify

DIGEST = "sha256:" + "a" * 64


def image(**extra):
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": DIGEST, "size": 10},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 5}],
        **extra,
    }
    return json.dumps(document).encode()


def test_image_manifest_is_parsed_with_annotations():
    manifest = parse_manifest(image(annotations={"org.opencontainers.image.version": "3.14.4"}),
                              mediatypes.OCI_MANIFEST + "; charset=utf-8", DIGEST)  # fmt: skip
    assert manifest.config.digest == DIGEST
    assert manifest.layers[0].size == 5
    assert manifest.annotations == {"org.opencontainers.image.version": "3.14.4"}
    assert not manifest.is_index and not manifest.legacy


def test_index_children_carry_platforms():
    body = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
        "manifests": [{"mediaType": mediatypes.OCI_MANIFEST, "digest": DIGEST, "size": 3,
                       "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}],
    }).encode()  # fmt: skip
    manifest = parse_manifest(body, mediatypes.OCI_INDEX, DIGEST)
    assert manifest.is_index
    assert str(manifest.manifests[0].platform) == "linux/arm64/v8"


def test_media_type_must_match_content_type():
    with pytest.raises(BadResponse, match="does not match Content-Type"):
        parse_manifest(image(), mediatypes.DOCKER_MANIFEST, DIGEST)


def test_schema1_is_flagged_legacy_not_parsed():
    manifest = parse_manifest(b'{"schemaVersion": 1}', mediatypes.DOCKER_SCHEMA1_SIGNED, DIGEST)
    assert manifest.legacy and manifest.digest == DIGEST


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"[]",
        b"\xff\xfe",
        json.dumps({"schemaVersion": 3, "mediaType": mediatypes.OCI_MANIFEST}).encode(),
        image(config={"digest": "sha256:short", "size": 1}),
        image(config={"digest": DIGEST, "size": -1}),
        image(config={"digest": DIGEST, "size": True}),
        image(layers={"not": "a list"}),
        json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST}).encode(),
        b'{"schemaVersion": 2, "annotations": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    ],
)
def test_malformed_manifests_are_bad_responses(body):
    with pytest.raises(BadResponse):
        parse_manifest(body, mediatypes.OCI_MANIFEST, DIGEST)


def test_unknown_media_type_is_refused():
    with pytest.raises(BadResponse, match="unsupported manifest media type"):
        parse_manifest(b'{"schemaVersion": 2}', "text/html", DIGEST)


def test_verify_uses_the_expected_algorithm():
    assert verify(b"x", digest_of(b"x", "sha512")).startswith("sha512:")
    with pytest.raises(DigestMismatch):
        verify(b"x", digest_of(b"y"))
    with pytest.raises(BadResponse):
        verify(b"x", "md5:abc")


def test_config_summary_keeps_only_well_typed_values():
    body = json.dumps({
        "created": "2026-11-26T12:00:00Z", "os": "linux", "architecture": "amd64",
        "config": {"Env": ["A=1", {"x": 1}], "Labels": {"a": "<script>", "b": {"nested": 1}},
                   "Entrypoint": "/bin/sh", "Cmd": None, "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
                   "User": 1000, "WorkingDir": "/app"},
        "rootfs": {"type": "layers", "diff_ids": [DIGEST]},
        "history": [{"created_by": "RUN make", "empty_layer": True}, "junk"],
    }).encode()  # fmt: skip
    config = parse_config(body, DIGEST)
    assert config.env == ("A=1",)
    assert config.labels == {"a": "<script>"}
    assert config.entrypoint == ("/bin/sh",)
    assert config.cmd == ()
    assert config.user == ""
    assert config.exposed_ports == ("443/tcp", "80/tcp")
    assert config.history[0].created_by == "RUN make" and config.history[0].empty_layer


def test_a_config_whose_parts_are_no_objects_is_read_as_having_none():
    """`config`, `rootfs` and `history` of the wrong type say nothing; the build is still a build."""
    config = parse_config(b'{"config": [], "rootfs": "layers", "history": {"a": 1}, "os": "linux"}', DIGEST)
    assert (config.os, config.env, config.diff_ids, config.history) == ("linux", (), (), ())
    with pytest.raises(BadResponse, match="not a JSON object"):
        parse_config(b'["config"]', DIGEST)
