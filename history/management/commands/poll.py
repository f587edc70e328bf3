"""`manage.py poll`: poll watched repositories now, in this process, and say how each went."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from catalog.models import Repository
from catalog.oci.reference import InvalidReference, parse
from history import polling, tasks
from history.models import PollRun
from history.wording import plural

log = logging.getLogger(__name__)

# Seconds to wait for a poll running elsewhere: a first poll of 10 000 tags takes about a minute
# on loopback (BENCHMARKS.md), several on a real registry; a running poll renews its lease.
DEFAULT_WAIT = 300
WAIT_STEP = 0.5  # one cheap query per step while waiting


class Command(BaseCommand):
    help = (
        "Poll repositories now, synchronously (all enabled watched repositories if none is named). "
        "A repository a worker is polling at that moment is waited for (see --wait) and that poll's "
        "result is printed; one still being polled after the wait is skipped, which is not a failure. "
        "Exits 1 if any poll failed or was partial, or its registry was busy or paused."
    )

    def add_arguments(self, parser):
        parser.add_argument("references", nargs="*", metavar="REFERENCE", help="Watched repositories.")
        parser.add_argument(
            "--supply-chain",
            action="store_true",
            help="Also read the signatures, attestations and SBOMs of the builds tags point to now that "
            "have none recorded: builds polled before tagledger read them (run once after upgrading). "
            "Each such build costs its manifest GETs again.",
        )
        parser.add_argument(
            "--wait",
            type=int,
            default=DEFAULT_WAIT,
            metavar="SECONDS",
            help=f"How long to wait for a poll running elsewhere to finish (default {DEFAULT_WAIT}; "
            "0: skip such repositories at once).",
        )

    def handle(self, *args, **options):
        if options["wait"] < 0:
            raise CommandError("--wait must be 0 or more seconds")
        self.wait = options["wait"]
        self.supply_chain = options["supply_chain"]
        repositories = self.named(options["references"]) if options["references"] else self.enabled()
        if not repositories:
            self.stdout.write("nothing is watched; start with: manage.py watch REFERENCE")
            return
        failures = sum(not self.poll(repository) for repository in repositories)
        if failures:
            raise CommandError(
                f"{failures} of {plural(len(repositories), 'poll')} did not finish ok",
                returncode=1,
            )

    def named(self, texts: list[str]) -> list[Repository]:
        """The named repositories, in the order given; every unknown one is named before any poll."""
        repositories, unknown = [], []
        for text in texts:
            try:
                repository = Repository.objects.named(text)
            except InvalidReference as error:
                raise CommandError(f"{text[:200]!r}: {error}") from None
            if repository is None:
                unknown.append(parse(text.strip()).name)  # as watch names it: docker.io/library/…
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
        """Poll one repository, or wait for the poll running elsewhere, and print its summary line;
        whether it finished ok (a poll still running elsewhere after the wait counts as ok)."""
        if repository.claim(lease=tasks.POLL_LEASE):
            finished_ok = self.poll_here(repository)
        else:
            finished_ok = self.wait_for_poll_elsewhere(repository)
        # Flushed line by line: a CommandError written to stderr must not land before, or inside,
        # the summaries when both streams go to one pipe or log.
        self.stdout.flush()
        return finished_ok

    def wait_for_poll_elsewhere(self, repository: Repository) -> bool:
        """Report the poll that finishes elsewhere within the wait; poll here if the lease ends
        without one (a queued poll that expired, or one bounced by a busy registry)."""
        name = repository.reference
        if not self.wait:
            self.stdout.write(f"{name}: being polled elsewhere, skipped")
            return True
        self.stderr.write(
            f"{name}: being polled elsewhere; waiting up to {self.wait}s for its result",
            style_func=lambda text: text,  # a notice, not an error
        )
        since = timezone.now()
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            time.sleep(WAIT_STEP)
            run = (
                PollRun.objects.filter(repository=repository, finished_at__gte=since)
                .order_by("-finished_at")
                .first()
            )
            if run is not None:
                self.stdout.write(summary(name, run))
                return run.status == PollRun.Status.OK
            if repository.claim(lease=tasks.POLL_LEASE):
                return self.poll_here(repository)
        self.stdout.write(f"{name}: being polled elsewhere, skipped after waiting {self.wait}s")
        return True

    def poll_here(self, repository: Repository) -> bool:
        """Poll the claimed repository in this process; whether it finished ok."""
        name = repository.reference
        bar = ProgressBar(self.stderr, name) if self.stderr.isatty() else None
        try:
            run = tasks.run_poll(repository, progress=bar, supply_chain=self.supply_chain)
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
