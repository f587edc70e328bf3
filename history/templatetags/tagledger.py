"""Small filters every page uses to show digests and times the same way."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

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
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d %H:%M"),
    )


@register.filter
def cells(row, variants):
    """A version row's cells in the column order of `variants` (None where a variant has none)."""
    return row.cell_list(variants)


@register.filter
def duration(value) -> str:
    """A timedelta as people write it: 30m, 1h, 2d."""
    return format_duration(value) if value else ""
