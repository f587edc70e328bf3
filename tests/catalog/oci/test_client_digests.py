"""The client records the digest skopeo computes, for every manifest shape, on the real registry."""

import pytest

from catalog.oci import mediatypes
from catalog.oci.client import RegistryClient
from catalog.oci.errors import RepositoryNotFound, TagNotFound
from tests.support.oracle import skopeo_config, skopeo_digest

SHAPES = {
    "oci": mediatypes.OCI_MANIFEST,
    "oci-index": mediatypes.OCI_INDEX,
    "docker": mediatypes.DOCKER_MANIFEST,
    "docker-list": mediatypes.DOCKER_MANIFEST_LIST,
}


@pytest.fixture
def client(registry):
    with RegistryClient(registry.host) as client:
        yield client


@pytest.mark.parametrize("shape", SHAPES)
def test_head_digest_equals_skopeo(client, registry, pusher, repo_name, shape):
    pushed = pusher.push(repo_name, "1.0", shape)
    head = client.head_manifest(repo_name, "1.0")
    assert head.digest == skopeo_digest(registry.host, repo_name, "1.0") == pushed.digest
    assert head.media_type == SHAPES[shape]
    assert head.size == len(pushed.manifest)
    assert not head.legacy
    assert client.stats["manifest_gets"] == 0, "a trustworthy HEAD needs no GET"


@pytest.mark.parametrize("shape", SHAPES)
def test_get_manifest_verifies_and_parses_every_shape(client, registry, pusher, repo_name, shape):
    pushed = pusher.push(repo_name, "1.0", shape, annotations={"org.opencontainers.image.version": "1.0"})
    manifest = client.get_manifest(repo_name, "1.0")
    assert manifest.digest == skopeo_digest(registry.host, repo_name, "1.0")
    assert manifest.body == pushed.manifest
    assert manifest.media_type == SHAPES[shape]
    if manifest.is_index:
        assert [child.digest for child in manifest.manifests] == pushed.child_digests
        assert [str(child.platform) for child in manifest.manifests] == ["linux/amd64", "linux/arm64/v8"]
    else:
        assert manifest.config.digest == pushed.config_digest
        assert len(manifest.layers) == 1
    if shape.startswith("oci"):
        assert manifest.annotations == {"org.opencontainers.image.version": "1.0"}


def test_index_children_and_their_configs_are_readable_by_digest(client, registry, pusher, repo_name):
    pushed = pusher.push(repo_name, "multi", "oci-index", labels={"org.example.team": "platform"})
    index = client.get_manifest(repo_name, "multi")
    for child, config_digest in zip(index.manifests, pushed.config_digests, strict=True):
        image = client.get_manifest(repo_name, child.digest)
        assert image.digest == child.digest
        config = client.get_config(repo_name, image.config.digest)
        assert config.digest == config_digest
        assert config.architecture == child.platform.architecture
        assert config.labels == {"org.example.team": "platform"}
    amd64 = skopeo_config(registry.host, repo_name, "multi", arch="amd64")
    assert amd64["config"]["Labels"] == {"org.example.team": "platform"}


def test_head_by_digest_confirms_the_digest(client, pusher, repo_name):
    pushed = pusher.push(repo_name, "1.0", "docker")
    assert client.head_manifest(repo_name, pushed.digest).digest == pushed.digest


def test_tags_of_a_repository_are_listed_sorted(client, pusher, repo_name):
    for tag in ["latest", "3.14.4", "3.14", "3", "3.14.4-202611261200"]:
        pusher.push(repo_name, tag, "oci")
    listed = client.list_tags(repo_name)
    assert listed.tags == ("3", "3.14", "3.14.4", "3.14.4-202611261200", "latest")
    assert listed.rejected == ()
    assert listed.pages == 1


def test_a_missing_tag_and_a_missing_repository_are_told_apart(client, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    with pytest.raises(TagNotFound):
        client.head_manifest(repo_name, "nope")
    with pytest.raises(TagNotFound):
        client.get_manifest(repo_name, "nope")
    with pytest.raises(RepositoryNotFound):
        client.list_tags(repo_name + "-absent")


def test_a_deleted_tag_is_not_found(client, pusher, repo_name):
    pushed = pusher.push(repo_name, "gone", "oci")
    pusher.delete(repo_name, pushed.digest)
    with pytest.raises(TagNotFound):
        client.head_manifest(repo_name, "gone")


@pytest.mark.parametrize("reference", ["../../v2/_catalog", "UPPER/case", "a" * 300, ""])
def test_hostile_repository_names_never_reach_the_wire(client, reference):
    with pytest.raises(ValueError):
        client.list_tags(reference)
    assert client.stats["requests"] == 0


@pytest.mark.parametrize("tag", ["../latest", "a b", "-x", "x" * 129, "sha256:abc"])
def test_hostile_tags_never_reach_the_wire(client, repo_name, tag):
    with pytest.raises(ValueError):
        client.head_manifest(repo_name, tag)
    assert client.stats["requests"] == 0


def test_requests_name_tagledger_and_reuse_one_session(client, registry, pusher, repo_name, fault_proxy):
    pusher.push(repo_name, "1.0", "oci")
    with RegistryClient(fault_proxy.host) as proxied:
        for _ in range(5):
            proxied.head_manifest(repo_name, "1.0")
    heads = [record for record in fault_proxy.records if record.method == "HEAD"]
    assert all(record.headers.get("user-agent", "").startswith("tagledger") for record in heads)
    assert all(mediatypes.OCI_INDEX in record.headers.get("accept", "") for record in heads)
    assert len({record.conn_id for record in fault_proxy.records}) == 1
