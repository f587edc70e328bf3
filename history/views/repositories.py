"""The repository page: lines → one row per version and variant → the tags on it now; every tag."""

from urllib.parse import urlencode

from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers

from catalog.models import Repository
from tagledger.access import readable

from .. import params
from ..changelog import InvalidFilter
from ..keyset import InvalidCursor
from ..lines import MAX_QUERY, TAG_SORTS, decode_tag_cursor, overview, parse_query, parse_sort, tag_page


@readable
def repository(request, pk: int):
    # Not with_poll_health: its tag count costs 15 ms for 10 000 tags, and this page shows none.
    repository = get_object_or_404(Repository.objects.select_related("registry"), pk=pk)
    # Which line to open: a name compared with the lines', so anything else opens none.
    try:
        line = params.text(request.GET.get("line", ""), max_length=MAX_QUERY)
    except params.InvalidParameter:
        line = ""
    inactive = request.GET.get("inactive") == "1"
    token = request.GET.get("cursor", "")
    errors = {}
    try:
        q = parse_query(request.GET.get("q", ""))
    except InvalidFilter as invalid:
        q, errors = "", invalid.errors
    try:
        sort = parse_sort(request.GET.get("sort"))
    except InvalidFilter as invalid:
        sort, errors = "name", {**errors, **invalid.errors}
    try:
        cursor = decode_tag_cursor(token, sort)
    except InvalidCursor as invalid:
        cursor, errors = None, {**errors, "cursor": str(invalid)}
    kept = {"q": q, "sort": sort if sort != "name" else ""}  # what every link of the page carries on
    context = {
        "repository": repository,
        "poll": repository.polls.order_by("-started_at").first(),
        "q": q if not errors else request.GET.get("q", "")[:200],
        "sort": sort,
        "sorts": TAG_SORTS.items(),
        "errors": errors,
        # Not `query`: base.html fills the header's search box with that.
        "filter_query": urlencode({name: value for name, value in kept.items() if value}),
    }
    # htmx asks for one line when it is opened; history restores want the whole page.
    if line and request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        found = overview(repository, q=q, line=line, inactive=inactive)
        group = next((group for group in found.lines if group.name == line), None)
        response = render(request, "history/repository_line.html", {**context, "line": group})
    else:
        # The not-understood tags and the tags list are folded on a large repository's page
        # until asked for (`others=1`, `tags=1`): BENCHMARKS.md, Pages, repository.
        asked = {name: request.GET.get(name) == "1" for name in ("others", "tags")}
        found = overview(repository, q=q, line=line, inactive=inactive, others=asked["others"] or None)
        context["overview"] = found
        if q or cursor or asked["tags"] or sort != "name" or found.is_small:
            context["tags"] = tag_page(repository, q=q, sort=sort, cursor=cursor)
        context["cursor"] = token if cursor else ""
        response = render(request, "history/repository.html", context, status=400 if errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response
