"""What is watched and how it is organised: registries, repositories, lines, versions, tags."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from . import patterns
from .oci.auth import AuthMemory
from .oci.client import RegistryClient, is_loopback
from .oci.reference import InvalidReference, parse
from .tags import Kind, TagInfo, classify, line_of


def validate_regex(value: str) -> None:
    """A tag pattern that compiles within catalog.patterns' bounds; any refusal is a ValidationError."""
    try:
        patterns.check(value)
    except patterns.InvalidPattern as error:
        raise ValidationError(str(error)) from None


# What a registry's concurrency may be raised to: past it, a registry's own limits (and this
# process's threads and sockets) cost more than the round trips it saves.
MAX_CONCURRENCY = 64
# What this process has learnt of each registry's auth, kept across polls (see AuthMemory).
AUTH_MEMORY = AuthMemory()


class Registry(models.Model):
    """A registry host; credentials stay in $DOCKER_CONFIG/config.json, never here."""

    host = models.CharField(max_length=255, unique=True, help_text="docker.io, quay.io, 127.0.0.1:5000")
    insecure = models.BooleanField(default=False, help_text="Plain HTTP for a host that is not loopback.")
    concurrency = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(1), MaxValueValidator(MAX_CONCURRENCY)],
        help_text="Requests in flight at once, across all workers; a poll may use them all. "
        "Raise it for registries that allow more (Docker Hub, GHCR, Quay).",
    )  # fmt: skip
    # Whether the registry answers the OCI 1.1 referrers API (None: not asked yet). One without it
    # keeps referrers as `sha256-<hex>` tags, already in the tag list: asking it again would cost
    # every poll a request, so the answer is kept and asked again only after a day.
    referrers_api = models.BooleanField(null=True, blank=True)
    referrers_api_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.host

    @property
    def uses_plain_http(self) -> bool:
        return self.insecure or is_loopback(self.host)

    def client(self) -> RegistryClient:
        return RegistryClient.from_docker_config(
            self.host,
            settings.DOCKER_CONFIG,
            insecure=self.insecure,
            concurrency=self.concurrency,
            timeout=settings.REGISTRY_TIMEOUT,
            memory=AUTH_MEMORY,
        )


class RepositoryQuerySet(models.QuerySet):
    def due_for_poll(self, now: datetime | None = None):
        now = now or timezone.now()
        return self.filter(enabled=True, next_poll_at__lte=now).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )

    def by_reference(self, registry: str, name: str):
        return self.filter(registry__host=registry, name=name)

    def named(self, text: str) -> "Repository | None":
        """The watched repository `text` names as `manage.py watch` reads it (`python`,
        `docker.io/library/python`, `127.0.0.1:5000/team/app`), or None; InvalidReference (a
        ValueError) for text that is no repository reference, a tag or digest included."""
        reference = parse(text.strip())
        if reference.tag is not None or reference.digest is not None:
            raise InvalidReference("name a repository, without tag or digest")
        return self.by_reference(reference.registry, reference.repository).select_related("registry").first()

    def by_hook_token(self, secret: str):
        """The repository whose push-event token `secret` is (history.views.hooks)."""
        return self.filter(hook_token_digest=digest_of_hook_token(secret))


# A repository's push-event token: `tlh_` and 256 random bits, so a fast hash is right (as for
# API tokens); only its SHA-256 is kept, and it is shown once (`manage.py hooks token`).
HOOK_TOKEN_SCHEME = "tlh_"  # noqa: S105 (a prefix, not a secret)


def digest_of_hook_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class Repository(models.Model):
    """A watched repository and how to poll it."""

    registry = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="repositories")
    name = models.CharField(max_length=255, help_text="Path in the registry, e.g. library/python.")
    enabled = models.BooleanField(default=True)
    interval = models.DurationField(default=timedelta(minutes=30))
    include_pattern = models.CharField(max_length=500, blank=True, validators=[validate_regex])
    exclude_pattern = models.CharField(max_length=500, blank=True, validators=[validate_regex])
    immutable_pattern = models.CharField(
        max_length=500, blank=True, validators=[validate_regex],
        help_text="Tags matching this never move; one that does is a security event.",
    )  # fmt: skip
    line_depth = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1: lines by major; 2: by major.minor; empty: decided by versions."
    )
    platforms = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated os/arch[/variant] to record; empty: all."
    )
    next_poll_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    # unique: the endpoint finds the repository of a token by this, in one indexed lookup.
    hook_token_digest = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False,
        help_text="SHA-256 of this repository's own push-event token, which triggers only its polls.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RepositoryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["registry", "name"], name="unique_repository")]
        indexes = [
            # due_for_poll(): the dispatcher's query every 15 seconds.
            models.Index(fields=["enabled", "next_poll_at"], name="repository_due"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"{self.registry.host}/{self.name}"

    def wants_tag(self, name: str) -> bool:
        """Does the include pattern occur in `name` and the exclude pattern not?

        Raises catalog.patterns.PatternError (PatternTimeout, InvalidPattern): fail this tag."""
        if self.include_pattern and not patterns.search(self.include_pattern, name):
            return False
        return not (self.exclude_pattern and patterns.search(self.exclude_pattern, name))

    def is_immutable(self, info: TagInfo) -> bool:
        """Immutable by its kind (TagInfo.is_immutable) or by the immutable pattern, matched in full.

        Raises catalog.patterns.PatternError (PatternTimeout, InvalidPattern): fail this tag."""
        return info.is_immutable or bool(
            self.immutable_pattern and patterns.fullmatch(self.immutable_pattern, info.name)
        )

    def wants_platform(self, platform: str) -> bool:
        wanted = [item.strip() for item in self.platforms.split(",") if item.strip()]
        return not wanted or any(platform == item or platform.startswith(item + "/") for item in wanted)

    def claim(self, *, lease: timedelta, now: datetime | None = None) -> bool:
        """Take the polling lease if nobody holds it: compare-and-set, so two workers never both win."""
        now = now or timezone.now()
        claimed = (
            Repository.objects.filter(pk=self.pk)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + lease)
        )
        if claimed:
            self.lease_until = now + lease
        return claimed == 1

    def extend_lease(self, *, lease: timedelta, now: datetime | None = None) -> None:
        """The claimed poll has started: hold the repository for `lease` from now."""
        now = now or timezone.now()
        Repository.objects.filter(pk=self.pk).update(lease_until=now + lease)
        self.lease_until = now + lease

    def renew_lease(self, *, lease: timedelta, now: datetime) -> bool:
        """A poll is still running: hold its lease for `lease` from now. A lease already released
        (or never taken: a poll run directly) stays so. Called from the poll's heartbeat thread,
        so this object's fields are left alone."""
        # SKIP LOCKED: a row locked by someone else's open transaction is left for the next beat,
        # rather than holding the poll's heartbeat (and so the poll's end) until it commits.
        held = Repository.objects.filter(pk=self.pk, lease_until__isnull=False)
        mine = Repository.objects.filter(pk__in=held.select_for_update(skip_locked=True).values("pk"))
        with transaction.atomic():
            return mine.update(lease_until=now + lease) == 1

    def release(self, *, next_poll_at: datetime) -> None:
        Repository.objects.filter(pk=self.pk).update(lease_until=None, next_poll_at=next_poll_at)
        self.lease_until, self.next_poll_at = None, next_poll_at

    def issue_hook_token(self) -> str:
        """A new push-event token for this repository (any earlier one stops working); the secret
        is returned this once and only its digest kept."""
        secret = HOOK_TOKEN_SCHEME + secrets.token_urlsafe(32)
        self.hook_token_digest = digest_of_hook_token(secret)
        Repository.objects.filter(pk=self.pk).update(hook_token_digest=self.hook_token_digest)
        return secret

    def revoke_hook_token(self) -> bool:
        """Forget this repository's push-event token; False when it had none."""
        had = self.hook_token_digest is not None
        Repository.objects.filter(pk=self.pk).update(hook_token_digest=None)
        self.hook_token_digest = None
        return had


class VersionQuerySet(models.QuerySet):
    def ensure(self, repository: Repository, wanted: set[tuple[str, str]], *, depth: int) -> dict:
        """{(name, variant): Version} for each of `wanted`, created with its Line where missing
        (grouped `depth` parts deep: catalog.tags.line_of). A few queries for any number: a
        first poll finds hundreds of versions."""
        if not wanted:
            return {}
        lines = {(variant, line_of(name, depth) or name) for name, variant in wanted}
        # ignore_conflicts: a Line or Version that exists already (or is created meanwhile) is
        # used as it is, as get_or_create would.
        Line.objects.bulk_create(
            [Line(repository=repository, variant=variant, name=name) for variant, name in sorted(lines)],
            ignore_conflicts=True,
        )
        line_ids = {
            (line.variant, line.name): line.pk
            for line in Line.objects.filter(repository=repository, name__in={name for _, name in lines})
        }
        self.bulk_create(
            [
                Version(repository=repository, variant=variant, name=name,
                        line_id=line_ids[variant, line_of(name, depth) or name])
                for name, variant in sorted(wanted)
            ],
            ignore_conflicts=True,
        )  # fmt: skip
        versions = self.filter(repository=repository, name__in={name for name, _ in wanted})
        return {
            (version.name, version.variant): version
            for version in versions
            if (version.name, version.variant) in wanted
        }


class TagQuerySet(models.QuerySet):
    def ensure(self, repository: Repository, names: set[str]) -> dict[str, "Tag"]:
        """{name: Tag} for each of `names`, classified and created where missing."""
        existing = {tag.name for tag in self.filter(repository=repository, name__in=names).only("name")}
        self.bulk_create(
            [Tag.from_info(repository, classify(name)) for name in names - existing], ignore_conflicts=True
        )
        return {tag.name: tag for tag in self.filter(repository=repository, name__in=names)}


class Line(models.Model):
    """Versions grouped by major or major.minor, per variant (`3.14`, `3.14` of `dev`)."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="lines")
    variant = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=128)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "variant", "name"], name="unique_line")]

    def __str__(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


class Version(models.Model):
    """One released version of one variant; its builds are its digest history."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="versions")
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="versions")
    variant = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=128)

    objects = VersionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "variant", "name"], name="unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


class Tag(models.Model):
    """A tag name seen in a repository, classified; where it points lives in history.TagState."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=[(kind.value, kind.value) for kind in Kind])
    version = models.CharField(max_length=128, blank=True, help_text="3.14 for the tag 3.14-dev")
    variant = models.CharField(max_length=128, blank=True)
    subject_digest = models.CharField(
        max_length=135, blank=True, help_text="Signatures, attestations, SBOMs: the build they belong to."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TagQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="unique_tag")]
        indexes = [
            # the repository page's floating tags (`kind IN (latest, major, minor, floating)`) and
            # its not-understood ones (`kind = 'other'`, by name): a range scan of the few of each
            # kind instead of a pass over all 10 000 tags of a large repository (history.lines;
            # BENCHMARKS.md, Pages: repository). Made CONCURRENTLY on PostgreSQL (migration 0003).
            models.Index(fields=["repository", "kind", "name"], name="tag_repository_kind"),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_info(cls, repository: Repository, info: TagInfo) -> "Tag":
        """The (unsaved) tag of a classified name (catalog.tags.classify)."""
        return cls(
            repository=repository, name=info.name, kind=info.kind.value, version=info.version,
            variant=info.variant, subject_digest=info.subject_digest,
        )  # fmt: skip
