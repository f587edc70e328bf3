"""The filters every page uses: the same text as Django's general helpers, at a fraction of the cost."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix
from django.utils import translation

from history.models import HeldTag
from history.templatetags.tagledger import (
    coord,
    held_intervals,
    link,
    tag_link,
    tag_path,
    tag_url,
    timeline_bars,
    when,
)
from history.timeline import Bar, Row

MOMENT = datetime(2026, 11, 26, 12, 0, 5, tzinfo=UTC)


def test_when_shows_minutes_with_the_exact_instant_and_zone_in_the_title():
    assert when(MOMENT) == (
        '<time datetime="2026-11-26T12:00:05+00:00" title="2026-11-26 12:00:05 UTC">2026-11-26 12:00</time>'
    )
    assert when(None) == ""


@override_settings(TIME_ZONE="Asia/Kolkata")
def test_when_shows_local_time_and_keeps_the_instant_in_utc():
    assert when(MOMENT) == (
        '<time datetime="2026-11-26T12:00:05+00:00" title="2026-11-26 17:30:05 IST">2026-11-26 17:30</time>'
    )


@pytest.mark.parametrize(
    "viewname", ["history:build", "history:version", "history:repository", "history:repository_changelog"]
)
@pytest.mark.parametrize("pk", [1, 42, 2**53 + 1, 9_223_372_036_854_775_807])
def test_link_is_what_url_reverses(viewname, pk):
    assert link(pk, viewname) == reverse(viewname, args=[pk])
    assert link(str(pk), viewname) == reverse(viewname, args=[pk])


def test_link_follows_the_script_prefix_of_a_deployment_under_a_path():
    set_script_prefix("/tagledger/")
    try:
        assert link(7, "history:build") == reverse("history:build", args=[7]) == "/tagledger/builds/7/"
    finally:
        clear_script_prefix()
    assert link(7, "history:build") == "/builds/7/"


def test_link_refuses_what_is_not_an_id():
    with pytest.raises(ValueError):
        link("1/../../admin", "history:build")


@override_settings(USE_THOUSAND_SEPARATOR=True)
def test_coord_is_never_localised():
    with translation.override("de"):
        assert coord(1234.56) == "1234.6"
        assert coord(170) == "170.0"


def test_held_intervals_link_each_tag_to_its_page_from_when_until_when_or_now_escaped():
    later = MOMENT.replace(day=27)
    html = held_intervals([HeldTag("3.14", MOMENT, later), HeldTag("<b>latest</b>", later, None)], 7)
    assert html == (
        '<div><a class="tag" href="/repositories/7/tags/3.14">3.14</a> '
        f'<span class="muted small">{when(MOMENT)} → {when(later)}</span></div>'
        '<div><a class="tag" href="/repositories/7/tags/%3Cb%3Elatest%3C%2Fb%3E">'
        "&lt;b&gt;latest&lt;/b&gt;</a> "
        f'<span class="muted small">{when(later)} → now</span></div>'
    )
    assert held_intervals([], 7) == ""


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("3.14", "/repositories/3/tags/3.14"),
        ("latest", "/repositories/3/tags/latest"),
        # Outside the tag grammar (never stored: the client refuses such names), still one segment.
        ("../../admin", "/repositories/3/tags/..%2F..%2Fadmin"),
        ('"><script>', "/repositories/3/tags/%22%3E%3Cscript%3E"),
        ("é?#", "/repositories/3/tags/%C3%A9%3F%23"),
    ],
)
def test_a_tag_links_to_its_history_page_as_one_quoted_path_segment(name, path):
    assert tag_path(3, name) == path
    assert tag_url(name, 3) == path
    chip = tag_link(name, 3)
    assert chip.startswith(f'<a class="tag" href="{path}">') and "<script>" not in chip


def test_a_tag_whose_repository_is_unknown_is_a_plain_chip():
    assert tag_link("<b>", None) == '<span class="tag">&lt;b&gt;</span>'


def test_a_tag_link_follows_the_script_prefix_and_matches_the_url_it_reverses_to():
    set_script_prefix("/tagledger/")
    try:
        assert (
            tag_path(7, "3.14")
            == reverse("history:tag", args=[7, "3.14"])
            == "/tagledger/repositories/7/tags/3.14"
        )
    finally:
        clear_script_prefix()


def test_timeline_bars_link_each_build_and_escape_the_title():
    bars = [
        Bar(170.0, 380.25, "3", 42, 'latest: "x" <y>', claimed=True),
        Bar(550.25, 2.0, "current", 43, "t"),
    ]
    row = Row("latest", "latest", 28, bars)
    assert timeline_bars(row) == (
        '<a href="/builds/42/" tabindex="-1"><rect x="170.0" y="31" width="380.2" height="16" rx="3" '
        'class="build-3 claimed"><title>latest: &quot;x&quot; &lt;y&gt;</title></rect></a>'
        '<a href="/builds/43/" tabindex="-1"><rect x="550.2" y="31" width="2.0" height="16" rx="3" '
        'class="build-current"><title>t</title></rect></a>'
    )
