"""Builders of watched repositories on the test registries, of rows written directly (builds,
versions, tag events), and readers of what polls recorded."""

from datetime import datetime
from hashlib import sha256
from itertools import count

from django.utils import timezone

from catalog.models import Line, Registry, Repository, Tag, Version
from catalog.oci.mediatypes import OCI_INDEX
from catalog.tags import classify, line_of
from history.models import Attachment, Build, PackageSet, Platform, PollRun, TagEvent, TagState
from history.packages import package_set as stored_set
from history.polling import poll
from history.sbom import Package as sbom_package

_builds = count(1)


def watch(registry, name: str, **options) -> Repository:
    """A watched repository on a RunningRegistry (or a FaultProxy: anything with `.host`)."""
    host, _ = Registry.objects.get_or_create(host=registry.host)
    return Repository.objects.create(registry=host, name=name, **options)


def polled(repository: Repository, client=None) -> PollRun:
    """A real poll of `repository` that must end ok, with no error."""
    run = poll(repository, client=client)
    assert (run.status, run.error) == (PollRun.Status.OK, "")
    return run


def build(
    repository: Repository, digest: str | None = None, version: Version | None = None, **fields
) -> Build:
    """A build row as a poll would store it: an index of 1 byte first seen now, under a digest no
    other factory build has unless `digest` is given; `fields` override the rest."""
    digest = digest or "sha256:" + sha256(f"factory build {next(_builds)}".encode()).hexdigest()
    fields = {"media_type": OCI_INDEX, "size": 1, "first_seen_at": timezone.now(), **fields}
    return Build.objects.create(repository=repository, digest=digest, version=version, **fields)


def version(
    repository: Repository, name: str, variant: str = "", line: str | None = None, depth: int = 2
) -> Version:
    """The version `name` (of `variant`), made with its line if new: the line is the first `depth`
    parts of the name (the name itself when it is no version) unless `line` names it."""
    line_name = line or line_of(name, depth) or name
    the_line, _ = Line.objects.get_or_create(repository=repository, variant=variant, name=line_name)
    made, _ = Version.objects.get_or_create(
        repository=repository, name=name, variant=variant, defaults={"line": the_line}
    )
    return made


def tag_event(
    tag: Tag, build: Build | None, kind: str = TagEvent.Kind.CREATED, *, at: datetime | None = None, **fields
) -> TagEvent:
    """One event row written directly, detected now unless `at`, bypassing the one writer
    (`TagState.objects.observe`): for tests of what readers make of rows, or of the constraints."""
    return TagEvent.objects.create(
        tag=tag, kind=kind, build=build, detected_at=at or timezone.now(), **fields
    )


def platform(build: Build, name: str = "linux/amd64", **fields) -> Platform:
    """A platform image `name` (os/arch[/variant]) of `build`, under a digest of its own."""
    os_name, architecture, variant = (*name.split("/"), "", "")[:3]
    digest = "sha256:" + sha256(f"factory platform {next(_builds)}".encode()).hexdigest()
    fields = {"digest": digest, "media_type": "application/vnd.oci.image.manifest.v1+json", **fields}
    return Platform.objects.create(
        build=build, os=os_name, architecture=architecture, variant=variant, **fields
    )


def attachment(
    build: Build,
    kind: str = Attachment.Kind.SIGNATURE,
    *,
    platform: Platform | None = None,
    source: str = Attachment.Source.COSIGN_TAG,
    details: dict | None = None,
    **fields,
) -> Attachment:
    """An attachment row as the poll stores one (history.attachments), written directly: a cosign
    `.sig` signature of `build` unless told otherwise; its subject is the platform's digest or the
    build's, its manifest a digest no other factory attachment has unless given."""
    manifest = "sha256:" + sha256(f"factory attachment {next(_builds)}".encode()).hexdigest()
    fields = {
        "subject": platform.digest if platform else build.digest,
        "manifest_digest": manifest,
        "found_at": timezone.now(),
        **fields,
    }
    return Attachment.objects.create(
        build=build, platform=platform, source=source, kind=kind, details=details or {}, **fields
    )


def signature(
    build: Build, identity: str = "dev@example.com", *, verified: bool = True, **fields
) -> Attachment:
    """A keyless cosign signature of `build` by `identity`, as history.signatures reads one."""
    details = {
        "identity": identity,
        "issuer": "https://accounts.example.com",
        "verified": verified,
        "detail": "the signature verifies over its payload with the certificate's key; the payload names "
        "this digest; no trust root was checked (offline)"
        if verified
        else "the signature does not verify over its payload with the certificate's key",
        "signature_valid": verified,
        "names_subject": True,
        "rekor_bundle": False,
        "key": "ECDSA P-256",
        **fields.pop("details", {}),
    }
    return attachment(build, Attachment.Kind.SIGNATURE, details=details, **fields)


def package_set(*packages: tuple[str, str] | tuple[str, str, str]) -> PackageSet:
    """The set of `packages`, each (name, version[, type]): apk unless a type is given, stored as
    the poll stores an SBOM's (history.packages.package_set)."""
    return stored_set(
        sbom_package(name, version, kind, f"pkg:{kind}/{name}@{version}")
        for name, version, kind in ((*spec, "apk")[:3] for spec in packages)
    )


def sbom(build: Build, *packages, platform: Platform | None = None, **fields) -> Attachment:
    """An SPDX SBOM of `build` (or of its `platform`) naming `packages` (see package_set)."""
    found = package_set(*packages)
    details = {"format": "SPDX 2.3", "tool": "syft-1.4.1", "package_count": found.size}
    fields = {"source": Attachment.Source.BUILDKIT, "predicate_type": "https://spdx.dev/Document", **fields}
    return attachment(
        build, Attachment.Kind.SBOM, platform=platform, details=details, packages=found,
        package_count=found.size, **fields,
    )  # fmt: skip


def during(run: PollRun, at) -> bool:
    """Whether `at` falls within the poll: each tag is recorded at the time of its own request."""
    return run.started_at <= at <= run.finished_at


def short(digest: str | None) -> str | None:
    return digest.split(":", 1)[1][:12] if digest else None


def events_of(run: PollRun) -> list[tuple[str, str, str | None, str | None]]:
    """What one poll recorded: [(tag, kind, digest, previous digest)], by tag name."""
    return sorted(
        (event.tag.name, event.kind, short(event.build and event.build.digest),
         short(event.previous_build and event.previous_build.digest))
        for event in run.events.select_related("tag", "build", "previous_build")
    )  # fmt: skip


class Image:
    """A repository's rows as polls record them, written directly: builds of versions, and tags
    pointing at them (events and states through `TagState.objects.observe`, the one writer).

    Kinds, versions and variants come from the tag grammar unless a test gives them: tests of
    what pages show should not depend on how the grammar reads one name.
    """

    def __init__(self, name: str, *, host: str = "registry.example", depth: int = 2):
        registry, _ = Registry.objects.get_or_create(host=host)
        self.repository = Repository.objects.create(registry=registry, name=name)
        self.depth = depth
        self.builds = 0

    def version(self, name: str, variant: str = "", line: str | None = None) -> Version:
        return version(self.repository, name, variant, line, self.depth)

    def build(self, version: Version | None = None, *, at: datetime | None = None, built_at=None) -> Build:
        self.builds += 1
        digest = "sha256:" + sha256(f"{self.repository.pk}/{self.builds}".encode()).hexdigest()
        return build(self.repository, digest, version, first_seen_at=at or timezone.now(), built_at=built_at)

    def tag(self, name: str, build: Build, *, at: datetime | None = None, **stored) -> Tag:
        """Point `name` at `build`; `stored` overrides kind, version or variant."""
        info = classify(name)
        fields = {"kind": info.kind.value, "version": info.version, "variant": info.variant, **stored}
        tag, _ = Tag.objects.get_or_create(repository=self.repository, name=name, defaults=fields)
        TagState.objects.observe(tag, build, at=at or build.first_seen_at, poll=None, immutable=False)
        return tag

    def release(self, version: str, variant: str = "", *tags: str, at: datetime | None = None) -> Build:
        """A new build of `version` of `variant`, with `tags` (its exact tag first, if any) on it."""
        build = self.build(self.version(version, variant), at=at)
        for name in tags:
            self.tag(name, build)
        return build
