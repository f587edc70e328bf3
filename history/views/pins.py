"""The pin check page: paste references, see which are current, behind or wrong, and what to pin."""

from collections import Counter

from django.shortcuts import render

from tagledger.access import readable

from ..pins import STATUS_LABELS, PinError, check


@readable
def pins(request):
    text = request.GET.get("refs", "")
    extra = request.GET.getlist("ref")
    lines = [text, *extra] if text else extra
    results, error = None, ""
    if any(line.strip() for line in lines):
        try:
            results = check(lines)
        except PinError as refused:
            error = str(refused)
    counts = Counter(result.status for result in results or [])
    summary = [(status, label, counts[status]) for status, label in STATUS_LABELS.items() if counts[status]]
    return render(
        request,
        "history/pins.html",
        {"refs": "\n".join(lines), "results": results, "error": error, "summary": summary},
    )
