"""The changelog pages: every tag event, filtered, newest first; for all repositories or one."""

from urllib.parse import urlencode

from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers

from catalog.models import Line, Repository, Version
from catalog.tags import version_key
from tagledger.access import readable

from ..changelog import FIELDS, InvalidFilter, Page, page, parse
from ..models import TagEvent

IMMUTABLE_MOVED = TagEvent.Kind.IMMUTABLE_MOVED.value
KINDS = [
    (kind.value, "immutable tag moved" if kind == IMMUTABLE_MOVED else kind.value) for kind in TagEvent.Kind
]


@readable
def changelog(request):
    return _changelog(request, None)


@readable
def repository_changelog(request, pk: int):
    return _changelog(request, get_object_or_404(Repository.objects.select_related("registry"), pk=pk))


def _changelog(request, repository: Repository | None):
    params = request.GET.copy()
    if repository is not None:
        params["repository"] = str(repository.pk)  # the path decides; a parameter cannot widen it
    errors, result, query = {}, Page([], None), {}
    try:
        changelog, cursor = parse(params)
    except InvalidFilter as invalid:
        errors = invalid.errors
    else:
        result = page(changelog, cursor, collapse_imports=True)
        query = changelog.as_query()
    # Links to this page leave out what its path already says; the feed has one path for all.
    here = {name: value for name, value in query.items() if not (repository and name == "repository")}
    context = {
        "repository": repository,
        "values": {name: params.get(name, "").strip() for name in FIELDS},
        "errors": errors,
        "events": result.events,
        "cursor": params.get("cursor", ""),
        "page_query": urlencode(here),
        "next_query": urlencode({**here, "cursor": result.next_cursor.encode()})
        if result.next_cursor
        else "",
        "feed_query": urlencode(query),
        "immutable_query": urlencode({**here, "kind": IMMUTABLE_MOVED}),
        "artifacts_query": urlencode({**here, "artifacts": "1"}),
        # The rows of one poll (an import's link) lead back to every poll's, the other filters kept.
        "every_poll_query": urlencode({name: value for name, value in here.items() if name != "poll"}),
        "is_immutable_only": query.get("kind") == IMMUTABLE_MOVED,
    }
    # htmx asks for the rows alone, except when restoring history: then it wants the whole page.
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
    if partial:
        # htmx swaps no 4xx answer by default, so messages about the filters come with a 200.
        response = render(request, "history/changelog_rows.html", context)
    else:
        context.update(_choices(repository), kinds=KINDS)
        response = render(request, "history/changelog.html", context, status=400 if errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _choices(repository: Repository | None) -> dict:
    """Options of the filter form, as (value, label): the repositories, or on a repository's page
    its lines and versions. Plain pairs, not models: a form offers hundreds of them.

    Lines and versions are offered only where the repository is fixed, so a choice can never
    belong to another repository than the one selected.
    """
    if repository is None:
        repositories = Repository.objects.order_by("registry__host", "name")
        return {
            "repositories": [
                (str(pk), f"{host}/{name}")
                for pk, host, name in repositories.values_list("pk", "registry__host", "name")
            ]
        }
    return {
        "lines": _newest_first(Line.objects.filter(repository=repository)),
        "versions": _newest_first(Version.objects.filter(repository=repository)),
    }


def _newest_first(rows) -> list[tuple[str, str]]:
    """Grouped by variant (none first), the highest version first within each."""
    rows = sorted(rows.only("pk", "name", "variant"), key=lambda row: version_key(row.name), reverse=True)
    return [(str(row.pk), str(row)) for row in sorted(rows, key=lambda row: row.variant)]
