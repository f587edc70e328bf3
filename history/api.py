"""The read-only JSON API under /api/v1/: repositories, tags, events, versions, builds, search, compare, pins.

Same readers as the pages (everyone when TAGLEDGER_PUBLIC, else signed-in users); GET only;
every error is `{"detail": "..."}`. Each list costs a fixed number of queries, whatever its size.
"""

from datetime import datetime
from typing import Annotated

from django.conf import settings
from django.core import signing
from django.urls import reverse
from ninja import NinjaAPI, Path, Query, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import SessionAuth
from pydantic import BeforeValidator

from catalog.models import Repository, Version

from . import api_schemas as out
from . import compare as diff
from . import params
from .changelog import InvalidFilter, without_artifacts
from .keyset import Cursor, InvalidCursor, NameCursor, RowBefore
from .lines import MAX_TAG_PAGE, TAG_PAGE, parse_query, tag_page, version_rows
from .models import Attestation, Build, TagEvent, with_builds, with_poll_health
from .pins import PinError, check
from .search import InvalidQuery, image_id, lookup
from .versions import BuildRow, ordered_builds

DEFAULT_PAGE, MAX_PAGE = 50, 200
# What stored tag, version and variant names are made of; anything else names nothing here.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"
VARIANT_PATTERN = r"^[A-Za-z0-9._-]*$"
CURSOR_SALT = "tagledger.api.events"
ERRORS = {400: out.Error, 401: out.Error, 404: out.Error}


class Readers(SessionAuth):
    """The pages' rule: anyone when TAGLEDGER_PUBLIC is set, otherwise a signed-in Django session."""

    def authenticate(self, request, key):
        if settings.TAGLEDGER_PUBLIC:
            return True
        return request.user if request.user.is_authenticated else None


class ExactTimes(NinjaJSONEncoder):
    """Times with all their digits: Django's encoder cuts microseconds, and readers pass them back."""

    def default(self, o):
        if isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


class Renderer(JSONRenderer):
    encoder_class = ExactTimes


def _docs_url() -> str | None:
    # Without the app installed, ninja's docs page loads Swagger from a CDN, which the CSP forbids.
    return "/docs" if "ninja" in settings.INSTALLED_APPS else None


class ReadOnlyAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """Built per request, so it says whether this instance lets anonymous readers in."""
        schema = super().get_openapi_schema(**kwargs)
        if settings.TAGLEDGER_PUBLIC:
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["security"] = [{}, *operation.get("security", [])]
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__


api = ReadOnlyAPI(
    title="tagledger",
    version="1",
    description=__doc__,
    urls_namespace="api",
    auth=Readers(),
    renderer=Renderer(),
    docs_url=_docs_url(),
    default_router=Router(by_alias=True),  # HeldTagOut's `from` is a Python keyword
)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, error):
    return api.create_response(request, {"detail": "authentication required"}, status=401)


@api.exception_handler(ValidationError)
def _invalid(request, error):
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'request'}: {problem['msg']}"
        for problem in error.errors
    )
    return api.create_response(request, {"detail": problems}, status=400)


# --- parameters ---------------------------------------------------------------------------------


def _strictly(parser):
    """A BeforeValidator reading text with `parser` (history.params): pydantic alone takes
    ` 1 `, `1_000` and `1.0` for 1, and `1700000000` for a date; one reading for pages and API."""

    def validate(value: object) -> object:
        return parser(value) if isinstance(value, str) else value

    return BeforeValidator(validate)


Id = Annotated[int, _strictly(params.positive_id), Path(ge=1, le=params.MAX_ID)]
Instant = Annotated[datetime, _strictly(params.instant)]


# --- endpoints ----------------------------------------------------------------------------------


@api.get("repositories", response={200: list[out.RepositoryOut], **ERRORS})
def repositories(request):
    """Every watched repository, with its current tag count and its latest poll."""
    found = with_poll_health(Repository.objects.select_related("registry")).order_by("registry__host", "name")
    return [_repository(repository) for repository in found]


@api.get("repositories/{id}/tags", response={200: out.TagPage, **ERRORS})
def tags(
    request,
    id: Id,
    q: Annotated[str, Query(max_length=200, description="Part of the tag name.")] = "",
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TAG_PAGE), _strictly(params.number)] = TAG_PAGE,
):
    """The tags present now and the build each points to, by name, a keyset page at a time (the
    repository page's list): ask again with `cursor=<next>`. Signatures and other artifacts left out."""
    repository = _repository_or_404(id)
    try:
        found = tag_page(
            repository, q=parse_query(q), cursor=NameCursor.decode(cursor) if cursor else None, size=limit
        )
    except InvalidFilter as invalid:
        raise HttpError(400, str(invalid)) from None
    except InvalidCursor as invalid:
        raise HttpError(400, f"cursor: {invalid}") from None
    return {
        "items": [
            {
                "name": tag.name,
                "kind": tag.kind,
                "version": tag.version or None,
                "variant": tag.variant,
                "digest": tag.digest,
                "since": tag.since,
            }
            for tag in found.items
        ],
        "next": found.next.encode() if found.next else None,
    }


@api.get("repositories/{id}/events", response={200: out.EventPage, **ERRORS})
def events(
    request,
    id: Id,
    tag: Annotated[str | None, Query(max_length=128, pattern=NAME_PATTERN)] = None,
    kind: out.EventKind | None = None,
    since: Annotated[
        Instant | None, Query(description="Detected at or after (ISO 8601; naive is UTC).")
    ] = None,
    until: Annotated[Instant | None, Query(description="Detected before (ISO 8601; naive is UTC).")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), _strictly(params.number)] = DEFAULT_PAGE,
    artifacts: Annotated[
        bool,
        Query(description="Include artifact tags (cosign `sha256-….sig`, `.att`, `.sbom`; referrers)."),
    ] = False,
):
    """Tag changes, newest first, a keyset page at a time: ask again with `cursor=<next>` for older ones.

    Signatures and other artifact tags are left out unless `artifacts=true`, as on the changelog."""
    repository = _repository_or_404(id)
    if since and until and until < since:
        raise HttpError(400, "until: must not be before since")
    found = TagEvent.objects.newest_first().filter(tag__repository=repository)
    if tag:
        found = found.filter(tag__name=tag)
    if kind:
        found = found.filter(kind=kind)
    if not artifacts:
        found = without_artifacts(found, repository.pk)
    if since:
        found = found.filter(detected_at__gte=since)
    if until:
        found = found.filter(detected_at__lt=until)
    if cursor:
        found = found.filter(RowBefore(_read_cursor(cursor, repository)))
    rows = list(found[: limit + 1])
    page, more = with_builds(rows[:limit]), len(rows) > limit
    return {
        "events": [
            {
                "tag": event.tag.name,
                "kind": event.kind,
                "digest": event.build.digest if event.build else None,
                "previous_digest": event.previous_build.digest if event.previous_build else None,
                "detected_at": event.detected_at,
                "not_before": event.not_before,
            }
            for event in page
        ],
        "next": _write_cursor(page[-1], repository) if more else None,
    }


@api.get("repositories/{id}/versions", response={200: list[out.VersionOut], **ERRORS})
def versions(request, id: Id):
    """Every version and variant as the repository page's rows: by line, newest version first, each
    at its current build (where the tag naming it points) with the tags on that build."""
    repository = _repository_or_404(id)
    return [
        {
            "version": row.name,
            "line": row.line,
            "variant": row.variant,
            "tags": row.tags,
            "current_digest": row.digest or None,
            "build_count": row.build_count,
            "inactive": row.inactive,
        }
        for row in version_rows(repository)
    ]


@api.get("repositories/{id}/versions/{version}/builds", response={200: list[out.BuildOut], **ERRORS})
def builds(
    request,
    id: Id,
    version: Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)],
    variant: Annotated[str, Query(max_length=128, pattern=VARIANT_PATTERN)] = "",
):
    """A version's digest history, newest build first: the tags each held and when, its platforms
    and their attestations."""
    repository = _repository_or_404(id)
    found = Version.objects.filter(repository=repository, name=version, variant=variant).first()
    if found is None:
        named = f"{version}-{variant}" if variant else version
        raise HttpError(404, f"{repository.reference} has no version {named}")
    history = list(ordered_builds(found))
    held = TagEvent.objects.held(history)
    last_seen = Build.objects.filter(pk__in=[build.pk for build in history]).last_seen()
    attestations = Attestation.objects.of_builds(history)
    rows = [BuildRow(build, held[build.pk], None) for build in history]
    return [
        {
            "digest": row.build.digest,
            "timestamp_tag": row.timestamp_tag or None,
            "first_seen": row.build.first_seen_at,
            "last_seen": last_seen[row.build.pk],
            "tags": [_held(tag) for tag in row.held],
            "platforms": [
                {
                    "os": platform.os,
                    "architecture": platform.architecture,
                    "variant": platform.variant,
                    "digest": platform.digest,
                    "image_id": image_id(platform.config_digest),
                }
                for platform in row.platforms
            ],
            "attestations": [
                _attestation(attestation, row.platforms) for attestation in attestations[row.build.pk]
            ],
        }
        for row in rows
    ]


@api.get("search", response={200: out.SearchOut, **ERRORS})
def search(
    request,
    q: Annotated[str, Query(description="A digest, digest fragment, image ID, reference or name.")],
):
    """What the search page finds: builds by digest, fragment, image ID or reference; else names."""
    try:
        result = lookup(q)
    except InvalidQuery as invalid:
        raise HttpError(400, str(invalid)) from None
    found = [match.build for match in result.matches]
    last_seen = Build.objects.filter(pk__in=[build.pk for build in found]).last_seen()
    named = result.as_dict()
    return {
        "query": result.query,
        "kind": result.kind,
        "truncated": result.truncated,
        "matches": [
            {
                "digest": match.build.digest,
                "matched": match.matched,
                "matched_digest": match.digest,
                "platform": str(match.platform) if match.platform else None,
                "repository": match.build.repository.reference,
                "version": str(match.build.version) if match.build.version else None,
                "tags": [_held(tag) for tag in match.held],
                "first_seen": match.build.first_seen_at,
                "last_seen": last_seen[match.build.pk],
                "url": reverse("history:build", args=[match.build.pk]),
            }
            for match in result.matches
        ],
        "names": named["names"],
    }


@api.get("compare", response={200: out.CompareOut, 400: out.CompareError, 401: out.Error, 404: out.Error})
def compare(
    request,
    a: Annotated[
        str, Query(max_length=diff.MAX_TEXT, description="The older build: digest, prefix or reference.")
    ],
    b: Annotated[str, Query(max_length=diff.MAX_TEXT, description="The newer build, named the same ways.")],
):
    """What changed from build `a` to build `b`: platforms, layers, config, env, labels, annotations."""
    builds = []
    for side, text in (("a", a), ("b", b)):
        try:
            builds.append(diff.resolve(text))
        except diff.CompareError as error:
            candidates = [diff.choice(build) for build in error.candidates]
            body = {"detail": f"{side}: {error}", "candidates": candidates}
            return api.create_response(request, body, status=400)
    return diff.compare(*builds).as_dict()


@api.get("pins", response={200: list[out.PinOut], **ERRORS})
def pins(
    request,
    ref: Annotated[
        list[str],
        Query(description="A pinned reference (name:tag@digest), or a Dockerfile/compose line; repeatable."),
    ],
):
    """Whether each pinned reference is its tag's current build, behind it, or no build of it at all."""
    try:
        results = check(ref)
    except PinError as error:
        raise HttpError(400, f"ref: {error}") from None
    return [result.as_dict() for result in results]


# --- helpers ------------------------------------------------------------------------------------


def _repository_or_404(pk: int) -> Repository:
    repository = Repository.objects.select_related("registry").filter(pk=pk).first()
    if repository is None:
        raise HttpError(404, f"no repository with id {pk}")
    return repository


def _repository(repository: Repository) -> dict:
    return {
        "id": repository.pk,
        "reference": repository.reference,
        "registry": repository.registry.host,
        "name": repository.name,
        "last_poll_at": repository.last_poll_at,
        "last_poll_status": repository.last_poll_status,
        "tag_count": repository.tag_count,
    }


def _attestation(attestation: Attestation, platforms: list) -> dict:
    """An attestation as out.AttestationOut; `platforms`: its build's, already loaded."""
    platform = next((p for p in platforms if p.pk == attestation.platform_id), None)
    return {
        "digest": attestation.digest,
        "media_type": attestation.media_type,
        "size": attestation.size,
        "subject": attestation.subject or None,
        "platform": str(platform) if platform else None,
        "predicate_types": attestation.predicate_types,
    }


def _held(held) -> dict:
    return {"tag": held.tag, "from": held.since, "until": held.until}


def _write_cursor(event: TagEvent, repository: Repository) -> str:
    return signing.dumps([repository.pk, Cursor(event.detected_at, event.pk).encode()], salt=CURSOR_SALT)


def _read_cursor(token: str, repository: Repository) -> Cursor:
    """The position a `next` of this repository's events names; anything else is a 400."""
    try:
        repository_id, position = signing.loads(token, salt=CURSOR_SALT)
        if repository_id != repository.pk:
            raise ValueError
        return Cursor.decode(position)
    except (signing.BadSignature, ValueError, TypeError):
        raise HttpError(400, "cursor: not a `next` of these events; start again without it") from None
