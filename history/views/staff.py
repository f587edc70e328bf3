"""Staff actions: watch, stop watching, poll now. POST with CSRF only; everything else is read-only."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from catalog import watching
from catalog.models import Repository

from ..tasks import enqueue

WATCH_OPTIONS = ("interval", "include", "exclude", "immutable")


@require_POST
@staff_member_required
def watch(request):
    given = {name: request.POST[name].strip() for name in WATCH_OPTIONS if request.POST.get(name, "").strip()}
    if request.POST.get("insecure"):
        given["insecure"] = True
    try:
        reference = watching.repository_reference(request.POST.get("reference", ""))
        repository, created, reenabled, updated = watching.watch(reference, given)
    except watching.WatchError as error:
        messages.error(request, f"Not watched: {error}")
        return redirect("history:home")
    if created or reenabled:
        enqueue(repository)
        messages.success(request, f"Watching {repository.reference}; the first poll is queued.")
    else:
        changed = f"; updated: {', '.join(updated)}" if updated else ""
        messages.info(request, f"{repository.reference} is already watched{changed}.")
    return redirect("history:repository", pk=repository.pk)


@require_POST
@staff_member_required
def unwatch(request, pk: int):
    repository = get_object_or_404(Repository.objects.select_related("registry"), pk=pk)
    watching.unwatch(repository)
    messages.success(request, f"Stopped watching {repository.reference}; its history is kept.")
    return redirect("history:repository", pk=pk)


@require_POST
@staff_member_required
def poll_now(request, pk: int):
    repository = get_object_or_404(Repository.objects.select_related("registry"), pk=pk, enabled=True)
    if enqueue(repository):
        messages.success(request, f"A poll of {repository.reference} is queued.")
    else:
        messages.info(request, f"{repository.reference} is already being polled.")
    return redirect("history:repository", pk=pk)
