"""Packages of builds: SBOM packages stored once as sets of ids, and the readers of them.

A platform's SBOM becomes one PackageSet (its Package ids, ascending): rebuilds that change no
package share a set, and a package version is one Package row however many builds contain it.

What a platform contains is the union of the sets of the build's SBOM attachments about it: an
SBOM whose subject is the platform image's digest (Attachment.platform), and one whose subject is
the build's own digest (platform null), which describes the build as a whole and so every platform
of it. A single-platform build's digest is its platform's, so its SBOMs name the platform.

Readers, each one shape for the page, the API and `manage.py lookup --package`:
- in_build(): a build's packages (one platform's, or every platform's), by name, a keyset page;
- search(): the builds containing a package (`openssl`, `openssl@3.0.13`, a purl), newest first,
  with the platforms that contain it and whether a tag points there now.
Compare's package diff is history.supply_chain.diff_packages.

Search finds the Package ids by name (the `package_name_version` index on (lower(name),
version)), the sets containing any of them (`package_set_ids(packages) && ids`, one probe of
an exact GIN index, on PostgreSQL; `json_each` over every set on SQLite: correct, and as slow as
reading every set), then the SBOM attachments holding those sets and their builds.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import NamedTuple

from django.db import connection
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from packageurl import PackageURL

from catalog.oci.manifest import is_digest
from catalog.text import quoted

from . import params
from .keyset import Cursor, InvalidCursor, NameCursor, RowBefore
from .models import Attachment, Build, Package, PackageSet, Platform, TagState

# Each field's room in the Package table; a longer value is cut (a name, a version), or dropped
# when cutting would make it wrong (a purl cut short names another package, or none).
TYPE_LENGTH = Package._meta.get_field("type").max_length
NAME_LENGTH = Package._meta.get_field("name").max_length
VERSION_LENGTH = Package._meta.get_field("version").max_length
PURL_LENGTH = Package._meta.get_field("purl").max_length
# Keys asked for in one `key IN (...)`: below SQLite's bound on a statement's parameters.
READ_BATCH = 2000


# --- storage ------------------------------------------------------------------------------------


def package_set(packages: Iterable) -> PackageSet:
    """The PackageSet of `packages` (history.sbom.Package, or anything with name, version, type
    and purl), made if new, with a Package row for each package version not stored yet.

    A fixed number of queries whatever the size (insert the packages, read their ids, get or
    create the set), and safe against a concurrent poll storing the same packages or the same
    set: rows are inserted ignoring conflicts and then read back, and the set is unique by key. An
    empty SBOM is a valid empty set."""
    rows: dict[str, Package] = {}
    for package in packages:
        row = package_row(package)
        if row is not None:
            rows.setdefault(row.key, row)
    ids = _stored_ids(rows)
    key = sha256(",".join(map(str, ids)).encode()).hexdigest()
    # get_or_create reads again when its insert loses a race to another poll's (IntegrityError).
    found, _ = PackageSet.objects.get_or_create(key=key, defaults={"packages": ids, "size": len(ids)})
    return found


def package_row(package) -> Package | None:
    """The (unsaved) Package row of `package`, its values made storable: text only, without NUL
    (PostgreSQL refuses it) or unencodable surrogates, within each column's length. None: it has
    no name, so names nothing anyone could search for."""
    name = _clean(getattr(package, "name", ""))[:NAME_LENGTH]
    if not name:
        return None
    version = _clean(getattr(package, "version", ""))[:VERSION_LENGTH]
    kind = _clean(getattr(package, "type", ""))[:TYPE_LENGTH]
    purl = _clean(getattr(package, "purl", ""))
    purl = purl if len(purl) <= PURL_LENGTH else ""
    return Package(
        type=kind, name=name, version=version, purl=purl, key=package_key(kind, name, version, purl)
    )


def package_key(kind: str, name: str, version: str, purl: str) -> str:
    """sha256 hex of the four values, joined by NUL: none of them holds one (package_row)."""
    return sha256("\0".join((kind, name, version, purl)).encode()).hexdigest()


def _clean(value: object) -> str:
    if not isinstance(value, str):
        return ""
    value = value.replace("\0", "").strip()
    # A lone surrogate (JSON's "\ud800") cannot be encoded to UTF-8 for the database.
    return value.encode("utf-8", "replace").decode("utf-8")


def _stored_ids(rows: dict[str, Package]) -> list[int]:
    """The ids of `rows`, ascending, inserting those not stored yet.

    Inserted in key order: two polls inserting overlapping packages then take the unique index's
    locks in the same order, so they wait for each other instead of deadlocking."""
    if not rows:
        return []
    keys = sorted(rows)
    Package.objects.bulk_create([rows[key] for key in keys], ignore_conflicts=True)
    ids = []
    for start in range(0, len(keys), READ_BATCH):
        batch = keys[start : start + READ_BATCH]
        ids.extend(Package.objects.filter(key__in=batch).values_list("pk", flat=True))
    return sorted(ids)


# --- reading a query ----------------------------------------------------------------------------

PAGE_SIZE, MAX_PAGE = 50, 200  # results of a search
WALK = 2  # a search reads the sets of this many times a page of the newest builds first (_page_ids)
PROBES = 2  # a query naming at most this many package versions is checked in the database (_held)
PACKAGE_PAGE, MAX_PACKAGE_PAGE = 100, 500  # a build's packages: short rows
MAX_QUERY = NAME_LENGTH + VERSION_LENGTH + 1
MAX_PURL_QUERY = PURL_LENGTH
# os/architecture[/variant], as the build page names platforms.
_PLATFORM_RE = re.compile(r"[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64}(?:/[A-Za-z0-9._-]{1,64})?")
NO_NAME = "give a package name, such as openssl, openssl@3.0.13 or pkg:deb/debian/openssl@3.0.13"


class InvalidPackageQuery(ValueError):
    """A package name, version, platform or digest that names nothing; the text says why (a 400)."""


class UnknownBuild(LookupError):
    """No watched repository has a build (or platform image) with that digest (a 404)."""


@dataclass(frozen=True)
class PackageQuery:
    """What a search asks for: a name (compared case-insensitively), and a version and a purl type
    when given (exactly)."""

    name: str
    version: str = ""
    type: str = ""
    names: tuple[str, ...] = ()  # the names a purl's package may be stored under

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def parse_query(text: str, version: str = "") -> PackageQuery:
    """`openssl`, `openssl@3.0.13` (the last `@` not at the start: `@babel/core@7.24.0` is the
    npm package @babel/core), or a purl (`pkg:deb/debian/openssl@3.0.13`: its type, name and
    version). `version`, when given, is the version whatever the text says."""
    try:
        text = params.text(text, max_length=MAX_PURL_QUERY, what="the package")
        version = params.text(version, max_length=VERSION_LENGTH, what="the version")
    except params.InvalidParameter as invalid:
        raise InvalidPackageQuery(str(invalid)) from None
    if not text.strip("@"):
        raise InvalidPackageQuery(NO_NAME)
    if text.startswith("pkg:"):
        return _purl_query(text, version)
    if len(text) > MAX_QUERY:
        raise InvalidPackageQuery(f"the package is too long ({len(text)} characters; at most {MAX_QUERY})")
    name, at, given = text.rpartition("@")
    if not at or not name:
        name, given = text, ""
    if not name.strip():
        raise InvalidPackageQuery(NO_NAME)
    if len(name) > NAME_LENGTH:
        raise InvalidPackageQuery(
            f"the package name is too long ({len(name)} characters; at most {NAME_LENGTH})"
        )
    return PackageQuery(name.strip(), version or given.strip())


def _purl_query(text: str, version: str) -> PackageQuery:
    try:
        purl = PackageURL.from_string(text)
    except ValueError as error:
        raise InvalidPackageQuery(f"{quoted(text)} is not a package URL: {error}") from None
    # An SBOM names a package with or without its namespace (@babel/core, core); either is it.
    names = (f"{purl.namespace}/{purl.name}", purl.name) if purl.namespace else (purl.name,)
    return PackageQuery(purl.name, version or purl.version or "", purl.type, names)


def _digest(text: str) -> str:
    if not is_digest(text):
        raise InvalidPackageQuery(f"{quoted(text)} is not a digest (sha256:<64 hex> or sha512:<128 hex>)")
    return text


def _platform_name(text: str) -> str:
    if text and not _PLATFORM_RE.fullmatch(text):
        raise InvalidPackageQuery(f"{quoted(text)} is not a platform, such as linux/amd64 or linux/arm64/v8")
    return text


# --- a build's packages ---------------------------------------------------------------------------


class PackageCursor(NamedTuple):
    """The last package of a page of a build's packages, by its id: the next page starts after
    that package's (name, version, purl). Written as a NameCursor of `p<id>`, so every list's
    token is made and checked the same way (history.keyset)."""

    id: int

    def encode(self) -> str:
        return NameCursor(f"p{self.id}").encode()

    @classmethod
    def decode(cls, token: object) -> "PackageCursor":
        name = NameCursor.decode(token).name
        try:
            if not name.startswith("p"):
                raise ValueError
            return cls(params.positive_id(name[1:]))
        except ValueError:
            raise InvalidCursor from None


@dataclass(frozen=True)
class PackagePage:
    build: Build
    platform: str  # "" for every platform's
    items: list[Package]
    next_cursor: PackageCursor | None = None

    def as_dict(self) -> dict:
        """The API's body, and `--json`'s."""
        return {"items": [package_dict(row) for row in self.items], "next": token(self.next_cursor)}


def package_dict(row: Package) -> dict:
    return {"name": row.name, "version": row.version, "type": row.type, "purl": row.purl}


def token(cursor) -> str | None:
    return cursor.encode() if cursor else None


def in_build(
    digest: str, platform: str = "", cursor: PackageCursor | None = None, *, size: int = PACKAGE_PAGE
) -> PackagePage:
    """The packages of the build `digest` (or of the platform image with that digest), by name,
    version and purl, a keyset page at a time. `platform` ("linux/amd64") picks one platform of a
    multi-platform build; "" lists what any of its platforms contains.

    The same digest in several repositories is the same image: what SBOMs any of them hold about
    it is listed. Raises UnknownBuild and InvalidPackageQuery (a platform the build has not, too)."""
    digest, platform = _digest(digest), _platform_name(platform)
    size = max(1, min(size, MAX_PACKAGE_PAGE))
    builds = list(Build.objects.filter(digest=digest).order_by("-first_seen_at", "-pk"))
    platforms = Platform.objects.defer("layers", "config")
    if builds:
        platforms = list(platforms.filter(build__in=builds))
    else:  # a platform image's digest: that platform of its builds
        platforms = list(platforms.filter(digest=digest).select_related("build"))
        if not platforms:
            raise UnknownBuild(f"no watched repository has a build or platform image {digest}")
        builds = [found.build for found in platforms]
        named = {str(found) for found in platforms}
        if platform and platform not in named:
            raise InvalidPackageQuery(
                f"{digest} is the platform image {', '.join(sorted(named))}, not {platform}"
            )
        platform = platform or min(named)
    chosen = [found for found in platforms if not platform or str(found) == platform]
    if platform and not chosen:
        names = ", ".join(sorted({str(found) for found in platforms})) or "none"
        raise InvalidPackageQuery(f"{digest} has no platform {platform} (its platforms: {names})")
    attachments = Attachment.objects.filter(
        build__in=builds, kind=Attachment.Kind.SBOM, packages__isnull=False
    )
    if platform:
        attachments = attachments.filter(Q(platform__in=chosen) | Q(platform__isnull=True))
    rows = Package.objects.filter(pk__in=_members(attachments))
    if cursor is not None:
        rows = rows.filter(_after(cursor))
    found = list(rows.order_by("name", "version", "purl", "pk")[: size + 1])
    more = len(found) > size
    found = found[:size]
    return PackagePage(builds[0], platform, found, PackageCursor(found[-1].pk) if more else None)


def _after(cursor: PackageCursor) -> Q:
    """The packages after the cursor's in (name, version, purl, id) order; a cursor naming no
    package is a damaged one."""
    last = Package.objects.filter(pk=cursor.id).values_list("name", "version", "purl").first()
    if last is None:
        raise InvalidCursor
    name, version, purl = last
    return (
        Q(name__gt=name)
        | Q(name=name, version__gt=version)
        | Q(name=name, version=version, purl__gt=purl)
        | Q(name=name, version=version, purl=purl, pk__gt=cursor.id)
    )


def _members(attachments) -> RawSQL:
    """The package ids of these attachments' sets, for `pk__in`: the union, unpacked by the
    database (an SBOM may list 20 000 packages; no list of ids goes back and forth)."""
    set_ids = sorted({pk for pk in attachments.values_list("packages", flat=True) if pk is not None})
    if not set_ids:
        return RawSQL("SELECT 0 WHERE 1 = 0", [])  # no SBOM: no package
    marks = ", ".join(["%s"] * len(set_ids))
    if connection.vendor == "postgresql":
        members = (
            f"SELECT jsonb_array_elements(packages)::bigint FROM history_packageset WHERE id IN ({marks})"  # noqa: S608
        )
    else:
        members = f"SELECT m.value FROM history_packageset s, json_each(s.packages) m WHERE s.id IN ({marks})"  # noqa: S608
    return RawSQL(members, set_ids)  # noqa: S611 (only placeholders are interpolated)


# --- which builds contain a package ---------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A build containing the package: on which platforms, in which versions, and whether a tag
    points there now."""

    build: Build
    platforms: list[str]
    package_versions: list[str]
    current: bool

    def as_dict(self) -> dict:
        version = self.build.version
        return {
            "repository": self.build.repository.reference,
            "digest": self.build.digest,
            "version": version.name if version else None,
            "variant": version.variant if version else "",
            "platforms": self.platforms,
            "package_version": ", ".join(self.package_versions),
            "current": self.current,
        }


@dataclass(frozen=True)
class SearchPage:
    query: PackageQuery
    items: list[Found] = field(default_factory=list)
    next_cursor: Cursor | None = None

    def as_dict(self) -> dict:
        """The API's body, and `lookup --package --json`'s."""
        return {"items": [found.as_dict() for found in self.items], "next": token(self.next_cursor)}


def search(
    name: str | PackageQuery, version: str = "", cursor: Cursor | None = None, *, size: int = PAGE_SIZE
) -> SearchPage:
    """The builds whose SBOMs name the package, newest first, a keyset page at a time: `name` as
    parse_query() reads it (a name, name@version or a purl), `version` exactly when given.

    At most six queries whatever the page size: the package ids, the page's build ids (_page_ids:
    one or two), the builds, the SBOMs of those _page_ids did not read, their platforms."""
    query = name if isinstance(name, PackageQuery) else parse_query(name, version)
    size = max(1, min(size, MAX_PAGE))
    matching = _matching_packages(query)
    if not matching:
        return SearchPage(query)
    ids, read = _page_ids(matching.keys(), cursor, size + 1)
    current = TagState.objects.filter(build=OuterRef("pk"), present=True)
    found = list(
        Build.objects.filter(pk__in=ids)
        .select_related("repository__registry", "version")
        .annotate(current=Exists(current))
        .order_by("-first_seen_at", "-pk")
    )
    more = len(found) > size
    found = found[:size]
    items = _describe(found, matching, read)
    last = found[-1] if more else None
    return SearchPage(query, items, Cursor(last.first_seen_at, last.pk) if last else None)


# {build id: [(the platform id an SBOM is about or None, the package ids of its set)]}
Sboms = dict[int, list[tuple[int | None, list[int]]]]


def _page_ids(matching: Iterable[int], cursor: Cursor | None, wanted: int) -> tuple[list[int], Sboms]:
    """The ids of the `wanted` newest builds after `cursor` whose SBOMs hold any of `matching`,
    and the SBOMs of the builds it read.

    Two ways, because what each costs depends on how common the package is. The index gives every
    set that holds it, then every build of those sets is sorted for a page: for a package in most
    of a million builds, a million of each, however few a page shows. Reading the newest builds'
    sets costs what those builds are, whatever the package. So the newest WALK * `wanted` builds
    are read first, which fills a page of anything in a good share of current builds (openssl,
    zlib); only what they do not fill goes to the index, from where that reading stopped."""
    matching = set(matching)
    newest = Build.objects.order_by("-first_seen_at", "-pk")
    if cursor is not None:
        newest = newest.filter(RowBefore(cursor, ("first_seen_at", "pk")))
    sboms = Attachment.objects.filter(kind=Attachment.Kind.SBOM, packages__isnull=False)
    read: Sboms = {}
    positions, holding = set(), set()
    for build_id, at, platform_id, held in _held(
        sboms.filter(build__in=newest.values("pk")[: wanted * WALK]), matching
    ):
        read.setdefault(build_id, []).append((platform_id, held))
        positions.add((at, build_id))
        if held:
            holding.add((at, build_id))
    found = [pk for _, pk in sorted(holding, reverse=True)[:wanted]]
    if len(found) == wanted:
        return found, read
    # Rare in the newest builds: the rest from the sets that hold it, older than every build read
    # with an SBOM (those read without one hold nothing, wherever they are).
    older = Build.objects.all()
    if positions or cursor is not None:
        older = older.filter(
            RowBefore(Cursor(*min(positions)) if positions else cursor, ("first_seen_at", "pk"))
        )
    holders = sboms.filter(packages__in=_holding_any(sorted(matching))).values("build")
    rest = older.filter(pk__in=holders).order_by("-first_seen_at", "-pk")
    return found + list(rest.values_list("pk", flat=True)[: wanted - len(found)]), read


def _sboms(build_ids: list[int], matching: set[int]) -> Sboms:
    """The matching package ids of each SBOM of these builds, in one query."""
    found: Sboms = {}
    sboms = Attachment.objects.filter(build__in=build_ids, kind=Attachment.Kind.SBOM, packages__isnull=False)
    for build_id, _, platform_id, held in _held(sboms, matching):
        found.setdefault(build_id, []).append((platform_id, held))
    return found


def _held(sboms, matching: set[int]) -> Iterable[tuple[int, datetime, int | None, list[int]]]:
    """(build id, when it was first seen, the platform id or None, which of `matching` its set
    holds) of each of these SBOM attachments.

    On PostgreSQL a query of one or two package versions (name@version, a purl) asks each set in
    the database, one `@>` a package: sending a set of 300 ids costs the database about 65 µs,
    as jsonb keeps numbers as numerics and writes each one out, and a check about 17 µs, as it
    decompresses the set again. More versions, and SQLite, read the sets instead (as plain
    values: model instances of a hundred sets would cost three times as much)."""
    columns = ("build_id", "build__first_seen_at", "platform_id")
    if connection.vendor == "postgresql" and len(matching) <= PROBES:
        cases = ", ".join(["CASE WHEN s.packages @> %s::jsonb THEN %s::bigint END"] * len(matching))
        sql = (
            f"SELECT array_remove(ARRAY[{cases}], NULL) FROM history_packageset s "  # noqa: S608
            "WHERE s.id = history_attachment.packages_id"
        )
        values = [value for pk in sorted(matching) for value in (f"[{int(pk)}]", int(pk))]
        held = RawSQL(sql, values)  # noqa: S611 (only placeholders are interpolated)
        yield from sboms.annotate(held=held).values_list(*columns, "held")
        return
    for *row, ids in sboms.values_list(*columns, "packages__packages"):
        yield *row, [pk for pk in ids if pk in matching]


def _matching_packages(query: PackageQuery) -> dict[int, str]:
    """{Package id: its version} of the packages the query names, by the (lower(name), version) index."""
    names = query.names or (query.name,)
    rows = Package.objects.alias(lower_name=Lower("name")).filter(
        Q.create([("lower_name", Lower(Value(one))) for one in names], connector=Q.OR)
    )
    if query.version:
        rows = rows.filter(version=query.version)
    if query.type:
        rows = rows.filter(type=query.type)
    return dict(rows.values_list("pk", "version"))


def _holding_any(ids: list[int]) -> RawSQL:
    """The ids of the sets holding any of `ids`, for `pk__in`."""
    if connection.vendor == "postgresql":
        # One probe of the exact GIN index package_set_members (migration 0013) for all of them.
        # OFFSET 0 keeps it one step, done first: inlined, the planner walked the newest builds
        # instead, expanding each one's set (70 µs) to test it, 150 ms for an older version.
        holding = "SELECT id FROM history_packageset WHERE package_set_ids(packages) && %s::bigint[] OFFSET 0"
        return RawSQL(holding, [[int(pk) for pk in ids]])  # noqa: S611 (only placeholders are interpolated)
    # SQLite has no containment for JSON: every set's members are read (json_each).
    marks = ", ".join(["%s"] * len(ids))
    members = f"SELECT s.id FROM history_packageset s, json_each(s.packages) m WHERE m.value IN ({marks})"  # noqa: S608
    return RawSQL(members, ids)  # noqa: S611 (only placeholders are interpolated)


def _describe(builds: list[Build], matching: dict[int, str], read: Sboms) -> list[Found]:
    """Each build's platforms whose SBOMs hold a matching package, and the versions held: from
    the SBOMs _page_ids read, and one query for those of builds it found in the index, one for
    the builds' platforms."""
    if not builds:
        return []
    if missing := [build.pk for build in builds if build.pk not in read]:
        read = {**read, **_sboms(missing, set(matching))}
    platforms: dict[int, list[tuple[int, str]]] = {build.pk: [] for build in builds}
    rows = Platform.objects.filter(build__in=builds).values_list(
        "build_id", "pk", "os", "architecture", "variant"
    )
    for build_id, pk, *parts in rows.order_by("os", "architecture", "variant", "pk"):
        platforms[build_id].append(
            (pk, "/".join(part for part in parts if part) or "unknown")
        )  # as str(Platform)
    found = []
    for build in builds:
        names: set[str] = set()
        versions: set[str] = set()
        for platform_id, ids in read.get(build.pk, []):
            held = {matching[pk] for pk in ids if pk in matching}
            if held:
                versions |= held
                # An SBOM of the build's own digest is about every platform of it.
                names |= {name for pk, name in platforms[build.pk] if platform_id in (None, pk)}
        found.append(Found(build, sorted(names), sorted(versions), build.current))
    return found
