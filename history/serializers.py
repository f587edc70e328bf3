"""One JSON shape per result, whichever door shows it: the API's bodies and `manage.py lookup --json`.

Each function takes what a reader returns (lines.TagPage and Row, changelog.Page,
versions.DigestHistory, search.LookupResult,
tag_history.TagHistory, supply_chain.SupplyChain) and gives plain values, described by the schemas
in api_schemas.py. Times stay datetimes, written with all their digits by `ExactTimes`. Where a
shape shows more than the reader loaded (a build's last sighting, its attestations), it is read
here for the whole page in one query, so every door pays the same and no door can differ.
"""

from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from catalog.models import Repository

from .changelog import Page
from .digests import image_id
from .keyset import Cursor, NameCursor
from .lines import Row, TagPage
from .models import Attestation, Build, HeldTag, Platform, TagEvent
from .search import LookupResult, Match, TagHit
from .supply_chain import PlatformSupply, SupplyChain
from .tag_history import Period, TagHistory
from .versions import BuildRow, DigestHistory


class ExactTimes(DjangoJSONEncoder):
    """Times with all their digits: Django's encoder cuts microseconds, and readers pass them back."""

    def default(self, o):
        if isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


def paged(items: list, next_cursor: Cursor | NameCursor | None) -> dict:
    """Every paged list: `{"items": [...], "next": <opaque cursor or null>}` (CONVENTIONS.md, 14)."""
    return {"items": items, "next": token(next_cursor)}


def token(cursor: Cursor | NameCursor | None) -> str | None:
    """The opaque `next` a reader passes back as `cursor`; None on the last page."""
    return cursor.encode() if cursor else None


def last_seen(builds: list[Build]) -> dict[int, datetime]:
    return Build.objects.filter(pk__in=[build.pk for build in builds]).last_seen()


def held_tag(held: HeldTag) -> dict:
    return {"tag": held.tag, "from": held.since, "until": held.until}


def platform(platform: Platform) -> dict:
    return {
        "os": platform.os,
        "architecture": platform.architecture,
        "variant": platform.variant,
        "digest": platform.digest,
        "config_digest": platform.config_digest,
        "image_id": image_id(platform.config_digest),
    }


# --- repositories, tags, versions -----------------------------------------------------------------


def repository(repository: Repository) -> dict:
    """A repository annotated by models.with_poll_health."""
    return {
        "id": repository.pk,
        "reference": repository.reference,
        "registry": repository.registry.host,
        "name": repository.name,
        "last_poll_at": repository.last_poll_at,
        "last_poll_status": repository.last_poll_status,
        "tag_count": repository.tag_count,
        "artifact_count": repository.artifact_count,
    }


def tag_page(page: TagPage) -> dict:
    return paged(
        [
            {
                "name": tag.name,
                "kind": tag.kind,
                "version": tag.version or None,
                "variant": tag.variant,
                "digest": tag.digest,
                "since": tag.since,
            }
            for tag in page.items
        ],
        page.next,
    )


def version_row(row: Row) -> dict:
    """A settled row of the repository page (lines.settle)."""
    return {
        "version": row.name,
        "line": row.line,
        "variant": row.variant,
        "tags": row.tags,
        "current_digest": row.digest or None,
        "build_count": row.build_count,
        "inactive": row.inactive,
    }


# --- changes --------------------------------------------------------------------------------------


def event(event: TagEvent) -> dict:
    """An event whose builds changelog.page filled in (with_builds)."""
    return {
        "tag": event.tag.name,
        "kind": event.kind,
        "digest": event.build.digest if event.build else None,
        "previous_digest": event.previous_build.digest if event.previous_build else None,
        "detected_at": event.detected_at,
        "not_before": event.not_before,
        "imported": event.imported,
        "signing": getattr(event, "signing", None),  # changelog.page reads it for the page
    }


def changelog_page(page: Page) -> dict:
    """A page of the changelog; `events`, not `items`: the shape the API had before paged lists
    took one, kept for its readers."""
    return {
        "events": [event(found) for found in page.events],
        "next": token(page.next_cursor),
    }


# --- a version's digest history -------------------------------------------------------------------


def digest_history(history: DigestHistory) -> dict:
    """A page of builds: two queries more than the reader's, whatever the page size."""
    builds = [row.build for row in history.rows]
    seen = last_seen(builds)
    attestations = Attestation.objects.of_builds(builds)
    return paged(
        [build_row(row, seen[row.build.pk], attestations[row.build.pk]) for row in history.rows],
        history.next_cursor,
    )


def build_row(row: BuildRow, last_seen: datetime, attestations: list[Attestation]) -> dict:
    return {
        "digest": row.build.digest,
        "timestamp_tag": row.timestamp_tag or None,
        "first_seen": row.build.first_seen_at,
        "last_seen": last_seen,
        "tags": [held_tag(held) for held in row.held],
        "platforms": [platform(found) for found in row.platforms],
        "attestations": [attestation(found, row.platforms) for found in attestations],
    }


def attestation(attestation: Attestation, platforms: list[Platform]) -> dict:
    """`platforms`: its build's, already loaded."""
    described = next((p for p in platforms if p.pk == attestation.platform_id), None)
    return {
        "digest": attestation.digest,
        "media_type": attestation.media_type,
        "size": attestation.size,
        "subject": attestation.subject or None,
        "platform": str(described) if described else None,
        "predicate_types": attestation.predicate_types,
    }


# --- a tag's history ------------------------------------------------------------------------------


def tag_history(history: TagHistory) -> dict:
    """A page of a tag's periods: the reader's queries and no more."""
    return paged([period(row) for row in history.rows], history.next_cursor)


def period(row: Period) -> dict:
    build = row.build
    return {
        "digest": build.digest if build else None,
        "from": row.since,
        "until": row.until,
        "not_before": row.not_before,
        "version": str(build.version) if build and build.version else None,
        "timestamp_tag": row.timestamp_tag or None,
        "kind": row.kind,
        "build": build.pk if build else None,
        "previous_digest": row.event.previous_build.digest if row.event.previous_build else None,
        "pin": row.pin or None,
        "signing": getattr(row.event, "signing", None),  # tag_history reads it for the page
    }


# --- lookups --------------------------------------------------------------------------------------


def lookup(result: LookupResult) -> dict:
    """What a search found: the API's `search` body and `lookup --json`'s output, one query more
    than the lookup (the builds' last sightings). Builds are a keyset page (`truncated`: more
    matched, and `next` continues with them); names are not paged (a longer name narrows them)."""
    builds = [match.build for match in result.matches]
    seen = last_seen(builds)
    return {
        "query": result.query,
        "kind": result.kind,
        "truncated": result.truncated,
        "note": result.note or None,
        "items": [match(found, seen[found.build.pk]) for found in result.matches],
        "next": token(result.next_cursor),
        "names": {
            "repositories": [{"reference": found.reference} for found in result.names.repositories],
            "tags": [tag_hit(hit) for hit in result.names.tags],
            "versions": [
                {
                    "repository": version.repository.reference,
                    "version": version.name,
                    "variant": version.variant,
                    "builds": getattr(version, "build_count", None),
                }
                for version in result.names.versions
            ],
        },
    }


def match(match: Match, last_seen: datetime) -> dict:
    build = match.build
    return {
        "digest": build.digest,
        "matched": match.matched,
        "matched_digest": match.digest,
        "platform": str(match.platform) if match.platform else None,
        "image_id": match.image_id or None,
        "layer_platforms": [str(found) for found in match.layer_of],
        "repository": build.repository.reference,
        "reference": f"{build.repository.reference}@{build.digest}",
        "media_type": build.media_type,
        "version": str(build.version) if build.version else None,
        "created": build.created,
        "built_at": build.built_at,
        "first_seen": build.first_seen_at,
        "last_seen": last_seen,
        "platforms": [platform(found) for found in build.platforms.all()],
        "tags": [held_tag(held) for held in match.held],
        "url": reverse("history:build", args=[build.pk]),
    }


def tag_hit(hit: TagHit) -> dict:
    tag = hit.tag
    return {
        "repository": tag.repository.reference,
        "tag": tag.name,
        "reference": f"{tag.repository.reference}:{tag.name}",
        "kind": tag.kind,
        "digest": hit.build.digest if hit.build else None,
        "present": hit.present,
    }


# --- a build's supply chain -----------------------------------------------------------------------


def build_supply(chain: SupplyChain, held: list[HeldTag]) -> dict:
    """`GET /api/v1/builds/{digest}`: the build, the tags it held, and its supply chain as the
    build page shows it (history.supply_chain.for_build), no query of its own."""
    build = chain.build
    return {
        "digest": build.digest,
        "repository": build.repository.reference,
        "version": build.version.name if build.version else None,
        "variant": build.version.variant if build.version else "",
        "media_type": build.media_type,
        "first_seen": build.first_seen_at,
        "tags": [held_tag(found) for found in held],
        "platforms": [{**platform(found.platform), **supply(found)} for found in chain.by_platform],
        "build_itself": supply(chain.platforms[None]),
        "signatures": [signature.as_dict() for signature in chain.signatures],
        "url": reverse("history:build", args=[build.pk]),
    }


def supply(found: PlatformSupply) -> dict:
    return {
        "attestations": [statement.as_dict() for statement in found.attestations],
        "packages_count": found.packages_count,
        "sboms": [sbom.as_dict() for sbom in found.sboms],
        "provenance": [provenance.as_dict() for provenance in found.provenance],
        "vulnerabilities": [report.as_dict() for report in found.vulnerabilities],
        "unreadable": [unreadable.as_dict() for unreadable in found.unreadable],
    }
