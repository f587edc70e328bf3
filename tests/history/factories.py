"""Builders of watched repositories on the test registries, and readers of what polls recorded."""

from catalog.models import Registry, Repository
from history.models import PollRun


def watch(registry, name: str, **options) -> Repository:
    """A watched repository on a RunningRegistry (or a FaultProxy: anything with `.host`)."""
    host, _ = Registry.objects.get_or_create(host=registry.host)
    return Repository.objects.create(registry=host, name=name, **options)


def short(digest: str | None) -> str | None:
    return digest.split(":", 1)[1][:12] if digest else None


def events_of(run: PollRun) -> list[tuple[str, str, str | None, str | None]]:
    """What one poll recorded: [(tag, kind, digest, previous digest)], by tag name."""
    return sorted(
        (event.tag.name, event.kind, short(event.build and event.build.digest),
         short(event.previous_build and event.previous_build.digest))
        for event in run.events.select_related("tag", "build", "previous_build")
    )  # fmt: skip
