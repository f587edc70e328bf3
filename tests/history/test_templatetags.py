"""The filters every page uses: the same text as Django's general helpers, at a fraction of the cost."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix
from django.utils import translation

from history.models import HeldTag
from history.templatetags.tagledger import coord, held_intervals, link, timeline_bars, when
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


def test_held_intervals_show_each_tag_from_when_until_when_or_now_escaped():
    later = MOMENT.replace(day=27)
    html = held_intervals([HeldTag("3.14", MOMENT, later), HeldTag("<b>latest</b>", later, None)])
    assert html == (
        f'<div><span class="tag">3.14</span> <span class="muted small">{when(MOMENT)} → {when(later)}</span>'
        "</div>"
        '<div><span class="tag">&lt;b&gt;latest&lt;/b&gt;</span> '
        f'<span class="muted small">{when(later)} → now</span></div>'
    )
    assert held_intervals([]) == ""


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
