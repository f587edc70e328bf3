"""What was observed: builds, their platforms, tag history and poll runs."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest, Lower
from django.utils import timezone

from catalog.models import Repository, Tag, Version
from catalog.oci import mediatypes
from catalog.oci.manifest import MAX_SIZE, ImageConfig, Manifest, parse_time
from catalog.patterns import PatternError
from catalog.tags import FLOATING_KINDS, classify
from catalog.tags import Kind as TagKind

from .keyset import RowAfter
from .supply import layer_rows, predicate_name, predicate_types


class BuildQuerySet(models.QuerySet):
    def matching(self, matcher, *where) -> "BuildQuerySet":
        """Builds with a digest `matcher` (history.digests: a digest, prefix or infix) matches, in
        the `where` columns (digests.BUILD, PLATFORM, CONFIG, ATTESTATION; all when none given)."""
        return self.filter(matcher.builds_in(*where))

    def last_seen(self) -> dict[int, datetime]:
        """{build id: the last poll that saw a tag pointing at it}, for these builds in one query.

        While a tag points at a build, that is the tag's latest confirmation; once none does, it is
        the `not_before` of the change that took the last one away. A restore's `previous_build` is
        where a deleted tag pointed, not something a poll saw, so restores do not count.
        """
        confirmed = (
            TagState.objects.filter(build=models.OuterRef("pk"), present=True)
            .order_by()
            .values("build")
            .annotate(last=models.Max("confirmed_at"))
            .values("last")
        )
        left = (
            TagEvent.objects.filter(previous_build=models.OuterRef("pk"))
            .exclude(kind=TagEvent.Kind.RESTORED)
            .order_by()
            .values("previous_build")
            .annotate(last=models.Max("not_before"))
            .values("last")
        )
        seen = self.annotate(
            last_seen=Greatest(
                Coalesce(models.Subquery(confirmed), "first_seen_at"),
                Coalesce(models.Subquery(left), "first_seen_at"),
            )
        )
        return dict(seen.values_list("pk", "last_seen"))

    def pointed_to_by(self, reference) -> "BuildQuerySet":
        """The build `reference`'s tag (`registry/name:tag`, a catalog.oci ImageReference) points
        to now, as the last poll saw it: at most one. What `docker pull` of the tag would fetch."""
        return self.filter(
            pk__in=TagState.objects.filter(
                tag__repository__registry__host=reference.registry,
                tag__repository__name=reference.repository,
                tag__name=reference.tag,
                present=True,
            ).values("build")
        )

    def tagged(self, tag: str, repositories) -> "BuildQuerySet":
        """The builds the tag named `tag` points to now in each of `repositories` (ids or rows):
        one per repository at most, each found by the exact name (the unique (repository, name)
        index), never by scanning a repository's tags."""
        ids = [getattr(repository, "pk", repository) for repository in repositories]
        states = TagState.objects.filter(tag__repository__in=ids, tag__name=tag, present=True)
        return self.filter(pk__in=states.values("build"))


class Build(models.Model):
    """A top-level manifest digest ever seen in a repository: one build of an image."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="builds")
    digest = models.CharField(max_length=135)
    media_type = models.CharField(max_length=128)
    size = models.BigIntegerField(help_text="Size of the manifest itself.")
    legacy = models.BooleanField(default=False, help_text="Docker schema1: only the registry's digest.")
    version = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    annotations = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(null=True, blank=True, help_text="From the image config, if it says.")
    built_at = models.DateTimeField(null=True, blank=True, help_text="Parsed from its timestamp tag.")
    first_seen_at = models.DateTimeField()

    objects = BuildQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "digest"], name="unique_build")]
        indexes = [
            # lookup by digest or digest prefix, across repositories.
            models.Index(fields=["digest"], name="build_digest"),
            # the newest builds first, across repositories (package search reads their SBOMs first).
            # Made CONCURRENTLY on PostgreSQL (migration 0015).
            models.Index(fields=["first_seen_at", "id"], name="build_newest"),
        ]

    def __str__(self) -> str:
        return self.digest

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES


class Platform(models.Model):
    """One platform image of a build (the build itself for a single-platform image)."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="platforms")
    os = models.CharField(max_length=64, blank=True)
    architecture = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=135)
    media_type = models.CharField(max_length=128)
    config_digest = models.CharField(max_length=135, blank=True, help_text="The image ID docker shows.")
    size = models.BigIntegerField(default=0, help_text="Config plus compressed layers.")
    layers = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="env, labels, entrypoint, cmd, ...")
    created = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "digest"], name="unique_platform")]
        indexes = [
            # lookup by a platform digest or by an image ID (docker images).
            models.Index(fields=["digest"], name="platform_digest"),
            models.Index(fields=["config_digest"], name="platform_config_digest"),
        ]

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part) or "unknown"

    @classmethod
    def from_manifest(
        cls, build: Build, name: str, image: Manifest, config: ImageConfig | None
    ) -> "Platform":
        """The (unsaved) platform image `image` of `build`: `name` is the os/arch[/variant] its
        index gives it, or "" for a single-platform build, whose config says it instead."""
        os_name, _, rest = name.partition("/")
        architecture, _, variant = rest.partition("/")
        if config and not name:
            os_name, architecture, variant = config.os, config.architecture, config.variant
        layers = [
            {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type}
            for layer in image.layers
        ]
        size = (image.config.size if image.config else 0) + sum(layer.size for layer in image.layers)
        return cls(
            build=build, os=os_name[:64], architecture=architecture[:64], variant=variant[:64],
            digest=image.digest, media_type=image.media_type[:128],
            config_digest=image.config.digest if image.config else "",
            size=min(size, MAX_SIZE),
            layers=layers, config=cls.summary(config) if config else {},
            created=parse_time(config.created) if config else None,
        )  # fmt: skip

    @staticmethod
    def summary(config: ImageConfig) -> dict:
        """What is kept of an image config: what compare and the build page show of it."""
        return {
            "env": list(config.env), "labels": config.labels, "entrypoint": list(config.entrypoint),
            "cmd": list(config.cmd), "user": config.user, "workdir": config.workdir,
            "exposed_ports": list(config.exposed_ports), "created": config.created,
            "history": [
                {"created": entry.created, "created_by": entry.created_by, "comment": entry.comment,
                 "empty_layer": entry.empty_layer}
                for entry in config.history
            ],
        }  # fmt: skip


class AttestationQuerySet(models.QuerySet):
    def of_builds(self, builds) -> dict[int, list["Attestation"]]:
        """{build id: its attestations, by digest} for many builds, in one query."""
        found: dict[int, list[Attestation]] = {build.pk: [] for build in builds}
        for attestation in self.filter(build__in=list(found)).order_by("build_id", "digest"):
            found[attestation.build_id].append(attestation)
        return found


class Attestation(models.Model):
    """A BuildKit attestation manifest of a build: in-toto statements (SBOM, provenance) about one
    of its platform images. An index lists it like a platform (`unknown/unknown`); it is none."""

    # No index of its own: the unique (build, digest) constraint's index serves "a build's attestations".
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="attestations", db_index=False)
    digest = models.CharField(max_length=135)
    media_type = models.CharField(max_length=128)
    size = models.BigIntegerField(
        null=True, blank=True,
        help_text="Size of the attestation manifest itself; unknown for rows converted from platforms.",
    )  # fmt: skip
    subject = models.CharField(
        max_length=135, blank=True,
        help_text="Digest of the platform image it describes (vnd.docker.reference.digest); empty: unknown.",
    )  # fmt: skip
    # Indexed (Django's default for a foreign key): deleting a build's platforms sets this to null.
    platform = models.ForeignKey(
        Platform, null=True, blank=True, on_delete=models.SET_NULL, related_name="attestations",
        help_text="The subject, when the build has it as a platform.",
    )  # fmt: skip
    predicate_types = models.JSONField(
        default=list, blank=True, help_text="Of its statements, in layer order (in-toto.io/predicate-type)."
    )
    layers = models.JSONField(
        default=list, blank=True, help_text="The statements: digest, size, media_type, predicate_type."
    )

    objects = AttestationQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "digest"], name="unique_attestation")]
        # Lookup by an attestation digest or its prefix is served by `attestation_digest_like`,
        # created per database in migration 0005 as the other digest indexes are in 0003.

    def __str__(self) -> str:
        return self.digest

    @property
    def predicates(self) -> list[tuple[str, str]]:
        """(what a person calls it, the predicate type) of each of its statements' types."""
        return [(predicate_name(value), value) for value in self.predicate_types]

    @classmethod
    def from_manifest(
        cls, build: Build, subject: str, manifest: Manifest, platform: Platform | None
    ) -> "Attestation":
        """The (unsaved) attestation manifest `manifest` of `build`, about the image `subject`
        (`platform`, when the build has that image as a platform)."""
        layers = layer_rows(manifest.layers)
        return cls(
            build=build, digest=manifest.digest, media_type=manifest.media_type[:128], size=manifest.size,
            subject=subject, platform=platform, predicate_types=predicate_types(layers), layers=layers,
        )  # fmt: skip


class Package(models.Model):
    """One package version an SBOM names, stored once however many builds contain it."""

    type = models.CharField(max_length=64, blank=True, help_text="The purl type: deb, apk, rpm, npm, pypi, …")
    name = models.CharField(max_length=512)
    version = models.CharField(max_length=256, blank=True)
    purl = models.CharField(max_length=2048, blank=True, help_text="Normalised by packageurl-python.")
    # sha256 of (type, name, version, purl): the deduplication key, short enough for a btree entry
    # whatever the lengths of the four (a purl may be 2 KB; PostgreSQL's btree entries stop at 2.7 KB).
    key = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            # package search: "which builds contain openssl" (any version) and "openssl@3.0.13".
            models.Index(Lower("name"), "version", name="package_name_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


class PackageSet(models.Model):
    """The packages of one platform image's SBOM as one row: a rebuild that changes no package
    shares its predecessor's set, and a set is a list of Package ids rather than a row per build
    and package (300 packages: about 1.5 KB, where rows would take 300 index entries and tuples).

    "Sets that hold package 7 or 9" is `package_set_ids(packages) && '{7,9}'`, served on PostgreSQL
    by the exact GIN index `package_set_members` of migration 0013 over the ids as an array."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of the sorted package ids.")
    packages = models.JSONField(default=list, help_text="Package ids, ascending.")
    size = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.size} packages"


class Attachment(models.Model):
    """A signature, attestation or SBOM about a build or one of its platform images, wherever the
    registry keeps it, with what tagledger read from it. One row per document read: an attestation
    manifest of BuildKit holds two statements (SBOM and provenance), so two rows."""

    class Source(models.TextChoices):
        BUILDKIT = "buildkit"  # an attestation manifest inside the build's own index
        REFERRERS = "referrers"  # the OCI 1.1 referrers API
        TAG_SCHEMA = "tag-schema"  # the referrers index a registry without the API keeps as `sha256-<hex>`
        COSIGN_TAG = "cosign-tag"  # cosign's `sha256-<hex>.sig|.att|.sbom`

    class Kind(models.TextChoices):
        SIGNATURE = "signature"
        SBOM = "sbom"
        PROVENANCE = "provenance"
        VULNERABILITIES = "vulnerabilities"
        ATTESTATION = "attestation"  # a statement of another predicate type (VEX, tests, …)

    # No index of its own: the unique constraint's index leads with the build.
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="attachments", db_index=False)
    platform = models.ForeignKey(
        Platform, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments",
        help_text="The platform image it describes, when it names one of the build's.",
    )  # fmt: skip
    subject = models.CharField(max_length=135, help_text="The digest it names: the build's or a platform's.")
    source = models.CharField(max_length=16, choices=Source.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    manifest_digest = models.CharField(max_length=135, help_text="The artifact or attestation manifest.")
    blob_digest = models.CharField(max_length=135, blank=True, help_text="The layer read; empty: none.")
    # cosign signs one payload once per signer: a `.sig` manifest lists the same blob once per
    # signature, each with its own annotations, so a layer is its blob and its place.
    position = models.PositiveSmallIntegerField(default=0, help_text="The layer's place in its manifest.")
    media_type = models.CharField(max_length=255, blank=True, help_text="Of the layer (or the artifactType).")
    predicate_type = models.CharField(max_length=256, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="What was read, by kind (bounded).")
    packages = models.ForeignKey(
        PackageSet, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    package_count = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it could not be read: this attachment alone.")
    found_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["build", "manifest_digest", "blob_digest", "position", "subject"],
                name="unique_attachment",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.manifest_digest}"


class ReferrersCheck(models.Model):
    """When the referrers API was last asked about a build. Signatures and attestations come after
    the push, so the builds tags point to now are asked again on a bounded schedule."""

    build = models.OneToOneField(
        Build, primary_key=True, on_delete=models.CASCADE, related_name="referrers_check"
    )
    checked_at = models.DateTimeField()
    referrers = models.PositiveIntegerField(default=0, help_text="How many the last answer listed.")

    class Meta:
        indexes = [
            # the next builds to ask again: the longest unasked first.
            models.Index(fields=["checked_at"], name="referrers_check_due"),
        ]

    def __str__(self) -> str:
        return f"{self.build_id} checked {self.checked_at:%Y-%m-%d %H:%M}"


class PollRunQuerySet(models.QuerySet):
    def sweep_stale(self, *, now: datetime, lease: timedelta, deadline: timedelta) -> int:
        """Polls still `running` that died with their worker (a crash, a kill, a database outage
        while finishing) end `failed`, so no page calls them running forever.

        A live poll renews its repository's lease while it runs and stops at its deadline: one
        older than a lease whose repository holds none has died, and so has one long past its
        deadline whatever the lease says."""
        unleased = Q(repository__lease_until__isnull=True) | Q(repository__lease_until__lt=now)
        dead = Q(started_at__lt=now - deadline) | (Q(started_at__lt=now - lease) & unleased)
        return self.filter(Q(status=PollRun.Status.RUNNING) & dead).update(
            status=PollRun.Status.FAILED,
            finished_at=timezone.now(),
            error="interrupted: the poll stopped without finishing (worker crash or database outage)",
        )


class PollRun(models.Model):
    """One poll of one repository: what it cost and how it ended."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial"  # some tags could not be checked; nothing was recorded for them
        FAILED = "failed"  # nothing could be checked; nothing was recorded

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="polls")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    tags_seen = models.PositiveIntegerField(default=0)
    heads = models.PositiveIntegerField(default=0)
    gets = models.PositiveIntegerField(default=0, help_text="Manifest GETs.")
    blob_gets = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0, help_text="All HTTP requests, retries included.")
    changes = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    rate_limit_remaining = models.IntegerField(null=True, blank=True)

    objects = PollRunQuerySet.as_manager()

    class Meta:
        indexes = [
            # a repository's latest polls (health on the home page).
            models.Index(fields=["repository", "-started_at"], name="poll_latest"),
            # sweep_stale(): the few running polls, found without reading every poll ever run.
            # Made CONCURRENTLY on PostgreSQL (migration 0008).
            models.Index(fields=["started_at"], name="poll_running", condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None


class TagEventQuerySet(models.QuerySet):
    def newest_first(self):
        """Newest first, with the tag, its repository and registry in the same query. A page of
        them goes through `with_builds` for what else a changelog row shows."""
        return self.select_related("tag__repository__registry").order_by("-detected_at", "-id")

    def held(self, builds: Iterable["Build"]) -> dict[int, list["HeldTag"]]:
        """The tags each build held and when, oldest first, in one query: {build id: [HeldTag, ...]}."""
        ids = [build.pk for build in builds]
        # The tag's next event: one seek in `event_tag_timeline` (tag, detected_at, id). Written as
        # `a > x OR (a = x AND b > y)`, the database read the tag's later timeline (up to 5 000
        # events of a busy `latest`) once per event shown.
        later = self.filter(tag=OuterRef("tag")).filter(RowAfter((OuterRef("detected_at"), OuterRef("pk"))))
        rows = (
            self.filter(build__in=ids)
            .annotate(until=Subquery(later.order_by("detected_at", "pk").values("detected_at")[:1]))
            .order_by("detected_at", "tag__name", "pk")
            .values_list("build_id", "tag__name", "detected_at", "until", "not_before")
        )
        held: dict[int, list[HeldTag]] = {build_id: [] for build_id in ids}
        for build_id, tag, since, until, not_before in rows:
            held[build_id].append(HeldTag(tag, since, until, not_before))
        return held


class HeldTag(NamedTuple):
    """A tag held a build from the event that pointed it there until that tag's next event."""

    tag: str
    since: datetime
    until: datetime | None  # None: it still does
    # The last poll that saw the tag elsewhere: the move happened after it. None: the event is
    # the tag's first sighting, so it pointed here for an unknown time before `since`.
    not_before: datetime | None = None


def with_builds(events: list["TagEvent"]) -> list["TagEvent"]:
    """`events` with the builds on both sides, and their versions, filled in by one query.

    Joined into the events query instead, they made an 8-table join that PostgreSQL took 5 ms
    to plan and 1 ms to run; the two queries plan in under a millisecond together.
    """
    ids = {pk for event in events for pk in (event.build_id, event.previous_build_id) if pk}
    builds = Build.objects.select_related("version").in_bulk(ids)
    for event in events:
        event.build = builds.get(event.build_id)
        event.previous_build = builds.get(event.previous_build_id)
    return events


class TagEvent(models.Model):
    """Append-only: one change of where a tag points. Rows grow with changes, never with polls."""

    class Kind(models.TextChoices):
        CREATED = "created"
        MOVED = "moved"
        DELETED = "deleted"
        RESTORED = "restored"
        IMMUTABLE_MOVED = "immutable_moved"  # a tag that must never move did: a security event
        # The repository's include/exclude patterns no longer match it: not checked any more.
        UNTRACKED = "untracked"

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    build = models.ForeignKey(
        Build, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
        help_text="Where the tag points from now on; empty when deleted or untracked.",
    )  # fmt: skip
    previous_build = models.ForeignKey(
        Build, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    detected_at = models.DateTimeField(help_text="When the poll's request saw the change.")
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="The last poll that saw the previous state: it changed after this."
    )
    poll = models.ForeignKey(PollRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    # A repository's first poll is its import: a first sighting of every tag it has, thousands at
    # once, which would bury every real change. The changelog shows an import as one row: the row
    # that carries `imported_tags`, so its collapsed form is a plain filter (changelog.collapsed).
    # The database keeps the default too, so a worker still running the previous code can insert.
    imported = models.BooleanField(
        default=False, db_default=False,
        help_text="A first sighting written by the repository's import (its first poll with tags).",
    )  # fmt: skip
    imported_tags = models.IntegerField(
        null=True, blank=True,
        help_text="On the event standing for an import in the changelog: how many tags it imported.",
    )  # fmt: skip

    objects = TagEventQuerySet.as_manager()

    class Meta:
        constraints = [
            # a poll observes each tag once, so one poll can never record two changes of one tag.
            models.UniqueConstraint(fields=["tag", "poll"], name="one_event_per_tag_per_poll"),
        ]
        indexes = [
            # the changelog, newest first (keyset pagination on detected_at, id).
            models.Index(fields=["-detected_at", "-id"], name="event_changelog"),
            # one tag's timeline, and the event after a given one (TagEventQuerySet.held: one index seek).
            models.Index(fields=["tag", "detected_at", "id"], name="event_tag_timeline"),
            # the tags a build held.
            models.Index(fields=["build", "detected_at"], name="event_build"),
            # the changelog's "immutable tag moved" filter: rare rows, found without walking every event.
            models.Index(
                fields=["-detected_at", "-id"],
                name="event_immutable_moved",
                condition=Q(kind="immutable_moved"),
            ),
            # the changelog with each import as one row (home, feed, changelog): an index walk that
            # never reads an import's other rows. Made CONCURRENTLY on PostgreSQL (migration 0011).
            models.Index(
                fields=["-detected_at", "-id"],
                name="event_collapsed",
                condition=Q(imported=False) | Q(imported_tags__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag} {self.kind} {self.detected_at:%Y-%m-%d %H:%M}"


class TagStateQuerySet(models.QuerySet):
    def present_in(self, repository) -> "TagStateQuerySet":
        """The tags of `repository` present now, artifact tags (signatures, attestations, SBOMs:
        they belong on the build they describe) left out: what its page and the API list, and
        what `with_poll_health` counts as its `tag_count` (tests/history/test_home.py holds the two
        to one rule)."""
        return self.filter(present=True, tag__repository=repository).exclude(tag__kind=TagKind.ARTIFACT)

    def observe(
        self,
        tag: Tag,
        build: Build | None,
        *,
        at: datetime,
        poll: PollRun | None,
        immutable: bool,
        asked_at: datetime | None = None,
    ):
        """Record what a poll saw of one tag (`build` None: verified gone), in one transaction.

        `asked_at` is when the request went out and `at` when its answer arrived (the same when
        not given): the registry answered with the state of some moment between the two. So a
        change is recorded as detected `at` (it had happened by then), and the state as confirmed
        at `asked_at` (it held at that moment or later: the next change's `not_before`).

        The one writer of TagEvents. Returns the event written, or None when nothing changed, or
        when the request went out before the one that confirmed the current state: two
        overlapping polls may deliver their answers out of order (a slow answer arrives after a
        newer one was recorded), and the older answer must never undo the newer one.
        """
        asked_at = asked_at or at
        with transaction.atomic():
            state = self.select_for_update().filter(tag=tag).first()
            if state is not None and state.confirmed_at > asked_at:
                return None
            kind = _transition(state, build, immutable)
            if kind is None:
                self.confirm([tag.pk], at=asked_at)
                return None
            event = TagEvent.objects.create(
                tag=tag, kind=kind, build=build, previous_build=state.build if state else None,
                detected_at=at, not_before=state.confirmed_at if state else None, poll=poll,
            )  # fmt: skip
            self.update_or_create(
                tag=tag,
                defaults={
                    "build": build or state.build,
                    "present": build is not None,
                    "since": at,
                    "confirmed_at": asked_at,
                },
            )
            return event

    def record_first_sightings(
        self,
        sightings: list[tuple[Tag, Build, datetime, datetime]],
        *,
        poll: PollRun | None,
        imported: bool = False,
    ) -> int:
        """`created` for many tags never seen before, as (tag, build, asked at, answered at), in one
        transaction and a few queries.

        `imported`: these are the repository's import (it had no tag history before this poll).
        Each event says so, and the newest one carries the count, to stand for the import in the
        changelog: the newest of a real tag, since artifact tags leave the changelog by default.

        A first poll of a large repository would otherwise cost several queries per tag. If any
        tag has gained a state meanwhile, fall back to `observe`, which decides per tag (and
        writes ordinary events: another poll imported the repository first).
        """
        events = [
            TagEvent(
                tag=tag, kind=TagEvent.Kind.CREATED, build=build, detected_at=at, poll=poll, imported=imported
            )
            for tag, build, _, at in sightings
        ]
        if imported and events:
            shown = [event for event in events if event.tag.kind != TagKind.ARTIFACT] or events
            max(reversed(shown), key=lambda event: event.detected_at).imported_tags = len(events)
        try:
            with transaction.atomic():
                self.bulk_create(
                    TagState(tag=tag, build=build, present=True, since=at, confirmed_at=asked_at)
                    for tag, build, asked_at, at in sightings
                )
                TagEvent.objects.bulk_create(events)
            return len(sightings)
        except IntegrityError:  # another poll saw some of them first: decide per tag
            return sum(
                self.observe(tag, build, at=at, asked_at=asked_at, poll=poll, immutable=_immutable(tag))
                is not None
                for tag, build, asked_at, at in sightings
            )

    def untrack(self, tags: list[Tag], *, at: datetime, poll: PollRun | None) -> int:
        """These tags no longer match their repository's include/exclude patterns: they are not
        checked any more, so where they point now is unknown. An `untracked` event each, and the
        state leaves every "current" answer (`present=False`) while keeping the last build."""
        if not tags:
            return 0
        with transaction.atomic():
            states = list(self.select_for_update().filter(tag__in=tags, present=True, confirmed_at__lte=at))
            TagEvent.objects.bulk_create(
                TagEvent(
                    tag_id=state.tag_id,
                    kind=TagEvent.Kind.UNTRACKED,
                    previous_build_id=state.build_id,
                    detected_at=at,
                    not_before=state.confirmed_at,
                    poll=poll,
                )
                for state in states
            )
            self.filter(tag_id__in=[state.tag_id for state in states]).update(
                present=False, since=at, confirmed_at=at
            )
        return len(states)

    def confirm(self, tag_ids, *, at: datetime) -> None:
        """A poll saw these tags unchanged at `at`: move their confirmation time forward (never
        back: an overlapping poll may have confirmed them later already), write no history."""
        tag_ids = list(tag_ids)
        for start in range(0, len(tag_ids), 1000):
            self.filter(tag_id__in=tag_ids[start : start + 1000], confirmed_at__lt=at).update(confirmed_at=at)


class TagState(models.Model):
    """Where a tag points now and when a poll last confirmed it (`not_before` of the next change)."""

    tag = models.OneToOneField(Tag, primary_key=True, on_delete=models.CASCADE, related_name="state")
    build = models.ForeignKey(
        Build, on_delete=models.CASCADE, related_name="+", help_text="Current, or last before deletion."
    )
    present = models.BooleanField(default=True)
    since = models.DateTimeField()
    confirmed_at = models.DateTimeField(
        help_text="When the last request that saw this state went out: it held then or later."
    )

    objects = TagStateQuerySet.as_manager()

    class Meta:
        indexes = [
            # which tags point at a build now (build pages, pin checks).
            models.Index(fields=["build"], name="state_build", condition=Q(present=True)),
        ]

    def __str__(self) -> str:
        return f"{self.tag} → {self.build}" if self.present else f"{self.tag} (deleted)"


def _immutable(tag: Tag) -> bool:
    try:
        return tag.repository.is_immutable(classify(tag.name))
    except PatternError:  # a move it would decide is a race between two first polls: not worth failing
        return False


def _transition(state: TagState | None, build: Build | None, immutable: bool) -> str | None:
    Kind = TagEvent.Kind
    if state is None:
        return Kind.CREATED if build is not None else None
    if build is None:
        return Kind.DELETED if state.present else None
    if build.pk == state.build_id:
        return None if state.present else Kind.RESTORED
    return Kind.IMMUTABLE_MOVED if immutable else (Kind.MOVED if state.present else Kind.RESTORED)


def with_poll_health(repositories: models.QuerySet) -> models.QuerySet:
    """Repositories annotated with their latest poll and, in the same one query, `tag_count`:
    the tags present now that the repository lists (`TagState.objects.present_in`: its page and
    the API's `tags`), and `artifact_count`: the signatures, attestations and SBOMs present now,
    which that list leaves to the build they describe."""
    latest = PollRun.objects.filter(repository=models.OuterRef("pk")).order_by("-started_at")
    present, artifact = Q(tags__state__present=True), Q(tags__kind=TagKind.ARTIFACT)
    return repositories.annotate(
        tag_count=models.Count("tags", filter=present & ~artifact),
        artifact_count=models.Count("tags", filter=present & artifact),
        last_poll_status=models.Subquery(latest.values("status")[:1]),
        last_poll_at=models.Subquery(latest.values("started_at")[:1]),
        last_poll_error=models.Subquery(latest.values("error")[:1]),
    )


def with_activity(versions: models.QuerySet, *, now: datetime | None = None) -> models.QuerySet:
    """Versions annotated with `last_build_at`, `has_floating` and `inactive`.

    Inactive (the end-of-life group): no new build for TAGLEDGER_INACTIVE_AFTER_DAYS and no
    floating tag (latest, 3, 3.14, stable, ...) pointing into it now.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.TAGLEDGER_INACTIVE_AFTER_DAYS)
    # A tag that names the version itself (`18.3` on version 18.3) is not floating into it, even
    # where its shape is a minor's: two-part releases keep their tag on their last build forever.
    floating = TagState.objects.filter(
        present=True, build__version=models.OuterRef("pk"), tag__kind__in=FLOATING_KINDS
    ).exclude(tag__version=models.OuterRef("name"))
    return versions.annotate(
        last_build_at=models.Max(Coalesce("builds__built_at", "builds__first_seen_at")),
        has_floating=models.Exists(floating),
    ).annotate(
        inactive=models.Case(
            models.When(Q(has_floating=False, last_build_at__lt=cutoff), then=models.Value(True)),
            default=models.Value(False),
            output_field=models.BooleanField(),
        )
    )


# --- telling people: saved pin lists, subscriptions and their deliveries -------------------------


class PinList(models.Model):
    """Pinned references saved under a name (a Dockerfile, a compose file, a list), checked by
    history.pins on every read; a subscription can fire when one of its pins falls behind."""

    name = models.CharField(max_length=100)
    text = models.TextField(help_text="As pasted; history.pins reads its reference lines.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="pin_lists"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # How far behind each pin was when last told: {line number (str): builds behind}. A pin fires a
    # notification when it falls further behind than this, not again on every later poll.
    behind = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """Where to tell about which tag events: a webhook URL and what it wants to hear."""

    class Format(models.TextChoices):
        JSON = "json"
        SLACK = "slack"  # Slack's and Mattermost's incoming webhooks
        CLOUDEVENTS = "cloudevents"

    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2048)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.JSON)
    secret = models.CharField(
        max_length=256, help_text="The HMAC key of X-Tagledger-Signature; kept to sign, never shown again."
    )
    # What it chooses; each empty choice takes everything.
    repository = models.ForeignKey(
        Repository, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    tag_pattern = models.CharField(
        max_length=512, blank=True, help_text="A regular expression a tag must match."
    )
    kinds = models.JSONField(default=list, blank=True, help_text="Event kinds and signing flags; [] = all.")
    line = models.ForeignKey(
        "catalog.Line", null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    version = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    pin_list = models.ForeignKey(
        PinList, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions",
        help_text="Fire when a pin of this list falls behind.",
    )  # fmt: skip
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name or self.url


class Delivery(models.Model):
    """One message to one subscription (a batch of events, or a test) and the fate of its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"  # queued, or waiting for its next retry (next_attempt_at)
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up: out of retries, or the subscription was disabled

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    # The idempotency key a receiver sees (X-Tagledger-Delivery): stable across retries.
    key = models.CharField(max_length=64)
    events = models.ManyToManyField(TagEvent, blank=True, related_name="deliveries")
    test = models.BooleanField(default=False)
    body = models.TextField(help_text="The exact bytes sent (UTF-8), signed anew on each attempt.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Of the last attempt.")
    error = models.TextField(blank=True, help_text="Why the last attempt failed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "key"], name="one_delivery_per_key"),
        ]
        indexes = [
            # the delivery log, newest first: all, or one subscription's.
            models.Index(fields=["-created_at", "-id"], name="delivery_log"),
            models.Index(fields=["subscription", "-created_at", "-id"], name="delivery_subscription_log"),
            # what is due for a retry (few rows: only the pending ones).
            models.Index(fields=["next_attempt_at"], name="delivery_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.key} {self.status}"
