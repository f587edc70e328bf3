"""Small builders for watched repositories pointing at the test registries."""

from catalog.models import Registry, Repository


def watch(registry, name: str, **options) -> Repository:
    """A watched repository on a RunningRegistry (or a FaultProxy: anything with `.host`)."""
    host, _ = Registry.objects.get_or_create(host=registry.host)
    return Repository.objects.create(registry=host, name=name, **options)
