"""Real published tag sets (tests/catalog/corpus/*.yaml), one group of tags per image.

The oracles here read a tag with plain regular expressions, independently of catalog/tags.py,
so the corpus tests check the grammar against what a person sees in a tag, not against itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parent.parent / "catalog" / "corpus"

# A date or time in a tag, with the `.N` sequence numbers that may follow it.
_STAMP_RE = re.compile(
    r"(?<![0-9])(?P<stamp>20[0-9]{2}(?:0[1-9]|1[0-2])[0-3][0-9](?:[0-2][0-9][0-5][0-9](?:[0-5][0-9])?)?)"
    r"(?P<seq>(?:\.[0-9]+)*)(?![0-9])"
)
# A number a person reads as a version: up to four digits at the start of a "-"-separated part.
_VERSION_NUMBER_RE = re.compile(r"v?[0-9]{1,4}(?![0-9])")
# Words that make the number after them a git reference, not a version (`pr-42`).
_REFERENCES = ("pr-", "mr-", "sha-", "release-", "branch-")


@dataclass(frozen=True)
class Image:
    """The tags one registry served for one digest."""

    source: str
    repository: str
    tags: tuple[str, ...]


@cache
def images() -> tuple[Image, ...]:
    found = []
    for path in sorted(CORPUS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for repository, groups in document["repositories"].items():
            found += [Image(path.name, repository, tuple(str(tag) for tag in group)) for group in groups]
    return tuple(found)


def sources() -> list[dict]:
    return [yaml.safe_load(path.read_text()) | {"file": path.name} for path in sorted(CORPUS.glob("*.yaml"))]


def by_repository() -> dict[str, list[Image]]:
    grouped: dict[str, list[Image]] = {}
    for image in images():
        grouped.setdefault(image.repository, []).append(image)
    return grouped


def stamp_in(tag: str) -> tuple[datetime, str] | None:
    """The build time a tag carries and the tag without it (its "rest"), or None."""
    for match in _STAMP_RE.finditer(tag):
        digits = match["stamp"]
        fields = [int(digits[i : i + 2]) for i in range(4, len(digits), 2)]
        try:
            when = datetime(int(digits[:4]), *fields, tzinfo=UTC)
        except ValueError:
            continue
        rest = tag[: match.start()] + tag[match.end() :]
        # `2023.12.20260817.0` leaves `2023.12.`; `bookworm-20260803-slim` leaves `bookworm--slim`.
        rest = re.sub(r"\.(?=-|$)|^-|-$", "", rest.replace("--", "-").replace(".-", "-"))
        return when, rest
    return None


def carries_version(tag: str) -> bool:
    """Whether a person reading the tag sees a version number in it."""
    if tag.startswith(_REFERENCES) or tag.startswith("sha256-"):
        return False
    stamped = stamp_in(tag)
    rest = stamped[1] if stamped else tag
    return any(_VERSION_NUMBER_RE.match(part) for part in rest.split("-") if part)


# Filled by the corpus tests, printed at the end of the run (tests/conftest.py).
REPORT: dict[str, str] = {}


def share(label: str, hits: int, total: int, outside: list[str]) -> None:
    percent = 100 * hits / total if total else 100.0
    line = f"{hits}/{total} ({percent:.1f} %)"
    if outside:
        line += f"; outside: {', '.join(outside[:10])}" + (" …" if len(outside) > 10 else "")
    REPORT[label] = line
