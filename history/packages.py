"""Packages of builds: SBOM packages stored once as sets of ids, and the readers of them.

A platform's SBOM becomes one PackageSet (its Package ids, ascending): rebuilds that change no
package share a set, and a package version is one Package row however many builds contain it.
"""

from collections.abc import Iterable
from hashlib import sha256

from .models import Package, PackageSet

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
