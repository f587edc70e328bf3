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
    texts, from_checkboxes = _inputs(request.GET)
    sides = [_side(name, text) for name, text in zip("ab", texts, strict=True)]
    a, b = sides
    comparison = None
    if a.build and b.build:
        first, second = a.build, b.build
        # Two boxes ticked on the version page come in page order: compare older → newer.
        if from_checkboxes and (second.first_seen_at, second.pk) < (first.first_seen_at, first.pk):
            first, second = second, first
            a.text, b.text = b.text, a.text
        comparison = compare_builds(first, second)
    return render(
        request,
        "history/compare.html",
        {
            "sides": sides,
            "comparison": comparison,
            "missing": bool(a.text.strip()) != bool(b.text.strip()),
        },
    )


def _inputs(params) -> tuple[tuple[str, str], bool]:
    """(a, b) texts; two values under one name (a checkbox form) count as both."""
    a_values, b_values = params.getlist("a"), params.getlist("b")
    if len(a_values) == 2 and not any(value.strip() for value in b_values):
        return (a_values[0], a_values[1]), True
    if len(b_values) == 2 and not any(value.strip() for value in a_values):
        return (b_values[0], b_values[1]), True
    return (a_values[0] if a_values else "", b_values[0] if b_values else ""), False


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
