"""A repository as its page shows it: lines → versions (variants side by side) → the tags on them now."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from catalog.models import Repository, Version
from catalog.tags import Kind, classify, version_key

from .models import Build, TagState, with_activity

# The order tags are listed in a cell: `latest, 3.14.4, 3.14, 3`, then the rest.
KIND_ORDER = {
    Kind.LATEST: 0, Kind.FLOATING: 1, Kind.EXACT: 2, Kind.REVISION: 3,
    Kind.MINOR: 4, Kind.MAJOR: 5, Kind.TIMESTAMP: 6, Kind.OTHER: 7,
}  # fmt: skip


@dataclass
class Cell:
    """One variant of one version: its current build and the tags on it."""

    version: Version
    build: Build | None
    tags: list[str] = field(default_factory=list)


@dataclass
class VersionRow:
    name: str
    cells: dict[str, Cell]
    inactive: bool
    channels: list[str]  # named floating tags pointing into it: stable, mainline, lts, ...

    def cell_list(self, variants: list[str]) -> list[Cell | None]:
        return [self.cells.get(variant) for variant in variants]


@dataclass
class LineGroup:
    name: str
    rows: list[VersionRow]

    @property
    def channels(self) -> list[str]:
        return sorted({channel for row in self.rows for channel in row.channels})


@dataclass
class TagRow:
    name: str
    kind: str
    build: Build
    since: object


@dataclass
class Overview:
    variants: list[str]
    lines: list[LineGroup]
    inactive: list[VersionRow]
    tags: list[TagRow]


def overview(repository: Repository) -> Overview:
    """Three queries, whatever the size of the repository."""
    versions = list(
        with_activity(Version.objects.filter(repository=repository))
        .annotate(build_count=Count("builds", distinct=True))
        .select_related("line")
    )
    states = list(
        TagState.objects.filter(tag__repository=repository, present=True)
        .exclude(tag__kind=Kind.ARTIFACT)
        .select_related("tag", "build")
    )
    on_version: dict[int, list[TagState]] = defaultdict(list)
    for state in states:
        if state.build.version_id:
            on_version[state.build.version_id].append(state)

    rows: dict[str, VersionRow] = {}
    for version in versions:
        cell = _cell(version, on_version[version.pk])
        row = rows.setdefault(version.name, VersionRow(version.name, {}, inactive=True, channels=[]))
        row.cells[version.variant] = cell
        row.inactive = row.inactive and version.inactive
        row.channels += [
            classify(state.tag.name).channel
            for state in on_version[version.pk]
            if state.tag.kind == Kind.FLOATING
        ]

    by_name = {state.tag.name: (state.tag.kind, state.build, state.since) for state in states}
    lines: dict[str, list[VersionRow]] = defaultdict(list)
    inactive = []
    line_of_row = {version.name: version.line.name for version in versions}
    for row in sorted(rows.values(), key=lambda row: version_key(row.name), reverse=True):
        (inactive if row.inactive else lines[line_of_row[row.name]]).append(row)
    return Overview(
        variants=sorted(
            {version.variant for version in versions}, key=lambda variant: (variant != "", variant)
        ),
        lines=[
            LineGroup(name, rows)
            for name, rows in sorted(lines.items(), key=lambda item: version_key(item[0]), reverse=True)
        ],
        inactive=inactive,
        tags=[TagRow(name, *by_name[name]) for name in _in_order(by_name)],
    )


def _cell(version: Version, states: list[TagState]) -> Cell:
    """The version's current build is where its exact tag points, else its newest build seen."""
    exact = next(
        (s for s in states if s.tag.kind in (Kind.EXACT, Kind.REVISION) and s.tag.version == version.name),
        None,
    )
    if exact:
        build = exact.build
    elif states:
        build = max((s.build for s in states), key=lambda b: (b.built_at or b.first_seen_at, b.pk))
    else:
        build = None
    tags = _in_order(s.tag.name for s in states if build is not None and s.build_id == build.pk)
    return Cell(version, build, tags)


def _in_order(names) -> list[str]:
    """`latest, 3.14.4, 3.14, 3`: by kind, and newest version first within a kind."""
    newest_first = sorted(names, key=lambda name: version_key(classify(name).version), reverse=True)
    return sorted(newest_first, key=lambda name: KIND_ORDER.get(classify(name).kind, len(KIND_ORDER)))
