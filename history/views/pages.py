"""Home and search: where every visit starts."""

from django.shortcuts import render

from catalog.models import Repository
from tagledger.access import readable

from .. import packages
from ..changelog import ChangelogFilter, page
from ..keyset import Cursor, InvalidCursor
from ..models import with_poll_health
from ..search import InvalidQuery, lookup

LATEST_CHANGES = 15


@readable
def home(request):
    repositories = with_poll_health(Repository.objects.filter(enabled=True).select_related("registry"))
    return render(
        request,
        "history/home.html",
        {
            "repositories": repositories.order_by("registry__host", "name"),
            # The changelog's first rows, artifact tags left out and each import one row, as there.
            "changes": page(ChangelogFilter(), size=LATEST_CHANGES, collapse_imports=True).events,
        },
    )


@readable
def search(request):
    query = request.GET.get("q", "")
    result, error = None, ""
    if query.strip():
        try:
            result = lookup(query)
        except InvalidQuery as invalid:
            error = str(invalid)
    package = request.GET.get("package", "")
    found, package_error = None, ""
    if package.strip():
        # The API's reader and cursor (/api/v1/packages): a page of builds, newest first.
        try:
            cursor = request.GET.get("cursor")
            found = packages.search(package, cursor=Cursor.decode(cursor) if cursor else None)
        except (packages.InvalidPackageQuery, InvalidCursor) as invalid:
            package_error = str(invalid)
    context = {
        "query": query, "result": result, "error": error,
        "package": package, "found": found, "package_error": package_error,
    }  # fmt: skip
    template = "history/search_results.html" if request.headers.get("HX-Request") else "history/search.html"
    return render(request, template, context, status=400 if package_error else 200)
