#!/usr/bin/env python
"""Print the README's example notification payloads, made by the real code (history.notify's items,
history.payloads' renderings) from rows built in memory: `python scripts/notification_examples.py`.

The bodies are sent compact; they are printed indented here to be read."""

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagledger.settings")
os.environ.setdefault("TAGLEDGER_BASE_URL", "https://tagledger.example.com")

import django

django.setup()

from catalog.models import Line, Registry, Repository, Tag, Version  # noqa: E402
from history import notify, payloads  # noqa: E402
from history.models import Build, HeldTag, PollRun, TagEvent  # noqa: E402


def main() -> None:
    registry = Registry(pk=1, host="registry.example.com")
    repository = Repository(pk=3, registry=registry, name="acme/python")
    line = Line(pk=5, repository=repository, name="3.14")
    version = Version(pk=8, repository=repository, line=line, name="3.14.2")
    old = Build(pk=41, repository=repository, digest="sha256:" + "3f1c" * 16, version=version)
    new = Build(pk=42, repository=repository, digest="sha256:" + "9a0e" * 16, version=version)
    at = datetime(2026, 12, 1, 10, 15, 3, 481000, tzinfo=UTC)
    before = datetime(2026, 12, 1, 9, 45, 1, 12000, tzinfo=UTC)
    held = {
        old.pk: [
            HeldTag("3.14.2-20261124", before, None),
            HeldTag("3.14.2", before, at),
            HeldTag("3.14", before, at),
        ],
        new.pk: [
            HeldTag("3.14.2-20261201", at, None),
            HeldTag("3.14.2", at, None),
            HeldTag("3.14", at, None),
        ],
    }
    moved = TagEvent(
        pk=1207, tag=Tag(pk=11, repository=repository, name="3.14"), kind="moved", build=new,
        previous_build=old, detected_at=at, not_before=before,
    )  # fmt: skip
    created = TagEvent(
        pk=1208, tag=Tag(pk=12, repository=repository, name="3.14.2-20261201"), kind="created", build=new,
        detected_at=at,
    )  # fmt: skip
    items = [
        notify.event_item(moved, repository, held, "unsigned"),
        notify.event_item(created, repository, held, None),
    ]
    run = PollRun(pk=310, repository=repository, started_at=at, finished_at=at)
    print("## json\n")
    print(pretty(payloads.render(payloads.JSON, items)))
    print("\n## slack\n")
    print(pretty(payloads.render(payloads.SLACK, items)))
    print("\n## cloudevents (one event: structured mode)\n")
    print(pretty(payloads.render(payloads.CLOUDEVENTS, items[:1])))
    print("\n## pin_behind item\n")
    print(pretty(json.dumps(pin_item(run)).encode()))


def pin_item(run: PollRun) -> dict:
    """A pin_behind item as history.notify.pin_items_of makes one (its keys, its links)."""

    class Pin:
        line = 4
        reference = "registry.example.com/acme/python:3.14@sha256:" + "3f1c" * 16
        current_reference = "registry.example.com/acme/python:3.14@sha256:" + "9a0e" * 16
        builds_behind = 2
        compare_url = "/compare?a=" + reference.replace(":", "%3A").replace("/", "%2F")

    from history import pin_lists

    real, pin_lists.fallen_behind = pin_lists.fallen_behind, lambda pin_list: [Pin()]
    try:
        from history.models import PinList

        return notify.pin_items_of(PinList(pk=2, name="production Dockerfiles"), run)[0]
    finally:
        pin_lists.fallen_behind = real


def pretty(body: bytes) -> str:
    return _pretty(json.loads(body), 0)


def _pretty(value, indent: int, used: int = 0, width: int = 100) -> str:
    """Indented JSON that keeps a list or object on one line when it fits in `width` (`used`: the
    characters before it on its first line)."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if used + len(flat) <= width or not isinstance(value, dict | list) or not value:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        rows = [
            f"{inner}{json.dumps(key)}: {_pretty(item, indent + 2, indent + 6 + len(key), width)}"
            for key, item in value.items()
        ]
        opening, closing = "{", "}"
    else:
        rows = [f"{inner}{_pretty(item, indent + 2, indent + 2, width)}" for item in value]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(rows) + "\n" + " " * indent + closing


if __name__ == "__main__":
    main()
