"""Small filters every page uses to show digests, times and links the same way.

Long pages call them hundreds of times (a changelog page links ~300 times and shows ~100
times), so they avoid Django's slower general helpers: see BENCHMARKS.md, Pages.
"""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import escape, format_html_join
from django.utils.safestring import mark_safe

from catalog.duration import format_duration

register = template.Library()


@register.filter
def short_digest(digest: str) -> str:
    """`sha256:e24bfc0eb1574f…` → `e24bfc0eb157`, the 12 hex docker shows."""
    return (digest or "").partition(":")[2][:12] or digest


@register.filter
def when(moment) -> str:
    """A <time> with the exact instant in its title and a fixed, sortable text."""
    if not moment:
        return ""
    local = timezone.localtime(moment)
    # isoformat() and slices: ten times faster than strftime() and format_html(); only the
    # zone's name is text from outside (the time zone database), so only it is escaped.
    text = local.isoformat(" ", "seconds")  # 2026-11-26 12:00:00+00:00
    title = f"{text[:19]} {escape(local.tzname())}"
    return mark_safe(f'<time datetime="{moment.isoformat()}" title="{title}">{text[:16]}</time>')  # noqa: S308


@register.filter
def link(pk, viewname: str) -> str:
    """`{{ build.pk|link:"history:build" }}`: the URL of a page that takes one id, as `{% url %}`
    gives it, at a fifth of the cost: the path is reversed once and the id put in its place."""
    return _path(viewname, get_script_prefix()).format(int(pk))


_PLACEHOLDER = 2**53 + 1  # an id no page will show; it marks where ids go in the reversed path


@lru_cache(maxsize=64)
def _path(viewname: str, script_prefix: str) -> str:
    path = reverse(viewname, args=[_PLACEHOLDER])
    return path.replace("{", "{{").replace("}", "}}").replace(str(_PLACEHOLDER), "{}")


@register.filter
def held_intervals(held: list) -> str:
    """A version page row's tags, each with when it held the build (HeldTag list).

    Here rather than in a template loop: a page of 25 builds shows ~125 of them, and the loop's
    five tags and filters each cost a quarter of the page's render time."""
    return format_html_join(
        "",
        '<div><span class="tag">{}</span> <span class="muted small">{} → {}</span></div>',
        ((entry.tag, when(entry.since), when(entry.until) if entry.until else "now") for entry in held),
    )


@register.filter
def timeline_bars(row) -> str:
    """One timeline row's bars as SVG, each a link to its build (a timeline.Row); a template loop
    over ~125 bars took a third of the version page's render time."""
    build_path = _path("history:build", get_script_prefix())
    y = row.y + 3
    markup = '<a href="{}"><rect x="{}" y="{}" width="{}" height="16" rx="3" class="build-{}"><title>{}</title></rect></a>'  # noqa: E501
    return format_html_join(
        "",
        markup,
        (
            (build_path.format(int(bar.build_id)), coord(bar.x), y, coord(bar.width), bar.colour, bar.title)
            for bar in row.bars
        ),
    )


@register.filter
def coord(value: float) -> str:
    """An SVG coordinate with one decimal, never localised (floatformat is ten times slower)."""
    return f"{value:.1f}"


@register.filter
def cells(row, variants):
    """A version row's cells in the column order of `variants` (None where a variant has none)."""
    return row.cell_list(variants)


@register.filter
def duration(value) -> str:
    """A timedelta as people write it: 30m, 1h, 2d."""
    return format_duration(value) if value else ""
