"""The compare page: what changed from one build to another, from stored data only."""

from django.shortcuts import render

from tagledger.access import readable

from .. import params
from ..compare import compare as compare_builds
from ..compare import picker, sides


@readable
def compare(request):
    # The version page's ticked boxes arrive here already as `a` (older) and `b` (newer), through
    # builds.version_compare: `a` and `b` are compared in the order the reader gave them. The
    # picker's last step submits `a_build` / `b_build`, which a pasted `a` / `b` overrides.
    a, b = sides(
        request.GET.get("a", "").strip() or request.GET.get("a_build", ""),
        request.GET.get("b", "").strip() or request.GET.get("b_build", ""),
        a_at=request.GET.get("a_at", ""),
        b_at=request.GET.get("b_at", ""),
        repository=request.GET.get("repository", ""),
    )
    comparison = compare_builds(a.build, b.build) if a.build and b.build else None
    pickers = {}
    if comparison is None:
        # What each side's picker has chosen so far, as plain GET fields.
        choices = {
            "a": (request.GET.get("a_repository"), request.GET.get("a_version"), request.GET.get("a_filter")),
            "b": (request.GET.get("b_repository"), request.GET.get("b_version"), request.GET.get("b_filter")),
        }
        pickers = {side.name: _picker(*choices[side.name]) for side in (a, b) if not side.build}
    context = {
        "sides": [a, b],
        "comparison": comparison,
        "pickers": pickers,
        "repository": request.GET.get("repository", "")[:1024],
        # One side given and the other not: unless the person is still picking the other.
        "missing": bool(a.text.strip()) != bool(b.text.strip()) and "step" not in request.GET,
    }
    # htmx asks for one side's picker after a choice there; the page's own partial answers.
    template = "history/compare.html"
    wanted = request.GET.get("picker")
    if request.headers.get("HX-Request") and wanted in pickers:
        template = "history/compare_picker.html"
        context.update(side=a if wanted == "a" else b, picker=pickers[wanted])
    return render(request, template, context)


def _picker(repository: str | None, version: str | None, version_filter: str | None):
    """A side's picker; an id that does not parse is as if none was chosen, a bad filter as none."""
    chosen = []
    for raw in (repository, version):
        try:
            chosen.append(params.positive_id(raw or ""))
        except params.InvalidParameter:
            chosen.append(None)
    try:
        version_filter = params.text(version_filter or "", max_length=128, what="the filter")
    except params.InvalidParameter:
        version_filter = ""
    return picker(*chosen, version_filter)
