"""Saved pin lists: every list with its pins counted by status, and one list's pins as the pin check
shows them. Everyone who may read sees them; signed-in users save; the owner or staff edit and delete."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tagledger.access import readable

from .. import pin_lists
from ..keyset import Cursor, InvalidCursor
from ..models import PinList


@require_http_methods(["GET", "HEAD", "POST"])
@readable
def index(request):
    """GET: the lists, newest first, a page at a time. POST (signed in): save a new one."""
    given = {"name": "", "text": ""}
    error = ""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        given = {"name": request.POST.get("name", ""), "text": request.POST.get("text", "")}
        try:
            saved = pin_lists.save(**given, owner=request.user)
        except pin_lists.PinListError as refused:
            error = f"Not saved: {refused}"
        else:
            messages.success(request, f"Saved the pin list {saved.name}.")
            return redirect("history:pin_list", pk=saved.pk)
    try:
        cursor = Cursor.decode(request.GET["cursor"]) if request.GET.get("cursor") else None
    except InvalidCursor as invalid:
        return render(request, "history/pin_lists.html", {"error": str(invalid), "page": None}, status=400)
    context = {"page": pin_lists.page(cursor), "given": given, "error": error}
    return render(request, "history/pin_lists.html", context, status=400 if error else 200)


@require_http_methods(["GET", "HEAD", "POST"])
@readable
def pin_list(request, pk: int):
    """GET: each pin's status and what to pin now. POST (owner or staff): rename or rewrite it."""
    found = get_object_or_404(PinList.objects.select_related("owner"), pk=pk)
    editable = pin_lists.may_edit(request.user, found)
    given, error = {"name": found.name, "text": found.text}, ""
    if request.method == "POST":
        if not editable:
            raise PermissionDenied("only the list's owner or staff may change it")
        given = {"name": request.POST.get("name", ""), "text": request.POST.get("text", "")}
        try:
            pin_lists.save(**given, owner=request.user, pin_list=found)
        except pin_lists.PinListError as refused:
            error = f"Not saved: {refused}"
            found.refresh_from_db()  # the page shows the list as stored, the form what was sent
        else:
            messages.success(request, f"Saved the pin list {found.name}.")
            return redirect("history:pin_list", pk=found.pk)
    context = {"checked": pin_lists.checked(found), "editable": editable, "given": given, "error": error}
    return render(request, "history/pin_list.html", context, status=400 if error else 200)


@require_POST
@readable
def delete(request, pk: int):
    found = get_object_or_404(PinList, pk=pk)
    if not pin_lists.may_edit(request.user, found):
        raise PermissionDenied("only the list's owner or staff may delete it")
    found.delete()
    messages.success(request, f"Deleted the pin list {found.name}.")
    return redirect("history:pin_lists")
