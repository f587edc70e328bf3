"""Push events of each registry read into pushes (history.hooks): real payload shapes, the events
that are not pushes, and hostile bodies, which are a HookRefused and never another exception."""

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from history.hooks import DISTRIBUTION_EVENTS, MAX_BODY, MAX_REASONS, HookRefused, Push, read, read_pushes

DIGEST = "sha256:c31a8efed5a05e3bfcf345c518a2b60a29d5486cbda11556541570c85c1836c0"
CHILD = "sha256:2190819178a68c761775e433bbcbf77ada07e232cef66ae3d79abe9014e4c09d"


def distribution_event(action="push", *, tag="1.0", digest=DIGEST, repository="a/b", host="127.0.0.1:5000"):
    """One event as docker-registry 2.8 sends it (captured from the real binary, trimmed)."""
    target = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "size": 506,
        "digest": digest,
        "length": 506,
        "repository": repository,
        "url": f"http://{host}/v2/{repository}/manifests/{digest}",
        "references": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 401, "digest": CHILD}
        ],
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "157783a3-61e1-4a23-8456-d056d7b7c0ba",
        "timestamp": "2026-12-01T10:39:59.302556408Z",
        "action": action,
        "target": target,
        "request": {
            "id": "5871b0e1",
            "addr": "127.0.0.1:41710",
            "host": host,
            "method": "PUT",
            "useragent": "x",
        },
        "actor": {},
        "source": {"addr": "vm:5000", "instanceID": "34718531-23a2-4ba2-b61b-1d27042768e0"},
    }


HARBOR = {
    "type": "PUSH_ARTIFACT",
    "occur_at": 1680501893,
    "operator": "admin",
    "event_data": {
        "resources": [
            {"digest": DIGEST, "tag": "v1.2", "resource_url": "harbor.example.com/library/app:v1.2"},
        ],
        "repository": {
            "date_created": 1680501893,
            "name": "app",
            "namespace": "library",
            "repo_full_name": "library/app",
            "repo_type": "private",
        },
    },
}
QUAY = {
    "name": "repository",
    "repository": "dgangaia/test",
    "namespace": "dgangaia",
    "docker_url": "quay.io/dgangaia/test",
    "homepage": "https://quay.io/repository/dgangaia/repository",
    "updated_tags": ["latest", "1.0"],
}
DOCKER_HUB = {
    "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
    "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"},
    "repository": {
        "comment_count": 0,
        "date_created": 1417494799,
        "dockerfile": "#\n# BUILD\t\tdocker build -t svendowideit/apt-cacher .\n",
        "is_official": False,
        "name": "testhook",
        "namespace": "svendowideit",
        "repo_name": "svendowideit/testhook",
        "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/",
        "status": "Active",
    },
}


def github(key="registry_package", *, action="published", package_type="CONTAINER", tag="1.4.0"):
    """GitHub's `registry_package` (org or repository webhook) and `package` events, trimmed."""
    return {
        "action": action,
        key: {
            "id": 5281,
            "name": "Web-App",
            "namespace": "Octo-Org",
            "ecosystem": package_type,
            "package_type": package_type,
            "owner": {"login": "Octo-Org", "type": "Organization"},
            "package_version": {
                "id": 993,
                "version": DIGEST,
                "name": DIGEST,
                "container_metadata": {"tag": {"name": tag, "digest": DIGEST}, "labels": {}, "manifest": {}},
                "package_url": f"ghcr.io/octo-org/web-app:{tag}",
            },
            "registry": {
                "name": "GitHub CONTAINER registry",
                "url": "https://ghcr.io/octo-org",
                "type": "CONTAINER",
            },
        },
        "repository": {"full_name": "Octo-Org/web-app"},
        "sender": {"login": "octocat"},
    }


def body(document) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("document", "content_type", "pushes"),
    [
        pytest.param(
            {"events": [distribution_event()]},
            DISTRIBUTION_EVENTS,
            [Push("127.0.0.1:5000", "a/b", "1.0", DIGEST)],
            id="distribution",
        ),
        pytest.param(
            {"events": [distribution_event(tag=None, digest=CHILD), distribution_event()]},
            DISTRIBUTION_EVENTS,
            [Push("127.0.0.1:5000", "a/b", None, CHILD), Push("127.0.0.1:5000", "a/b", "1.0", DIGEST)],
            id="distribution-index-children-by-digest",
        ),
        pytest.param(
            {
                "events": [
                    distribution_event("pull"),
                    distribution_event("delete"),
                    distribution_event("mount"),
                ]
            },
            DISTRIBUTION_EVENTS,
            [],
            id="distribution-not-pushes",
        ),
        pytest.param(
            {"events": [distribution_event(host="Registry-1.Docker.IO", repository="python")]},
            DISTRIBUTION_EVENTS,
            [Push("docker.io", "library/python", "1.0", DIGEST)],
            id="distribution-docker-hub-mirror",
        ),
        pytest.param(
            {"events": [distribution_event(host="registry")]},
            "application/json",
            [Push("registry", "a/b", "1.0", DIGEST)],
            id="distribution-by-shape-and-a-dotless-host",
        ),
        pytest.param({"events": []}, DISTRIBUTION_EVENTS, [], id="distribution-empty"),
        pytest.param(
            HARBOR,
            "application/json",
            [Push("harbor.example.com", "library/app", "v1.2", DIGEST)],
            id="harbor",
        ),
        pytest.param(
            {
                **HARBOR,
                "event_data": {
                    **HARBOR["event_data"],
                    "resources": [
                        {
                            "digest": DIGEST,
                            "tag": DIGEST,
                            "resource_url": f"harbor.example.com/library/app@{DIGEST}",
                        }
                    ],
                },
            },
            "application/json",
            [Push("harbor.example.com", "library/app", None, DIGEST)],
            id="harbor-by-digest",
        ),
        pytest.param(
            {
                "specversion": "1.0",
                "id": "66e18103-09c1-41f6-982f-37df223f3eeb",
                "source": "/projects/2/webhook/policies/15",
                "type": "harbor.artifact.pushed",
                "datacontenttype": "application/json",
                "time": "2023-04-03T06:04:46Z",
                "data": HARBOR["event_data"],
                "operator": "admin",
            },
            "application/cloudevents+json",
            [Push("harbor.example.com", "library/app", "v1.2", DIGEST)],
            id="harbor-cloudevents",
        ),
        pytest.param(
            {"specversion": "1.0", "type": "harbor.artifact.pulled", "data": HARBOR["event_data"]},
            "application/cloudevents+json",
            [],
            id="harbor-cloudevents-pull",
        ),
        pytest.param({**HARBOR, "type": "PULL_ARTIFACT"}, "application/json", [], id="harbor-pull"),
        pytest.param({**HARBOR, "type": "SCANNING_COMPLETED"}, "", [], id="harbor-scan"),
        pytest.param(
            QUAY,
            "application/json",
            [Push("quay.io", "dgangaia/test", "latest", None), Push("quay.io", "dgangaia/test", "1.0", None)],
            id="quay",
        ),
        pytest.param(
            {**QUAY, "updated_tags": {"latest": "b750fe79269d2ec9a3c593ef05b43"}},
            "application/json",
            [Push("quay.io", "dgangaia/test", "latest", None)],
            id="quay-early-tags-map",
        ),
        pytest.param(
            DOCKER_HUB,
            "application/json",
            [Push("docker.io", "svendowideit/testhook", "latest", None)],
            id="docker-hub",
        ),
        pytest.param(
            {**DOCKER_HUB, "repository": {"repo_name": "python"}},
            "application/json; charset=utf-8",
            [Push("docker.io", "library/python", "latest", None)],
            id="docker-hub-official",
        ),
        pytest.param(
            github(),
            "application/json",
            [Push("ghcr.io", "octo-org/web-app", "1.4.0", DIGEST)],
            id="github-registry-package",
        ),
        pytest.param(
            github("package", package_type="container"),
            "application/json",
            [Push("ghcr.io", "octo-org/web-app", "1.4.0", DIGEST)],
            id="github-package",
        ),
        pytest.param(
            github(tag=""),
            "application/json",
            [Push("ghcr.io", "octo-org/web-app", None, DIGEST)],
            id="github-untagged",
        ),
        pytest.param(github(action="updated"), "application/json", [], id="github-updated"),
        pytest.param(github(package_type="npm"), "application/json", [], id="github-npm"),
        pytest.param(
            {"zen": "Keep it logically awesome.", "hook_id": 1}, "application/json", [], id="github-ping"
        ),
    ],
)
def test_each_registrys_push_event_is_read(document, content_type, pushes):
    assert read_pushes(body(document), content_type) == pushes


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="not-utf8"),
        pytest.param(b"[]", "not a JSON object", id="list"),
        pytest.param(b"null", "not a JSON object", id="null"),
        pytest.param(b'"events"', "not a JSON object", id="string"),
        pytest.param(b"[" * 10_000 + b"]" * 10_000, "nests deeper", id="deep"),
        pytest.param(b'{"a": 1}', "not a push event", id="unknown-shape"),
        pytest.param(b'{"events": {"0": {}}}', "events is not a list", id="events-object"),
        pytest.param(b'{"events": [1]}', r"events\[0\] is not an object", id="event-number"),
        pytest.param(
            b'{"events": [{"action": "push"}]}', r"events\[0\].target is not an object", id="no-target"
        ),
        pytest.param(
            body({"events": [distribution_event(repository="a/b\n")]}), "invalid repository", id="newline"
        ),
        pytest.param(
            body({"events": [distribution_event(repository="A/B")]}), "invalid repository", id="upper"
        ),
        pytest.param(
            body({"events": [distribution_event(repository="../x")]}), "invalid repository", id="dots"
        ),
        pytest.param(body({"events": [distribution_event(tag="1.0\x00")]}), "invalid tag", id="nul-tag"),
        pytest.param(body({"events": [distribution_event(tag="<script>")]}), "invalid tag", id="xss-tag"),
        pytest.param(
            body({"events": [distribution_event(digest="sha256:zz")]}), "invalid digest", id="digest"
        ),
        pytest.param(body({"events": [distribution_event(host="a b")]}), "invalid registry host", id="host"),
        pytest.param(
            body(
                {"events": [{**distribution_event(), "target": {**distribution_event()["target"], "tag": 7}}]}
            ),
            r"target.tag is not a string",
            id="tag-number",
        ),
        pytest.param(body({**HARBOR, "event_data": []}), "event_data is not an object", id="harbor-data"),
        pytest.param(
            body({"specversion": "1.0", "type": "harbor.artifact.pushed", "data": None}),
            "data is not an object",
            id="harbor-cloudevents-data",
        ),
        pytest.param(body({**QUAY, "updated_tags": "latest"}), "updated_tags is not a list", id="quay-tags"),
        pytest.param(body({**QUAY, "updated_tags": [["x"]]}), "invalid tag", id="quay-tag-list"),
        pytest.param(body({**DOCKER_HUB, "push_data": None}), "push_data is not an object", id="hub-data"),
        pytest.param(
            body(github() | {"registry_package": "x"}), "registry_package is not an object", id="gh"
        ),
        pytest.param(body({"events": [distribution_event()] * 1001}), "more than 1000 pushes", id="many"),
    ],
)
def test_a_body_that_is_no_push_event_is_refused_saying_why(raw, message):
    with pytest.raises(HookRefused, match=message) as refused:
        read_pushes(raw, "application/json")
    assert refused.value.status == 400


def test_a_body_over_the_cap_is_refused_as_too_large():
    with pytest.raises(HookRefused) as refused:
        read_pushes(b" " * (MAX_BODY + 1), "application/json")
    assert refused.value.status == 413


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_json_by_its_type_is_refused_as_unsupported(content_type):
    with pytest.raises(HookRefused, match="send JSON") as refused:
        read_pushes(body(QUAY), content_type)
    assert refused.value.status == 415


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
KEYS = [
    "events",
    "action",
    "target",
    "repository",
    "tag",
    "digest",
    "request",
    "host",
    "type",
    "event_data",
    "resources",
    "resource_url",
    "repo_full_name",
    "updated_tags",
    "docker_url",
    "push_data",
    "repo_name",
    "package",
    "registry_package",
    "package_type",
    "name",
    "namespace",
    "owner",
    "login",
    "package_version",
    "container_metadata",
    "zen",
    "hook_id",
    "specversion",
    "data",
]
# JSON whose keys are the ones the readers look for, so the fuzzing reaches past format detection.
SHAPED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.sampled_from(
        ["push", "published", "PUSH_ARTIFACT", "harbor.artifact.pushed", "container", DIGEST, "a/b", "1.0"]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6)
    ),
    max_leaves=40,
)


@given(st.one_of(JSON, SHAPED), st.sampled_from(["application/json", DISTRIBUTION_EVENTS, ""]))
@example({"events": [{"action": "push", "target": {"repository": "a/b", "tag": "1"}, "request": []}]}, "")
@example(
    {"type": "PUSH_ARTIFACT", "event_data": {"repository": {"repo_full_name": "a"}, "resources": [None]}}, ""
)
@example({"action": "published", "package": {"package_type": "container", "name": "x", "namespace": 5}}, "")
def test_any_json_is_read_into_valid_pushes_or_refused(document, content_type):
    try:
        pushes = read_pushes(json.dumps(document).encode(), content_type)
    except HookRefused as refused:
        assert refused.status == 400
        return
    for push in pushes:
        assert isinstance(push.repository, str) and push.repository
        assert push.tag is None or isinstance(push.tag, str)


@given(st.binary(max_size=200))
def test_any_bytes_are_read_or_refused(raw):
    with contextlib.suppress(HookRefused):
        read_pushes(raw, "")


@pytest.mark.parametrize(
    ("document", "readable"),
    [
        (
            {
                "events": [
                    {"action": "push", "target": {"repository": "A/B", "tag": "1"}},
                    distribution_event(),
                ]
            },
            1,
        ),
        ({"updated_tags": ["1.0", "bad tag", 7, "2.0"], "repository": "a/b", "docker_url": "quay.io/a/b"}, 2),
        (
            {
                "type": "PUSH_ARTIFACT",
                "event_data": {
                    "repository": {"repo_full_name": "library/app"},
                    "resources": [None, {"tag": "v1", "resource_url": "harbor.example.com/library/app:v1"}],
                },
            },
            1,
        ),
    ],
)
def test_each_event_of_a_body_is_read_alone_and_the_unreadable_ones_are_skipped_saying_why(
    document, readable
):
    result = read(body(document), "application/json")
    assert len(result.pushes) == readable
    assert result.skipped and all(isinstance(reason, str) and reason for reason in result.skipped)


def test_a_body_of_only_unreadable_events_is_refused_with_a_bounded_reason():
    bad = {"action": "push", "target": {"repository": "UPPER/case", "tag": "1"}}
    with pytest.raises(HookRefused) as refused:
        read(body({"events": [bad] * 500}), DISTRIBUTION_EVENTS)
    assert refused.value.status == 400 and str(refused.value).count("events[") == MAX_REASONS
