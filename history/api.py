"""The JSON API under /api/v1/: repositories, tags, events, versions, builds, search, compare, pins,
saved pin lists; for staff, notification subscriptions and their delivery log.

Same readers as the pages (everyone when TAGLEDGER_PUBLIC, else signed-in users), or an API token sent
as `Authorization: Bearer <token>`. A write (POST, PUT, DELETE) needs a signed-in session (with its CSRF
token) or a token with staff scope; subscriptions and deliveries are staff only on every instance, reads
too (they hold webhook URLs and secrets). Every error is `{"detail": "..."}`. Each list costs a
fixed number of queries, whatever its size. Paged lists answer `{"items": [...], "next": ...}`: pass
`next` back as `cursor` for the next page.
"""

# (The docstring above is the OpenAPI description.) Each endpoint reads its parameters, calls the
# reader its page calls, and answers with that result's one serializer (history/serializers.py).

from datetime import datetime
from functools import partial
from typing import Annotated

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from ninja import NinjaAPI, Path, Query, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import SessionAuth
from pydantic import BeforeValidator

from catalog.models import Repository, Version
from tagledger.tokens.auth import TokenAuthenticationError, bearerAuth

from . import api_notifications, api_pin_lists, packages, params, supply_chain
from . import api_schemas as out
from . import compare as diff
from . import serializers as serialize
from . import tag_history as history
from .changelog import ChangelogFilter, InvalidFilter, page
from .keyset import Cursor, InvalidCursor, NameCursor
from .lines import MAX_TAG_PAGE, TAG_CURSORS, TAG_PAGE, parse_query, tag_page, version_rows
from .models import Build, Platform, TagEvent, with_poll_health
from .pin_gate import Policy, gate
from .pins import PinError, check
from .search import InvalidQuery, lookup
from .versions import digest_history

DEFAULT_PAGE, MAX_PAGE = 50, 200
# Builds are tall (every tag each held, platforms, attestations): a page of 50 costs 0.65 times
# the version page's 25 rows and timeline, 100 of them about as much (BENCHMARKS.md, Pages: api_builds).
MAX_BUILD_PAGE = 100
MAX_BEHIND = 10_000  # a pins check's max_behind: more than any tag's builds
# What stored tag, version and variant names are made of; anything else names nothing here.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"
VARIANT_PATTERN = r"^[A-Za-z0-9._-]*$"
DIGEST_PATTERN = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"  # catalog.oci.manifest's
ERRORS = {400: out.Error, 401: out.Error, 404: out.Error}
READERS = [{"bearerAuth": []}, {"Readers": []}]  # the readers' security; the staff-only endpoints differ


class Readers(SessionAuth):
    """The pages' rule: anyone when TAGLEDGER_PUBLIC is set, otherwise a signed-in Django session."""

    def authenticate(self, request, key):
        if settings.TAGLEDGER_PUBLIC:
            return True
        return request.user if request.user.is_authenticated else None


class ExactTimes(serialize.ExactTimes, NinjaJSONEncoder):
    """The serializers' times, and ninja's schemas."""


class Renderer(JSONRenderer):
    encoder_class = ExactTimes


def _docs_url() -> str | None:
    # Without the app installed, ninja's docs page loads Swagger from a CDN, which the CSP forbids.
    return "/docs" if "ninja" in settings.INSTALLED_APPS else None


class ReadOnlyAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """Built per request, so it says whether this instance lets anonymous readers in: on a public
        one a read needs no credentials and is never refused with 401, so the document declares
        neither (Swagger would draw a lock on every endpoint and offer an Authorize button)."""
        schema = super().get_openapi_schema(**kwargs)
        if settings.TAGLEDGER_PUBLIC:
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if operation.get("security") != READERS:
                        continue  # a write, or staff only (notifications): credentials on every instance
                    operation.pop("security", None)
                    for status in (401, "401"):  # int keys until the document is rendered
                        operation.get("responses", {}).pop(status, None)
            used = {
                name
                for operations in schema["paths"].values()
                for operation in operations.values()
                for requirement in operation.get("security", [])
                for name in requirement
            }
            schemes = schema.get("components", {}).get("securitySchemes", {})
            for name in [name for name in schemes if name not in used]:
                del schemes[name]
            if not schemes:
                schema.get("components", {}).pop("securitySchemes", None)
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__


api = ReadOnlyAPI(
    title="tagledger",
    version="1",
    description=__doc__,
    urls_namespace="api",
    # A token first, so a request that sends one acts as its user and scope even with a session.
    auth=[bearerAuth(), Readers()],
    renderer=Renderer(),
    docs_url=_docs_url(),
    default_router=Router(by_alias=True),  # HeldTagOut's `from` is a Python keyword
)
api.add_router("", api_notifications.router)  # staff only: its own auth (history/api_notifications.py)
api.add_router("", api_pin_lists.router)  # reads as every endpoint; writes need a session or staff token


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, error):
    detail = error.detail if isinstance(error, TokenAuthenticationError) else "authentication required"
    return api.create_response(request, {"detail": detail}, status=401)


@api.exception_handler(ValidationError)
def _invalid(request, error):
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'request'}: {problem['msg']}"
        for problem in error.errors
    )
    return api.create_response(request, {"detail": problems}, status=400)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, error):
    # Django's own answer would be an HTML page: a JSON body of a write is capped by its settings.
    detail = f"request body: larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    return api.create_response(request, {"detail": detail}, status=400)


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
    return [serialize.repository(repository) for repository in found]


@api.get("repositories/{id}/tags", response={200: out.TagPage, **ERRORS})
def tags(
    request,
    id: Id,
    q: Annotated[str, Query(max_length=200, description="Part of the tag name.")] = "",
    sort: Annotated[
        out.TagSort,
        Query(
            description="`name`; `changed`: the tag that moved last first; `kind`: latest, channels, "
            "versions, minors, majors, timestamps, the rest, each by name."
        ),
    ] = "name",
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next` of the previous page, in the same `sort`.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TAG_PAGE), _strictly(params.number)] = TAG_PAGE,
):
    """The tags present now and the build each points to, by name unless sorted otherwise, a keyset
    page at a time (the repository page's list): ask again with `cursor=<next>`. Signatures and other
    artifacts left out."""
    repository = _repository_or_404(id)
    try:
        query = parse_query(q)
    except InvalidFilter as invalid:
        raise HttpError(400, str(invalid)) from None
    found = tag_page(repository, q=query, sort=sort, cursor=_cursor(TAG_CURSORS[sort], cursor), size=limit)
    return serialize.tag_page(found)


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

    The changelog's reader and cursor: signatures and other artifact tags are left out unless
    `artifacts=true`, as on the changelog, and a `next` continues the changelog page it names."""
    repository = _repository_or_404(id)
    if since and until and until < since:
        raise HttpError(400, "until: must not be before since")
    changelog = ChangelogFilter(
        repository=repository.pk,
        tag=tag or "",
        kind=kind or "",
        since=since,
        until=until,
        artifacts=artifacts,
    )
    return serialize.changelog_page(page(changelog, _cursor(Cursor, cursor), size=limit))


@api.get("repositories/{id}/versions", response={200: list[out.VersionOut], **ERRORS})
def versions(request, id: Id):
    """Every version and variant as the repository page's rows: by line, newest version first, each
    at its current build (where the tag naming it points) with the tags on that build."""
    return [serialize.version_row(row) for row in version_rows(_repository_or_404(id))]


@api.get("repositories/{id}/versions/{version}/builds", response={200: out.BuildPage, **ERRORS})
def builds(
    request,
    id: Id,
    version: Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)],
    variant: Annotated[str, Query(max_length=128, pattern=VARIANT_PATTERN)] = "",
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BUILD_PAGE), _strictly(params.number)] = DEFAULT_PAGE,
):
    """A version's digest history, newest build first, a keyset page at a time (the version page's):
    the tags each held and when, its platforms and their attestations. Ask again with
    `cursor=<next>` for older builds."""
    repository = _repository_or_404(id)
    found = Version.objects.filter(repository=repository, name=version, variant=variant).first()
    if found is None:
        named = f"{version}-{variant}" if variant else version
        raise HttpError(404, f"{repository.reference} has no version {named}")
    return serialize.digest_history(digest_history(found, _cursor(Cursor, cursor), size=limit))


@api.get(
    "repositories/{id}/tags/{name}/history",
    response={200: out.TagHistoryPage, **ERRORS},
    url_name="tag_history",
)
def tag_history(
    request,
    id: Id,
    name: Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)],
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=history.MAX_PAGE), _strictly(params.number)] = history.PAGE_SIZE,
):
    """Every digest a tag held, newest first, a keyset page at a time (the tag page's): from when
    until when, and the window in which each move happened. A deleted or untracked period has
    `digest` null. Ask again with `cursor=<next>` for older periods."""
    repository = _repository_or_404(id)
    found = history.find(repository, name)
    if found is None:
        raise HttpError(404, f"{repository.reference} has no tag {name}")
    return serialize.tag_history(history.tag_history(found, _cursor(Cursor, cursor), size=limit))


@api.get(
    "builds/{digest}",
    response={200: out.BuildSupplyOut, 409: out.AmbiguousOut, **ERRORS},
    url_name="build",
)
def build(
    request,
    digest: Annotated[
        str, Path(max_length=200, pattern=DIGEST_PATTERN, description="The build's digest: sha256:<64 hex>.")
    ],
    repository: Annotated[
        str,
        Query(
            max_length=diff.MAX_TEXT,
            description="registry/name, as `reference` in /repositories: the one to read when the same "
            "digest is recorded in several (else 409 lists them).",
        ),
        _strictly(partial(params.text, max_length=diff.MAX_TEXT, what="repository")),
    ] = "",
):
    """One build: its repository, version, the tags it held, its platforms, and its supply chain as
    the build page shows it: signatures, and per platform the attestations, SBOMs (`packages_count`),
    provenance and vulnerability counts. 404 when no watched repository has a build with that digest
    (a platform image's digest is not a build's: the answer names its build)."""
    builds = Build.objects.filter(digest=digest).select_related("repository__registry", "version")
    if repository:
        host, _, name = repository.partition("/")
        builds = builds.filter(repository__registry__host=host, repository__name=name)
    found = list(builds.order_by("repository__registry__host", "repository__name")[: diff.MAX_CANDIDATES])
    if not found:
        raise HttpError(404, _no_build(digest, repository))
    if len(found) > 1:
        candidates = [one.repository.reference for one in found]
        body = {
            "detail": f"{digest} is recorded in {len(found)} repositories: pass one as `repository`",
            "candidates": candidates,
        }
        return api.create_response(request, body, status=409)
    (chosen,) = found
    return serialize.build_supply(supply_chain.for_build(chosen), TagEvent.objects.held([chosen])[chosen.pk])


@api.get("search", response={200: out.SearchOut, **ERRORS})
def search(
    request,
    q: Annotated[
        str,
        Query(
            description="A digest (a build's, platform's, config's or layer's), its first 4+ hex or 8+ from "
            "inside it, an image ID, a reference (name:tag, name@digest, with or without registry host and "
            "library/), or a name."
        ),
    ],
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
):
    """What the search page finds: builds by digest, fragment, image ID or reference, newest first
    as `items`, 50 a page (ask again with `cursor=<next>` for older ones); else repositories, tags
    and versions by name as `names`. The same body as `manage.py lookup --json`."""
    try:
        result = lookup(q, cursor=_cursor(Cursor, cursor))
    except InvalidQuery as invalid:
        raise HttpError(400, str(invalid)) from None
    return serialize.lookup(result)


@api.get("compare", response={200: out.CompareOut, 400: out.CompareError, 401: out.Error, 404: out.Error})
def compare(
    request,
    a: Annotated[
        str,
        Query(
            max_length=diff.MAX_TEXT,
            description="The older build: a digest or its first 4+ hex, a reference (name:tag, name@digest, "
            "name:tag@digest, with or without registry host), or a tag or version alone.",
        ),
    ],
    b: Annotated[str, Query(max_length=diff.MAX_TEXT, description="The newer build, named the same ways.")],
    a_at: Annotated[
        str,
        Query(
            max_length=40,
            description="With a tag in `a`: the build it held then. A date (the end of that day, UTC) "
            "or an ISO 8601 date and time (UTC unless it has an offset).",
        ),
    ] = "",
    b_at: Annotated[str, Query(max_length=40, description="The same for `b`.")] = "",
    repository: Annotated[
        str,
        Query(max_length=diff.MAX_TEXT, description="Where a tag or version given alone is looked for."),
    ] = "",
):
    """What changed from build `a` to build `b`: platforms, layers, config, env, labels, annotations."""
    a_side, b_side = diff.sides(a, b, a_at=a_at, b_at=b_at, repository=repository)
    for side in (a_side, b_side):
        if side.build is None:
            error = side.error or diff.UNNAMED
            candidates = [value for value, _ in side.choices]
            body = {"detail": f"{side.name}: {error}", "candidates": candidates}
            return api.create_response(request, body, status=400)
    return diff.compare(a_side.build, b_side.build).as_dict()


@api.get("builds/{digest}/packages", response={200: out.PackagePage, **ERRORS}, url_name="build_packages")
def build_packages(
    request,
    digest: Annotated[
        str, Path(max_length=200, description="A build's digest, or a platform image's: that platform only.")
    ],
    platform: Annotated[
        str,
        Query(
            max_length=200,
            description="os/architecture[/variant], e.g. linux/amd64; empty: what any of the build's "
            "platforms contains.",
        ),
    ] = "",
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=packages.MAX_PACKAGE_PAGE), _strictly(params.number)
    ] = packages.PACKAGE_PAGE,
):
    """The packages a build's SBOMs name (any of them: BuildKit's, referrers, cosign `.sbom`), by
    name, a keyset page at a time. An SBOM of the build's own digest counts for each platform."""
    try:
        found = packages.in_build(digest, platform, _cursor(packages.PackageCursor, cursor), size=limit)
    except packages.InvalidPackageQuery as invalid:
        raise HttpError(400, str(invalid)) from None
    except packages.UnknownBuild as unknown:
        raise HttpError(404, str(unknown)) from None
    except InvalidCursor as invalid:  # a cursor naming no package
        raise HttpError(400, f"cursor: {invalid}") from None
    return found.as_dict()


@api.get("packages", response={200: out.PackageSearchPage, **ERRORS}, url_name="packages")
def package_search(
    request,
    name: Annotated[
        str,
        Query(
            max_length=packages.MAX_PURL_QUERY,
            description="The package's name, whole, in any case (openssl); name@version; or a package URL "
            "(pkg:deb/debian/openssl@3.0.13).",
        ),
    ],
    version: Annotated[
        str, Query(max_length=packages.VERSION_LENGTH, description="Exactly this version.")
    ] = "",
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=packages.MAX_PAGE), _strictly(params.number)] = packages.PAGE_SIZE,
):
    """The builds whose SBOMs name a package, newest first, a keyset page at a time: on which
    platforms, in which version, and whether a tag points there now. The same body as
    `manage.py lookup --package ... --json`."""
    try:
        found = packages.search(name, version, _cursor(Cursor, cursor), size=limit)
    except packages.InvalidPackageQuery as invalid:
        raise HttpError(400, str(invalid)) from None
    return found.as_dict()


@api.get("pins", response={200: list[out.PinOut], **ERRORS})
def pins(
    request,
    ref: Annotated[
        list[str],
        Query(description="A pinned reference (name:tag@digest), or a Dockerfile/compose line; repeatable."),
    ],
):
    """Whether each pinned reference is its tag's current build, an older (or newer) build of the tag,
    its version or its line, or no build of it, and then what the digest is (`what_it_is`)."""
    try:
        results = check(ref)
    except PinError as error:
        raise HttpError(400, f"ref: {error}") from None
    return [result.as_dict() for result in results]


@api.get("pins/check", response={200: out.PinCheckOut, **ERRORS})
def pins_check(
    request,
    ref: Annotated[
        list[str],
        Query(
            description="A pinned reference, a Dockerfile or compose line, or a whole file's text (read as "
            "the pin check page reads it); repeatable."
        ),
    ],
    max_behind: Annotated[
        int,
        Query(ge=0, le=MAX_BEHIND, description="Builds a pin may be behind its tag and still pass."),
        _strictly(params.number),
    ] = 0,
    fail_on_inactive: Annotated[
        bool, Query(description="Fail pins whose tag's version is inactive.")
    ] = False,
    allow_unknown: Annotated[
        bool,
        Query(
            description="Pass pins tagledger cannot check (unknown or unreadable) instead of failing them."
        ),
    ] = False,
    allow_unpinned: Annotated[
        bool, Query(description="Pass references without a digest instead of failing them.")
    ] = False,
):
    """The pins CI gate: `ok` is false when a pin is more than `max_behind` builds behind its tag, not a
    build of it, unknown or unreadable, not pinned to a digest, or (with `fail_on_inactive`) of an
    inactive version. Always 200 whatever the verdict: a CI script reads `ok`. The same body as
    `manage.py pins check FILE --json`."""
    policy = Policy(max_behind, fail_on_inactive, allow_unknown, allow_unpinned)
    try:
        verdict = gate(ref, policy)
    except PinError as error:
        raise HttpError(400, f"ref: {error}") from None
    return verdict.as_dict()


# --- helpers ------------------------------------------------------------------------------------


def _repository_or_404(pk: int) -> Repository:
    repository = Repository.objects.select_related("registry").filter(pk=pk).first()
    if repository is None:
        raise HttpError(404, f"no repository with id {pk}")
    return repository


def _no_build(digest: str, repository: str) -> str:
    where = f"{repository} has no build" if repository else "no watched repository has a build"
    image = Platform.objects.filter(digest=digest).select_related("build__repository__registry").first()
    if image is None:
        return f"{where} {digest}"
    return (
        f"{where} {digest}: it is the {image} image of the build {image.build.digest} "
        f"in {image.build.repository.reference}"
    )


def _cursor(kind: type[Cursor] | type[NameCursor] | type[packages.PackageCursor], token: str | None):
    """The position a `next` names, of the kind its list pages by; anything else is a 400."""
    try:
        return kind.decode(token) if token else None
    except InvalidCursor as invalid:
        raise HttpError(400, f"cursor: {invalid}") from None
