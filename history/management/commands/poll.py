"""`manage.py poll`: poll watched repositories now, in this process, and say how each went."""

import logging

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Repository
from catalog.oci.reference import InvalidReference, parse
from history import polling, tasks
from history.models import PollRun

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Poll repositories now, synchronously (all enabled watched repositories if none is named). "
        "Exits 1 if any poll failed, was partial or was skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("references", nargs="*", metavar="REFERENCE", help="Watched repositories.")

    def handle(self, *args, **options):
        repositories = self.named(options["references"]) if options["references"] else self.enabled()
        if not repositories:
            self.stdout.write("nothing is watched; start with: manage.py watch REFERENCE")
            return
        failures = sum(not self.poll(repository) for repository in repositories)
        if failures:
            raise CommandError(
                f"{failures} of {len(repositories)} {'poll' if len(repositories) == 1 else 'polls'} "
                "did not finish ok",
                returncode=1,
            )

    def named(self, texts: list[str]) -> list[Repository]:
        """The named repositories, in the order given; every unknown one is named before any poll."""
        repositories, unknown = [], []
        for text in texts:
            try:
                reference = parse(text.strip())
            except InvalidReference as error:
                raise CommandError(f"{text[:200]!r}: {error}") from None
            if reference.tag is not None or reference.digest is not None:
                raise CommandError(f"{text[:200]!r}: name a repository, without tag or digest")
            repository = (
                Repository.objects.by_reference(reference.registry, reference.repository)
                .select_related("registry")
                .first()
            )
            if repository is None:
                unknown.append(reference.name)
            elif repository not in repositories:
                repositories.append(repository)
        if unknown:
            raise CommandError(f"not watched: {', '.join(unknown)} (add with: manage.py watch REFERENCE)")
        return repositories

    def enabled(self) -> list[Repository]:
        return list(
            Repository.objects.filter(enabled=True)
            .select_related("registry")
            .order_by("registry__host", "name")
        )

    def poll(self, repository: Repository) -> bool:
        """Poll one repository and print its summary line; whether it finished ok."""
        name = repository.reference
        if not repository.claim(lease=tasks.POLL_LEASE):
            self.stdout.write(f"{name}: being polled elsewhere, skipped")
            return False
        bar = ProgressBar(self.stderr, name) if self.stderr.isatty() else None
        try:
            run = tasks.run_poll(repository, progress=bar)
        except polling.RegistryBusy as busy:
            self.stdout.write(
                f"{name}: registry busy or paused, skipped: {busy}; try again in {busy.retry_after:.0f}s"
            )
            return False
        except Exception as error:  # one repository's crash must not hide the others' results
            log.exception("polling %s crashed", name)
            self.stdout.write(f"{name}: crashed: {type(error).__name__}: {error}")
            return False
        finally:
            if bar:
                bar.clear()
        self.stdout.write(summary(name, run))
        return run.status == PollRun.Status.OK


def summary(name: str, run: PollRun) -> str:
    seconds = run.duration.total_seconds() if run.duration else 0.0
    line = (
        f"{name}: {run.status}, {run.tags_seen} tags, {run.heads} HEADs, {run.gets} GETs, "
        f"{run.changes} changes, {seconds:.1f}s"
    )
    return f"{line}; {run.error}" if run.error else line


class ProgressBar:
    """`progress(done, total)` drawn on one terminal line; redrawn only when it visibly changes."""

    WIDTH = 30

    def __init__(self, stream, label: str):
        self.stream = stream
        self.label = label
        self.drawn = None

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // total if total else self.WIDTH
        if (filled, done == total) == self.drawn and done % 50:
            return
        self.drawn = (filled, done == total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.write(f"\r{self.label} [{bar}] {done}/{total} tags")

    def clear(self) -> None:
        if self.drawn is not None:
            self.write("\r\x1b[2K")

    def write(self, text: str) -> None:
        # stderr's default style colours text as an error; a progress bar is not one.
        self.stream.write(text, style_func=lambda text: text, ending="")
        self.stream.flush()
