"""The compare page: what changed from one build to another, from stored data only."""

from dataclasses import dataclass, field

from django.shortcuts import render

from tagledger.access import readable

from ..compare import CompareError, choice, resolve
from ..compare import compare as compare_builds
from ..models import Build


@dataclass
class Side:
    """One input of the form: what was typed, and the build it names or why it names none."""

    name: str  # the query parameter, `a` or `b`
    text: str
    build: Build | None = None
    error: str = ""
    candidates: list[tuple[str, Build]] = field(default_factory=list)  # (value to submit, build)


@readable
def compare(request):
    # The version page's ticked boxes arrive here already as `a` (older) and `b` (newer), through
    # builds.version_compare: `a` and `b` are compared in the order the reader gave them.
    a, b = _side("a", request.GET.get("a", "")), _side("b", request.GET.get("b", ""))
    sides = [a, b]
    comparison = compare_builds(a.build, b.build) if a.build and b.build else None
    return render(
        request,
        "history/compare.html",
        {
            "sides": sides,
            "comparison": comparison,
            "missing": bool(a.text.strip()) != bool(b.text.strip()),
        },
    )


def _side(name: str, text: str) -> Side:
    side = Side(name, text[:1024])
    if not text.strip():
        return side
    try:
        side.build = resolve(text)
    except CompareError as error:
        side.error = str(error)
        side.candidates = [(choice(build), build) for build in error.candidates]
    return side
