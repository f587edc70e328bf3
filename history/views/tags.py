"""A tag's page: every digest it held, newest first, with when and between which polls it moved."""

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from tagledger.access import readable

from ..keyset import Cursor, InvalidCursor
from ..tag_history import TagHistory, find, tag_history


@readable
def tag(request, pk: int, name: str):
    found = find(pk, name)  # with its repository: one query for the header
    if found is None:
        raise Http404("no such tag")
    repository = found.repository
    context = {
        "repository": repository,
        "tag": found,
        "changelog_query": urlencode({"repository": repository.pk, "tag": found.name}),
        "api_url": reverse("api:tag_history", args=[repository.pk, found.name]),
    }
    token = request.GET.get("cursor", "")
    try:
        cursor = Cursor.decode(token) if token else None
    except InvalidCursor as invalid:
        context.update(history=TagHistory(found, [], None), error=str(invalid))
        return render(request, "history/tag.html", context, status=400)
    history = tag_history(found, cursor)
    context.update(history=history, rows=history.rows, cursor=token)
    return render(request, "history/tag.html", context)
