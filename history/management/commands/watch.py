"""`manage.py watch`: start, change, list or stop watching repositories."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from catalog import watching
from catalog.duration import MAX_INTERVAL, MIN_INTERVAL, format_duration
from catalog.models import Repository
from catalog.oci.reference import ImageReference
from history.models import with_poll_health
from history.wording import format_time


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
            self.remove(reference_or_error(options["remove"]))
        else:
            self.watch(reference_or_error(options["reference"]), given)

    def watch(self, reference: ImageReference, given: dict) -> None:
        try:
            result = watching.watch(reference, given)
        except watching.WatchError as error:
            raise CommandError(str(error)) from None
        repository, created, reenabled, updated = result
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
        try:
            repository = watching.find(reference)
        except watching.WatchError as error:
            raise CommandError(str(error)) from None
        if not watching.unwatch(repository):
            self.stdout.write(f"{repository.reference} is not watched any more; nothing to do")
            return
        self.stdout.write(
            f"stopped watching {repository.reference}; its history is kept "
            f"(watch it again to resume, which keeps its options)"
        )

    def list_watched(self) -> None:
        repositories = with_poll_health(Repository.objects.select_related("registry")).order_by(
            "registry__host", "name"
        )
        now = timezone.now()
        rows = [
            [
                repository.reference,
                format_duration(repository.interval),
                "yes" if repository.enabled else "no",
                (
                    f"{repository.last_poll_status} {format_time(repository.last_poll_at)}"
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


def reference_or_error(text: str) -> ImageReference:
    try:
        return watching.repository_reference(text)
    except watching.WatchError as error:
        raise CommandError(str(error)) from None


def describe_options(repository: Repository) -> str:
    parts = [
        watching.describe(field, getattr(repository, field))
        for field in ("include_pattern", "exclude_pattern", "immutable_pattern", "platforms")
        if getattr(repository, field)
    ]
    if repository.line_depth:
        parts.append(watching.describe("line_depth", repository.line_depth))
    if repository.registry.uses_plain_http:
        parts.append("plain HTTP")
    return f" ({', '.join(parts)})" if parts else ""


def next_poll(repository: Repository, now: datetime) -> str:
    if not repository.enabled:
        return "-"
    if repository.lease_until and repository.lease_until > now:
        return "polling now"
    return "due now" if repository.next_poll_at <= now else format_time(repository.next_poll_at)
