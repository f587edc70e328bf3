"""Registry push events read into pushes: distribution's notifications, Harbor, Quay, Docker Hub and
GitHub Packages. Pure: no database, no network.

A push only says which repository to poll sooner; history is written from the poll's own HEADs
(history.triggers), so nothing here is trusted beyond naming a repository: every name, tag and
digest is checked against the reference grammar and anything else is a HookRefused (a 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.oci.errors import BadResponse
from catalog.oci.manifest import json_object
from catalog.oci.reference import (
    DEFAULT_REGISTRY,
    InvalidReference,
    is_valid_host,
    is_valid_repository,
    is_valid_tag,
    parse_digest,
)
from catalog.text import quoted

# Distribution's envelope of events; the others send application/json.
DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
# A registry's event is a few KiB; distribution batches a handful per envelope.
MAX_BODY = 1024 * 1024
# Pushes one request may name: more is no registry's event, only work for this endpoint.
MAX_PUSHES = 1000
# Names Docker Hub answers to besides docker.io (what `request.host` or a URL may carry).
DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
GITHUB_REGISTRY = "ghcr.io"
HARBOR_PUSHES = {"PUSH_ARTIFACT", "pushImage"}  # Harbor 2.x, and 1.x's name for the same event
# Harbor's CloudEvents payload format (2.8+): its `data` is the Default format's `event_data`.
HARBOR_CLOUD_PUSH = "harbor.artifact.pushed"


class HookRefused(ValueError):
    """A body this endpoint will not read; the message says why (a 400, or 413/415 by `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Push:
    """One manifest pushed: to `repository` (normalised as references are: Docker Hub's official
    images under `library/`) of `host` when the event names it, under `tag` (None: by digest)."""

    host: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def moves_a_tag(self) -> bool:
        # A push by digest moves no tag: an index's children come first, then the index under its
        # tag, whose own event is the one that matters.
        return self.tag is not None


def read_pushes(body: bytes, content_type: str = "") -> list[Push]:
    """The pushes a webhook body announces (an empty list for other events: pulls, deletes,
    pings); HookRefused for anything that is not one of the formats this reads."""
    if len(body) > MAX_BODY:
        raise HookRefused(f"the body is larger than {MAX_BODY} bytes", status=413)
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise HookRefused(f"send JSON (application/json), not {quoted(media_type)}", status=415)
    try:
        document = json_object(body, "the body")
    except BadResponse as error:
        raise HookRefused(str(error)) from None
    reader = _reader_of(document, media_type)
    if reader is None:
        raise HookRefused("not a push event of distribution, Harbor, Quay, Docker Hub or GitHub Packages")
    pushes = reader(document)
    if len(pushes) > MAX_PUSHES:
        raise HookRefused(f"more than {MAX_PUSHES} pushes in one request")
    return pushes


def _reader_of(document: dict, media_type: str):
    """Which format `document` is, by its shape (and distribution's own media type)."""
    if media_type == DISTRIBUTION_EVENTS or "events" in document:
        return _distribution
    if "event_data" in document and "type" in document:
        return _harbor
    if "specversion" in document and str(document.get("type")).startswith("harbor."):
        return _harbor_cloud_event
    if "push_data" in document:
        return _docker_hub
    if "updated_tags" in document:
        return _quay
    if "registry_package" in document or "package" in document:
        return _github
    if "zen" in document and "hook_id" in document:
        return lambda _document: []  # GitHub's ping when a webhook is made: nothing to poll
    return None


def _distribution(document: dict) -> list[Push]:
    events = _typed(document, "events", list)
    pushes = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise HookRefused(f"{where} is not an object")
        if event.get("action") != "push":
            continue  # pulls, deletes, mounts: nothing moved
        target = _typed(event, "target", dict, where)
        request = event.get("request")
        host = request.get("host") if isinstance(request, dict) else None
        pushes.append(
            _push(
                host if host else None,
                _typed(target, "repository", str, f"{where}.target"),
                _optional(target, "tag", f"{where}.target"),
                _optional(target, "digest", f"{where}.target"),
                where,
            )
        )
    return pushes


def _harbor(document: dict) -> list[Push]:
    if document.get("type") not in HARBOR_PUSHES:
        return []  # pulls, deletes, scans, quotas
    data = _typed(document, "event_data", dict)
    repository = _typed(data, "repository", dict, "event_data")
    name = _typed(repository, "repo_full_name", str, "event_data.repository")
    pushes = []
    for index, resource in enumerate(_typed(data, "resources", list, "event_data")):
        where = f"event_data.resources[{index}]"
        if not isinstance(resource, dict):
            raise HookRefused(f"{where} is not an object")
        digest = _optional(resource, "digest", where)
        tag = _optional(resource, "tag", where)
        if tag is not None and (tag == digest or ":" in tag):
            tag = None  # Harbor names a push by digest with the digest where the tag would be
        url = _optional(resource, "resource_url", where)
        pushes.append(_push(_host_of_url(url), name, tag, digest, where))
    return pushes


def _harbor_cloud_event(document: dict) -> list[Push]:
    if document.get("type") != HARBOR_CLOUD_PUSH:
        return []
    return _harbor({"type": "PUSH_ARTIFACT", "event_data": _typed(document, "data", dict)})


def _quay(document: dict) -> list[Push]:
    name = _typed(document, "repository", str)
    url = _optional(document, "docker_url", "")
    tags = document.get("updated_tags")
    # A list of names now; early Quay sent {tag: image id}.
    if isinstance(tags, dict):
        tags = list(tags)
    if not isinstance(tags, list):
        raise HookRefused(f"updated_tags is not a list: {quoted(tags)}")
    host = _host_of_url(url)
    return [_push(host, name, tag, None, f"updated_tags[{index}]") for index, tag in enumerate(tags)]


def _docker_hub(document: dict) -> list[Push]:
    push_data = _typed(document, "push_data", dict)
    repository = _typed(document, "repository", dict)
    name = _typed(repository, "repo_name", str, "repository")
    return [_push(DEFAULT_REGISTRY, name, _optional(push_data, "tag", "push_data"), None, "push_data")]


def _github(document: dict) -> list[Push]:
    key = "registry_package" if "registry_package" in document else "package"
    if document.get("action") != "published":
        return []  # updated (a description), deleted: nothing pushed
    package = _typed(document, key, dict)
    # `package` says "container", `registry_package` says "CONTAINER"; npm, maven... are not images.
    kind = package.get("package_type")
    if not isinstance(kind, str) or kind.lower() != "container":
        return []
    name = _typed(package, "name", str, key)
    owner = package.get("namespace")
    if not isinstance(owner, str) or not owner:
        owner = _typed(_typed(package, "owner", dict, key), "login", str, f"{key}.owner")
    version = _typed(package, "package_version", dict, key)
    where = f"{key}.package_version"
    metadata = version.get("container_metadata")
    tag_info = metadata.get("tag") if isinstance(metadata, dict) else None
    tag_info = tag_info if isinstance(tag_info, dict) else {}
    tag = _optional(tag_info, "name", f"{where}.container_metadata.tag")
    digest = _optional(tag_info, "digest", f"{where}.container_metadata.tag")
    # GHCR lowercases owners and names in references; GitHub's payload keeps their display case.
    return [_push(GITHUB_REGISTRY, f"{owner}/{name}".lower(), tag, digest, where)]


def _push(host: object, name: str, tag: str | None, digest: str | None, where: str) -> Push:
    """A Push from an event's values, each checked by the reference grammar."""
    if host is not None:
        if not isinstance(host, str) or not is_valid_host(host):
            raise HookRefused(f"{where}: invalid registry host {quoted(host)}")
        host = host.lower()
        if host in DOCKER_HUB_HOSTS:
            host = DEFAULT_REGISTRY
    if host == DEFAULT_REGISTRY and isinstance(name, str) and "/" not in name:
        name = f"library/{name}"
    if not is_valid_repository(name):
        raise HookRefused(f"{where}: invalid repository name {quoted(name)}")
    if tag is not None and not is_valid_tag(tag):
        raise HookRefused(f"{where}: invalid tag {quoted(tag)}")
    if digest is not None:
        try:
            parse_digest(digest)
        except InvalidReference as error:
            raise HookRefused(f"{where}: {error}") from None
    return Push(host, name, tag, digest)


def _host_of_url(url: str | None) -> str | None:
    """The host of `harbor.example.com/library/app:1` or `https://quay.io/...`; None without one."""
    if not url:
        return None
    rest = url.partition("://")[2] if "://" in url else url
    host = rest.partition("/")[0]
    return host or None


def _typed(container: dict, key: str, kind: type, where: str = "") -> Any:
    value = container.get(key)
    path = f"{where}.{key}" if where else key
    if not isinstance(value, kind):
        wanted = {dict: "an object", list: "a list", str: "a string"}[kind]
        raise HookRefused(f"{path} is not {wanted}: {quoted(value)}")
    return value


def _optional(container: dict, key: str, where: str) -> str | None:
    """A string field that may be absent, null or empty (all None); another type is refused."""
    value = container.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        path = f"{where}.{key}" if where else key
        raise HookRefused(f"{path} is not a string: {quoted(value)}")
    return value
