"""Start, change and stop watching repositories: one rule set for the CLI and the staff pages."""

import re
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import patterns
from .duration import format_duration, parse_interval
from .models import Registry, Repository
from .oci.reference import ImageReference, InvalidReference, parse

# os/arch[/variant], or just os: what Repository.wants_platform compares against.
PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*){0,2}")

# Option name -> Repository field, for the options that map one to one.
PATTERN_FIELDS = {
    "include": "include_pattern",
    "exclude": "exclude_pattern",
    "immutable": "immutable_pattern",
}


class WatchError(ValueError):
    """The request cannot be carried out; the text says why, and nothing was written."""


class Watched(NamedTuple):
    repository: Repository
    created: bool
    reenabled: bool
    updated: list[str]  # what changed, in words: "interval 1h", "include '^3'"


def repository_reference(text: str) -> ImageReference:
    """A repository reference; one naming a tag or digest is refused: tags are what gets recorded."""
    try:
        reference = parse(text.strip())
    except InvalidReference as error:
        raise WatchError(str(error)) from None
    if reference.tag is not None or reference.digest is not None:
        raise WatchError(
            f"{text[:200]!r} names a {'tag' if reference.digest is None else 'digest'}; watch the "
            f"repository instead ({reference.name}): every tag in it is recorded (narrow with --include)"
        )
    return reference


def watch(reference: ImageReference, given: dict) -> Watched:
    """Watch `reference` with the `given` options (interval, include, exclude, immutable, platforms,
    line_depth, insecure); watching again changes only what is given, and re-enables."""
    changes = cleaned_options(given)
    if len(reference.registry) > Registry._meta.get_field("host").max_length:
        raise WatchError(f"registry host {reference.registry[:80]!r}... is too long")
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
            raise WatchError(validation_message(error)) from None
        repository.save()
    return Watched(repository, created, reenabled, updated)


def unwatch(repository: Repository) -> bool:
    """Stop polling; history is kept. False when it was not watched any more."""
    return Repository.objects.filter(pk=repository.pk, enabled=True).update(enabled=False) == 1


def find(reference: ImageReference) -> Repository:
    repository = (
        Repository.objects.by_reference(reference.registry, reference.repository)
        .select_related("registry")
        .first()
    )
    if repository is None:
        raise WatchError(f"{reference.name} is not watched")
    return repository


def cleaned_options(given: dict) -> dict:
    """Option values as Repository field values; WatchError before anything is written."""
    cleaned = {}
    if "interval" in given:
        try:
            cleaned["interval"] = parse_interval(given["interval"])
        except ValueError as error:
            raise WatchError(str(error)) from None
    for option, field in PATTERN_FIELDS.items():
        if option in given:
            # The same check as the fields' validator, before anything is written; it also
            # compiles the pattern, so a refusal of any kind is a message, never a traceback.
            try:
                patterns.check(given[option])
            except patterns.InvalidPattern as error:
                raise WatchError(f"--{option}: {error}") from None
            cleaned[field] = given[option]
    if "platforms" in given:
        platforms = [item.strip() for item in given["platforms"].split(",") if item.strip()]
        for item in platforms:
            if not PLATFORM_RE.fullmatch(item):
                raise WatchError(
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


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(
            f"{field.replace('_', ' ')}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)
