"""Small filters every page uses to show digests, times and links the same way.

Long pages call them hundreds of times (a changelog page links ~300 times and shows ~100
times), so they avoid Django's slower general helpers: see BENCHMARKS.md, Pages.
"""

import html
from functools import lru_cache
from urllib.parse import quote

from django import template
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import escape, format_html_join
from django.utils.safestring import mark_safe

from catalog.duration import format_duration
from catalog.oci.manifest import parse_time

from ..wording import plural, short_digest

register = template.Library()


register.filter("short_digest", short_digest)


@register.filter
def when(moment) -> str:
    """A <time> with the exact instant in its title and a fixed, sortable text."""
    if not moment:
        return ""
    try:
        local = timezone.localtime(moment)
    except OverflowError:  # within hours of year 1 or 9999: shown as stored rather than a 500
        local = moment
    # isoformat() and slices: ten times faster than strftime() and format_html(); only the
    # zone's name is text from outside (the time zone database), so only it is escaped.
    text = local.isoformat(" ", "seconds")  # 2026-11-26 12:00:00+00:00
    title = f"{text[:19]} {escape(local.tzname())}"
    return mark_safe(f'<time datetime="{moment.isoformat()}" title="{title}">{text[:16]}</time>')  # noqa: S308


@register.filter
def when_text(value) -> str:
    """A time a document states as text (a provenance's buildStartedOn), shown as `when` shows
    times; text that is no RFC 3339 time is shown as it is, escaped."""
    moment = parse_time(value)
    return when(moment) if moment else escape(value or "")


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
def held_intervals(held: list, repository_id: int) -> str:
    """`{{ row.held|held_intervals:version.repository_id }}`: a version page row's tags, each a
    link to its page with when it held the build (HeldTag list).

    Here rather than in a template loop: a page of 25 builds shows ~125 of them, and the loop's
    five tags and filters each cost a quarter of the page's render time."""
    return format_html_join(
        "",
        '<div><a class="tag" href="{}">{}</a> <span class="muted small">{} → {}</span></div>',
        (
            (
                tag_path(repository_id, entry.tag),
                entry.tag,
                when(entry.since),
                when(entry.until) if entry.until else "now",
            )
            for entry in held
        ),
    )


@register.filter
def timeline_bars(row) -> str:
    """One timeline row's bars as SVG, each a link to its build (a timeline.Row). Plain strings and
    `_text` rather than a template loop or `format_html`: a page draws ~125 bars and lists them
    again in its table, and `format_html` took two thirds of the timeline's time."""
    build_path = _path("history:build", get_script_prefix())
    y = row.y + 3
    # tabindex -1: a pointer follows a bar to its build, but a keyboard need not stop at ~125 bars;
    # the table under the picture has the same links.
    return mark_safe(  # noqa: S308 - titles go through _text; the rest is numbers and our classes
        "".join(
            f'<a href="{build_path.format(int(bar.build_id))}" tabindex="-1"><rect x="{bar.x:.1f}" y="{y}" '
            f'width="{bar.width:.1f}" height="16" rx="3" class="build-{_text(bar.colour)}'
            f'{" claimed" if bar.claimed else ""}"><title>{_text(bar.title)}</title></rect></a>'
            for bar in row.bars
        )
    )


@register.filter
def timeline_table(timeline) -> str:
    """The timeline's facts as table rows (timeline.Span): tag, build, from, until, and how the
    start is known; what a screen reader or a narrow screen gets instead of the picture."""
    build_path = _path("history:build", get_script_prefix())
    return mark_safe(  # noqa: S308 - registry text goes through _text, `when` escapes its own
        "".join(
            f'<tr><th scope="row"><span class="tag">{_text(span.tag)}</span></th>'
            f'<td><a href="{build_path.format(int(span.build_id))}"><code>{_text(short_digest(span.digest))}'
            f"</code></a>{CURRENT if span.current else ''}</td><td>{when(span.start)}</td>"
            f"<td>{when(span.until) if span.until else 'now'}</td><td>{_text(span.how)}</td></tr>"
            for span in timeline.spans
        )
    )


@register.filter
def coord(value: float) -> str:
    """An SVG coordinate with one decimal, never localised (floatformat is ten times slower)."""
    return f"{value:.1f}"


def tag_path(repository_id: int, name: str) -> str:
    """Where a tag leads: its history page (history:tag). The one place to change how tags link.

    Quoted, though a stored name is within the tag grammar and needs none: a name that is not
    leads to a 404 rather than to another path."""
    return _tag_prefix(get_script_prefix()).format(int(repository_id)) + quote(name, safe="")


@lru_cache(maxsize=8)
def _tag_prefix(script_prefix: str) -> str:
    path = reverse("history:tag", args=[_PLACEHOLDER, "_"])
    return path.removesuffix("_").replace("{", "{{").replace("}", "}}").replace(str(_PLACEHOLDER), "{}")


@register.filter
def tag_url(name: str, repository_id: int) -> str:
    """`{{ tag.name|tag_url:repository.pk }}`: see tag_path."""
    return tag_path(repository_id, name)


@register.filter
def tag_link(name: str, repository_id: int | None) -> str:
    """`{{ held.tag|tag_link:repository.pk }}`: a tag chip linking to its page; a plain chip where
    the repository is not known."""
    if repository_id is None or repository_id == "":
        return mark_safe(f'<span class="tag">{_text(name)}</span>')  # noqa: S308 - escaped by _text
    return mark_safe(f'<a class="tag" href="{tag_path(repository_id, name)}">{_text(name)}</a>')  # noqa: S308


@register.simple_tag
def version_rows(rows: list, query: str, repository_id: int) -> str:
    """`{% version_rows rows q repository.pk %}`: the repository page's rows (lines.Row, settled)
    as <tr>s: version, variant, tags (each a link to its page), current build, build count; tags
    containing `query` marked.

    Here rather than in a template loop, and with the standard library's `html.escape` rather than
    `format_html`: an open line shows 200 rows of ~5 tags, and those cost 0.4 ms a row (80 ms a
    page at 10 000 tags); this costs ~0.05 ms. Every value from a registry goes through `_text`.
    """
    version_path = _path("history:version", get_script_prefix())
    build_path = _path("history:build", get_script_prefix())
    # tag_path, with the repository's part made once for every row.
    tag_prefix = _tag_prefix(get_script_prefix()).format(int(repository_id))
    query = query.lower()
    parts, previous = [], None
    for row in rows:
        version_url = version_path.format(int(row.version_id))
        tags = " ".join(
            f'<a class="{"tag match" if query and query in name.lower() else "tag"}" '
            f'href="{tag_prefix}{quote(name, safe="")}">{_text(name)}</a>'
            for name in row.tags
        )
        channels = "".join(f' <span class="channel">{_text(channel)}</span>' for channel in row.channels)
        variant = (
            f'<span class="variant">{_text(row.variant)}</span>'
            if row.variant
            else '<span class="variant muted">default</span>'
        )
        build = (
            f'<a href="{build_path.format(int(row.build_id))}" title="{_text(row.digest)}">'
            f"<code>{_text(short_digest(row.digest))}</code></a>"
            if row.build_id
            else '<span class="muted">—</span>'
        )
        count = int(row.build_count)
        parts.append(
            f'<tr class="{"row" if row.name == previous else "row first"}">'
            f'<th scope="row"><a href="{version_url}">{_text(row.name)}</a>{channels}</th>'
            f'<td class="row-variant">{variant}</td>'
            f'<td class="row-tags">{tags or NO_TAG}</td>'
            f'<td class="row-build">{build}</td>'
            f'<td class="row-count"><a href="{version_url}">{plural(count, "build")}</a>'
            "</td></tr>"
        )
        previous = row.name
    return mark_safe("".join(parts))  # noqa: S308 - registry text went through _text, the rest is ours


@register.filter
def tag_chips(tags: list, repository_id: int) -> str:
    """`{{ tags|tag_chips:repository.pk }}`: lines.TagRow chips, each a link (`tag_path`),
    space-separated: a template loop over the repository page's 200 not-understood tags took 8 ms."""
    return mark_safe(  # noqa: S308 - names go through _text, paths are ours
        " ".join(f'<a class="tag" href="{tag_path(repository_id, t.name)}">{_text(t.name)}</a>' for t in tags)
    )


NO_TAG = '<span class="muted">no tag now</span>'
CURRENT = mark_safe(' <span class="current">current</span>')


def _text(value: str) -> str:
    """Text for HTML content or a quoted attribute: Django's `escape` without its lazy wrapper."""
    return html.escape(value, quote=True)


@register.filter
def duration(value) -> str:
    """A timedelta as people write it: 30m, 1h, 2d."""
    return format_duration(value) if value else ""
