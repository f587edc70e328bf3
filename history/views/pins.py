"""The pin check page: paste references, see which are current, behind or wrong, and what to pin."""

from collections import Counter

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from tagledger.access import readable

from ..pins import MAX_INPUT, STATUS_LABELS, PinError, check


@require_http_methods(["GET", "POST"])
@readable
def pins(request):
    # The form posts: a pasted Dockerfile is too long for a URL and has no place in access logs.
    # GET with `refs` or `ref` still answers, for links and bookmarks made before.
    given = request.POST if request.method == "POST" else request.GET
    text = given.get("refs", "")
    extra = given.getlist("ref")
    lines = [text, *extra] if text else extra
    results, error = None, ""
    if any(line.strip() for line in lines):
        try:
            results = check(lines)
        except PinError as refused:
            error = str(refused)
    counts = Counter(result.status for result in results or [])
    summary = [(status, label, counts[status]) for status, label in STATUS_LABELS.items() if counts[status]]
    # Input the reader refused whole is not echoed back: a page as large as it would be no help.
    shown = "\n".join(lines) if sum(map(len, lines)) <= MAX_INPUT else ""
    return render(
        request,
        "history/pins.html",
        {"refs": shown, "results": results, "error": error, "summary": summary},
    )
