"""Home and search: where every visit starts."""

from django.shortcuts import render

from catalog.models import Repository
from tagledger.access import readable

from ..changelog import ChangelogFilter, page
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
    template = "history/search_results.html" if request.headers.get("HX-Request") else "history/search.html"
    return render(request, template, {"query": query, "result": result, "error": error})
