"""`manage.py watch`: start, change, list or stop watching repositories."""

import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from catalog.duration import MAX_INTERVAL, MIN_INTERVAL, format_duration, parse_interval
from catalog.models import Registry, Repository, validate_regex
from catalog.oci.reference import ImageReference, InvalidReference, parse

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
# os/arch[/variant], or just os: what Repository.wants_platform compares against.
PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*){0,2}")

# Option name -> Repository field, for the options that map one to one.
PATTERN_FIELDS = {
    "include": "include_pattern",
    "exclude": "exclude_pattern",
    "immutable": "immutable_pattern",
}


class Command(BaseCommand):
    help = (
        "Watch a repository (docker.io/library/python, python, 127.0.0.1:5000/demo/app), "
        "change its options, list what is watched (--list) or stop watching (--remove)."
    )

    def add_arguments(self, parser):
        parser.add_argument("reference", nargs="?", help="A repository, without tag or digest.")
        parser.add_argument(
            "--interval",
            help=f"How often to poll: 90s, 30m, 1h, 2d (from {format_duration(MIN_INTERVAL)} "
            f"to {format_duration(MAX_INTERVAL)}; default 30m).",
        )
        parser.add_argument("--include", help="Only tags matching this regular expression (re.search).")
        parser.add_argument("--exclude", help="Skip tags matching this regular expression (re.search).")
        parser.add_argument(
            "--immutable",
            help="Tags matching this (re.fullmatch) must never move; a move is a security event.",
        )
        parser.add_argument(
            "--insecure", action="store_true", help="Plain HTTP for this registry (automatic for loopback)."
        )
        parser.add_argument(
            "--platforms", help="Comma-separated os/arch[/variant] to record, e.g. linux/amd64,linux/arm64."
        )
        parser.add_argument(
            "--line-depth", type=int, choices=[1, 2], help="Group versions by major (1) or major.minor (2)."
        )
        parser.add_argument("--list", action="store_true", help="List watched repositories.")
        parser.add_argument("--remove", metavar="REFERENCE", help="Stop watching; its history is kept.")

    def handle(self, *args, **options):
        given = {
            name: options[name]
            for name in ("interval", "include", "exclude", "immutable", "platforms", "line_depth")
            if options[name] is not None
        }
        if options["insecure"]:
            given["insecure"] = True
        modes = [options["reference"] is not None, options["list"], options["remove"] is not None]
        if sum(modes) != 1:
            raise CommandError("give one of: a REFERENCE to watch, --list, or --remove REFERENCE")
        if given and options["reference"] is None:
            raise CommandError(f"--{next(iter(given)).replace('_', '-')} only goes with a REFERENCE to watch")
        if options["list"]:
            self.list_watched()
        elif options["remove"] is not None:
            self.remove(repository_reference(options["remove"]))
        else:
            self.watch(repository_reference(options["reference"]), given)

    def watch(self, reference: ImageReference, given: dict) -> None:
        changes = cleaned_options(given)
        if len(reference.registry) > Registry._meta.get_field("host").max_length:
            raise CommandError(f"registry host {reference.registry[:80]!r}... is too long")
        now = timezone.now()
        with transaction.atomic():
            registry, _ = Registry.objects.get_or_create(host=reference.registry)
            updated = []
            # Loopback hosts always use plain HTTP; the flag is for other hosts.
            if changes.pop("insecure", False) and not registry.uses_plain_http:
                registry.insecure = True
                registry.save(update_fields=["insecure"])
                updated.append("plain HTTP for the registry")
            repository = (
                Repository.objects.select_for_update()
                .filter(registry=registry, name=reference.repository)
                .first()
            )
            created = repository is None
            if created:
                repository = Repository(registry=registry, name=reference.repository, next_poll_at=now)
            for field, value in changes.items():
                if getattr(repository, field) != value:
                    setattr(repository, field, value)
                    updated.append(describe(field, value))
            if "interval" in changes and repository.next_poll_at > now + repository.interval:
                repository.next_poll_at = now + repository.interval  # a shorter interval applies now
            reenabled = not created and not repository.enabled
            if reenabled:
                repository.enabled, repository.next_poll_at = True, now
            try:
                repository.full_clean(exclude=["registry"], validate_unique=False)
            except ValidationError as error:
                raise CommandError(validation_message(error)) from None
            repository.save()

        name = repository.reference
        if created:
            self.stdout.write(
                f"watching {name} every {format_duration(repository.interval)}"
                f"{describe_options(repository)}; first poll is due now"
            )
        elif reenabled:
            self.stdout.write(
                f"watching {name} again every {format_duration(repository.interval)}"
                f"{describe_options(repository)}; its history is kept; next poll is due now"
            )
        elif updated:
            self.stdout.write(f"{name} is already watched; updated: {', '.join(updated)}")
        else:
            self.stdout.write(f"{name} is already watched; nothing to update")

    def remove(self, reference: ImageReference) -> None:
        repository = find(reference)
        if not repository.enabled:
            self.stdout.write(f"{repository.reference} is not watched any more; nothing to do")
            return
        Repository.objects.filter(pk=repository.pk).update(enabled=False)
        self.stdout.write(
            f"stopped watching {repository.reference}; its history is kept "
            f"(watch it again to resume, which keeps its options)"
        )

    def list_watched(self) -> None:
        # Through the reverse relation by name: catalog does not import history.
        latest = Repository.objects.filter(pk=OuterRef("pk")).order_by("-polls__started_at", "-polls__id")
        repositories = (
            Repository.objects.select_related("registry")
            .annotate(
                last_status=Subquery(latest.values("polls__status")[:1]),
                last_poll_at=Subquery(latest.values("polls__started_at")[:1]),
            )
            .order_by("registry__host", "name")
        )
        now = timezone.now()
        rows = [
            [
                repository.reference,
                format_duration(repository.interval),
                "yes" if repository.enabled else "no",
                (
                    f"{repository.last_status} {format_time(repository.last_poll_at)}"
                    if repository.last_poll_at
                    else "never"
                ),
                next_poll(repository, now),
            ]
            for repository in repositories
        ]
        if not rows:
            self.stdout.write("nothing is watched; start with: manage.py watch REFERENCE")
            return
        header = ["REFERENCE", "INTERVAL", "ENABLED", "LAST POLL", "NEXT POLL"]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )


def repository_reference(text: str) -> ImageReference:
    """A repository reference; one naming a tag or digest is refused: tags are what gets recorded."""
    try:
        reference = parse(text.strip())
    except InvalidReference as error:
        raise CommandError(str(error)) from None
    if reference.tag is not None or reference.digest is not None:
        raise CommandError(
            f"{text[:200]!r} names a {'tag' if reference.digest is None else 'digest'}; watch the "
            f"repository instead ({reference.name}): every tag in it is recorded (narrow with --include)"
        )
    return reference


def find(reference: ImageReference) -> Repository:
    repository = (
        Repository.objects.by_reference(reference.registry, reference.repository)
        .select_related("registry")
        .first()
    )
    if repository is None:
        raise CommandError(f"{reference.name} is not watched")
    return repository


def cleaned_options(given: dict) -> dict:
    """Option values as Repository field values; CommandError before anything is written."""
    cleaned = {}
    if "interval" in given:
        try:
            cleaned["interval"] = parse_interval(given["interval"])
        except ValueError as error:
            raise CommandError(str(error)) from None
    for option, field in PATTERN_FIELDS.items():
        if option in given:
            try:
                validate_regex(given[option])
            except ValidationError as error:
                raise CommandError(f"--{option}: {validation_message(error)}") from None
            cleaned[field] = given[option]
    if "platforms" in given:
        platforms = [item.strip() for item in given["platforms"].split(",") if item.strip()]
        for item in platforms:
            if not PLATFORM_RE.fullmatch(item):
                raise CommandError(
                    f"--platforms: {item[:80]!r} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
                )
        cleaned["platforms"] = ",".join(platforms)
    if "line_depth" in given:
        cleaned["line_depth"] = given["line_depth"]
    if given.get("insecure"):
        cleaned["insecure"] = True
    return cleaned


def describe(field: str, value) -> str:
    if field == "interval":
        return f"interval {format_duration(value)}"
    if field == "line_depth":
        return f"line depth {value}"
    label = {"include_pattern": "include", "exclude_pattern": "exclude", "immutable_pattern": "immutable"}
    return f"{label.get(field, field)} {value!r}" if value else f"{label.get(field, field)} cleared"


def describe_options(repository: Repository) -> str:
    parts = [
        describe(field, getattr(repository, field))
        for field in ("include_pattern", "exclude_pattern", "immutable_pattern", "platforms")
        if getattr(repository, field)
    ]
    if repository.line_depth:
        parts.append(describe("line_depth", repository.line_depth))
    if repository.registry.uses_plain_http:
        parts.append("plain HTTP")
    return f" ({', '.join(parts)})" if parts else ""


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(
            f"{field.replace('_', ' ')}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)


def next_poll(repository: Repository, now: datetime) -> str:
    if not repository.enabled:
        return "-"
    if repository.lease_until and repository.lease_until > now:
        return "polling now"
    return "due now" if repository.next_poll_at <= now else format_time(repository.next_poll_at)


def format_time(value: datetime) -> str:
    return timezone.localtime(value).strftime(TIME_FORMAT)
