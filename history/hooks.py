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
# Reasons of skipped events kept in an answer: enough to see what is wrong, however many there were.
MAX_REASONS = 10
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


@dataclass(frozen=True)
class Read:
    """What a body announces: its pushes, and why each event that could not be read was skipped."""

    pushes: list[Push]
    skipped: list[str]


def read_pushes(body: bytes, content_type: str = "") -> list[Push]:
    return read(body, content_type).pushes


def read(body: bytes, content_type: str = "") -> Read:
    """The pushes a webhook body announces (none for other events: pulls, deletes, pings);
    HookRefused for a body that is not one of the formats this reads.

    One unreadable event of several is skipped, not the body: the others still trigger their polls,
    and a registry that resends a refused body until it is taken (distribution does, holding back
    every later event) is not stalled by one. A body with nothing readable is refused."""
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
    skipped: list[str] = []
    pushes = reader(document, skipped)
    if len(pushes) > MAX_PUSHES:
        raise HookRefused(f"more than {MAX_PUSHES} pushes in one request")
    if skipped and not pushes:
        raise HookRefused("; ".join(skipped[:MAX_REASONS]))
    return Read(pushes, skipped[:MAX_REASONS])


def _each(items: list, where: str, skipped: list[str], read_one) -> list[Push]:
    """read_one(item, its path) for each item that reads; the reason of each that does not, in `skipped`."""
    pushes = []
    for index, item in enumerate(items):
        try:
            pushes.extend(read_one(item, f"{where}[{index}]"))
        except HookRefused as refused:
            skipped.append(str(refused))
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
        return lambda _document, _skipped: []  # GitHub's ping when a webhook is made: nothing to poll
    return None


def _distribution(document: dict, skipped: list[str]) -> list[Push]:
    return _each(_typed(document, "events", list), "events", skipped, _distribution_event)


def _distribution_event(event, where: str) -> list[Push]:
    if not isinstance(event, dict):
        raise HookRefused(f"{where} is not an object")
    if event.get("action") != "push":
        return []  # pulls, deletes, mounts: nothing moved
    target = _typed(event, "target", dict, where)
    request = event.get("request")
    host = request.get("host") if isinstance(request, dict) else None
    return [
        _push(
            host if host else None,
            _typed(target, "repository", str, f"{where}.target"),
            _optional(target, "tag", f"{where}.target"),
            _optional(target, "digest", f"{where}.target"),
            where,
        )
    ]


def _harbor(document: dict, skipped: list[str]) -> list[Push]:
    if document.get("type") not in HARBOR_PUSHES:
        return []  # pulls, deletes, scans, quotas
    data = _typed(document, "event_data", dict)
    repository = _typed(data, "repository", dict, "event_data")
    name = _typed(repository, "repo_full_name", str, "event_data.repository")

    def resource_of(resource, where: str) -> list[Push]:
        if not isinstance(resource, dict):
            raise HookRefused(f"{where} is not an object")
        digest = _optional(resource, "digest", where)
        tag = _optional(resource, "tag", where)
        if tag is not None and (tag == digest or ":" in tag):
            tag = None  # Harbor names a push by digest with the digest where the tag would be
        url = _optional(resource, "resource_url", where)
        return [_push(_host_of_url(url), name, tag, digest, where)]

    return _each(_typed(data, "resources", list, "event_data"), "event_data.resources", skipped, resource_of)


def _harbor_cloud_event(document: dict, skipped: list[str]) -> list[Push]:
    if document.get("type") != HARBOR_CLOUD_PUSH:
        return []
    return _harbor({"type": "PUSH_ARTIFACT", "event_data": _typed(document, "data", dict)}, skipped)


def _quay(document: dict, skipped: list[str]) -> list[Push]:
    name = _typed(document, "repository", str)
    url = _optional(document, "docker_url", "")
    tags = document.get("updated_tags")
    # A list of names now; early Quay sent {tag: image id}.
    if isinstance(tags, dict):
        tags = list(tags)
    if not isinstance(tags, list):
        raise HookRefused(f"updated_tags is not a list: {quoted(tags)}")
    host = _host_of_url(url)
    return _each(tags, "updated_tags", skipped, lambda tag, where: [_push(host, name, tag, None, where)])


def _docker_hub(document: dict, _skipped: list[str]) -> list[Push]:
    push_data = _typed(document, "push_data", dict)
    repository = _typed(document, "repository", dict)
    name = _typed(repository, "repo_name", str, "repository")
    return [_push(DEFAULT_REGISTRY, name, _optional(push_data, "tag", "push_data"), None, "push_data")]


def _github(document: dict, _skipped: list[str]) -> list[Push]:
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
