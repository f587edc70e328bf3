"""The three payload formats: tagledger's JSON, a Slack/Mattermost incoming-webhook message and
CloudEvents 1.0 (structured for one event, the JSON batch format for several). Pure renderings of
plain dicts: deterministic bytes, valid JSON for items of any shape, registry values bounded and
escaped so a tag cannot mention @channel, inject a link or carry a control character into chat."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from history import payloads
from history.payloads import CLOUDEVENTS, JSON, SLACK, content_type, render

DIGEST, PREVIOUS = "sha256:" + "b" * 64, "sha256:" + "a" * 64


def item(**fields) -> dict:
    """An event item as history.notify makes one."""
    return {
        "id": "42",
        "kind": "moved",
        "signing": None,
        "repository": "registry.example/acme/app",
        "tag": "latest",
        "digest": DIGEST,
        "previous_digest": PREVIOUS,
        "version": "3.14.2",
        "tags": ["3.14.2", "3.14", "latest"],
        "previous_tags": ["3.14.1"],
        "detected_at": "2026-12-01T10:00:00.123456+00:00",
        "not_before": "2026-12-01T09:30:00+00:00",
        "links": {
            "build": "https://tl.example/builds/7/",
            "previous_build": "https://tl.example/builds/6/",
            "compare": "https://tl.example/compare?a=x&b=y",
            "changelog": "https://tl.example/repositories/1/changelog",
            "tag": "https://tl.example/repositories/1/tags/latest",
        },
        **fields,
    }


def pin(**fields) -> dict:
    return {
        "id": "pin-3-2-99",
        "kind": "pin_behind",
        "pin_list": {"id": 3, "name": "prod"},
        "line": 2,
        "reference": f"registry.example/acme/app:3.14@{PREVIOUS}",
        "current_reference": f"registry.example/acme/app:3.14@{DIGEST}",
        "builds_behind": 2,
        "detected_at": "2026-12-01T10:00:00+00:00",
        "links": {"compare": "https://tl.example/compare?a=1&b=2"},
        **fields,
    }


def test_json_lists_the_items_as_given():
    body = json.loads(render(JSON, [item(), pin()]))
    assert body == {"payload_version": 1, "test": False, "count": 2, "events": [item(), pin()]}
    assert json.loads(render(JSON, [item()], test=True))["test"] is True
    assert content_type(JSON) == "application/json"


def test_rendering_is_deterministic_and_compact():
    assert render(JSON, [item()]) == render(JSON, [item()])
    assert b": " not in render(JSON, [item()]) and b", " not in render(JSON, [item()])
    assert "é".encode() in render(JSON, [item(tag="café")])  # UTF-8, not \\u escapes


def test_one_cloudevent_is_structured_mode():
    body = render(CLOUDEVENTS, [item()])
    event = json.loads(body)
    assert content_type(CLOUDEVENTS, body) == "application/cloudevents+json"
    assert event["specversion"] == "1.0"
    assert event["id"] == "42"
    assert event["source"] == "https://tl.example/repositories/1/changelog"
    assert event["type"] == "dev.tagledger.tag.moved"
    assert event["subject"] == "registry.example/acme/app:latest"
    assert event["time"] == "2026-12-01T10:00:00.123456+00:00"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == item()


def test_several_cloudevents_are_a_json_batch():
    body = render(CLOUDEVENTS, [item(), item(id="43", kind="immutable_moved"), pin()])
    events = json.loads(body)
    assert content_type(CLOUDEVENTS, body) == "application/cloudevents-batch+json"
    assert [event["type"] for event in events] == [
        "dev.tagledger.tag.moved", "dev.tagledger.tag.immutable_moved", "dev.tagledger.pin.behind"
    ]  # fmt: skip
    assert events[2]["subject"] == pin()["reference"]
    for event in events:  # the REQUIRED attributes, as non-empty strings
        assert all(
            isinstance(event[name], str) and event[name] for name in ("id", "source", "specversion", "type")
        )
    assert json.loads(render(CLOUDEVENTS, [item()], test=True))["type"] == "dev.tagledger.test"


def test_cloudevent_source_without_a_base_url_is_a_uri_reference():
    event = json.loads(render(CLOUDEVENTS, [item(links={"changelog": "/repositories/1/changelog"})]))
    assert event["source"] == "/repositories/1/changelog"
    assert json.loads(render(CLOUDEVENTS, [item(links={})]))["source"] == "/tagledger"


def test_slack_message_has_a_headline_and_an_attachment_per_item():
    body = json.loads(
        render(
            SLACK,
            [
                item(),
                item(
                    kind="created",
                    tag="3.14.2",
                    previous_digest=None,
                    links={"build": "https://tl.example/builds/7/"},
                ),
                pin(),
            ],
        )
    )
    assert body["text"] == "tagledger: 3 changes in `registry.example/acme/app`"
    moved, created, behind = body["attachments"]
    assert moved["title"] == "registry.example/acme/app:latest moved"
    assert moved["fallback"] == "registry.example/acme/app:latest moved"
    assert moved["title_link"] == "https://tl.example/compare?a=x&b=y"
    assert moved["color"] == payloads.COLOURS["moved"]
    fields = {field["title"]: field["value"] for field in moved["fields"]}
    assert fields["Digest"] == "`sha256:bbbbbbbbbbbb`" and fields["Version"] == "`3.14.2`"
    assert fields["Tags of the build"] == "`3.14.2, 3.14, latest`"
    assert "Previous digest" not in {field["title"] for field in created["fields"]}
    assert created["title_link"] == "https://tl.example/builds/7/"
    assert behind["title"] == f"pin {pin()['reference']} fell behind"
    assert {field["title"] for field in behind["fields"]} == {"Pin list", "Builds behind", "Pin to now"}


def test_slack_flags_signing_and_security_events_in_red():
    body = json.loads(render(SLACK, [item(signing="unsigned"), item(kind="immutable_moved")]))
    unsigned, immutable = body["attachments"]
    assert unsigned["title"].endswith("moved, now unsigned") and unsigned["color"] == payloads.ALARM
    assert immutable["title"].endswith("moved although immutable") and immutable["color"] == payloads.ALARM


def test_slack_lists_at_most_twenty_and_counts_the_rest():
    body = json.loads(render(SLACK, [item(id=str(n)) for n in range(50)]))
    assert len(body["attachments"]) == payloads.MAX_LISTED
    assert "…and 30 more: <https://tl.example/repositories/1/changelog|changelog>" in body["text"]
    assert "tagledger: 50 changes" in body["text"]


def test_slack_test_message():
    body = json.loads(render(SLACK, [item()], test=True))
    assert body["text"].startswith("tagledger test delivery")


def test_slack_leaves_out_links_it_cannot_open():
    relative = item(links={"build": "/builds/7/", "compare": "/compare?a=1"})
    assert "title_link" not in json.loads(render(SLACK, [relative]))["attachments"][0]
    broken = item(links={"compare": "https://tl.example/x|<!channel>"})
    assert "title_link" not in json.loads(render(SLACK, [broken]))["attachments"][0]


HOSTILE = [
    "<script>alert(1)</script>",
    "<!channel>",
    "<!here|here>",
    "<https://evil.example|click me>",
    "a & b",
    "@channel",
    "`code` *bold* _it_",
    "line\nbreak\r\x1b[31mred\x00nul\u202eevil",
    "x" * 10_000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_slack_escapes_and_bounds_every_registry_value(value):
    hostile = item(tag=value, repository=value, version=value, tags=[value] * 30, digest=value)
    body = json.loads(render(SLACK, [hostile, pin(reference=value, pin_list={"name": value})]))
    texts = [body["text"]] + [
        text
        for attachment in body["attachments"]
        for text in [attachment["title"], attachment["fallback"], *(f["value"] for f in attachment["fields"])]
    ]
    for text in texts:
        assert "<" not in text and ">" not in re.sub(r"<https://[^<>|]+\|changelog>", "", text)
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text  # every & escaped
        assert all(character.isprintable() or character == "\n" for character in text)
        assert len(text) < 2 * payloads.MAX_SHOWN + 100
    for attachment in body["attachments"]:
        for field in attachment["fields"]:  # registry values are code spans: no mention, no markup
            assert field["value"].startswith("`") and field["value"].count("`") == 2


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("format", [JSON, CLOUDEVENTS])
def test_json_formats_keep_values_as_data_but_bounded(format, value):
    body = render(format, [item(tag=value)])
    decoded = json.loads(body)
    tag = (decoded["events"][0] if format == JSON else decoded["data"])["tag"]
    assert tag == value[: payloads.MAX_VALUE - 1] + "…" if len(value) > payloads.MAX_VALUE else tag == value
    assert b"\x00" not in body and b"\x1b" not in body  # escaped by JSON: the text column takes it


def test_an_unpaired_surrogate_or_huge_number_still_renders():
    body = render(JSON, [item(tag="a\ud800b", builds_behind=10**30, nan=float("nan"))])
    decoded = json.loads(body)["events"][0]
    assert decoded["tag"] == "a?b" and decoded["builds_behind"] == str(10**30) and decoded["nan"] is None


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        render("xml", [item()])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
items = st.lists(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["id", "kind", "tag", "repository", "links", "tags", "signing", "digest",
                             "pin_list", "detected_at", "reference", "builds_behind"]) | st.text(max_size=8),
            json_values, max_size=12,
        ),
        json_values,
    ),
    max_size=25,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(items, st.sampled_from(payloads.FORMATS), st.booleans())
def test_any_items_render_valid_json(found, format, test):
    body = render(format, found, test=test)
    decoded = json.loads(body.decode("utf-8"))
    assert render(format, found, test=test) == body
    if format == SLACK:
        assert isinstance(decoded["text"], str) and len(decoded["attachments"]) <= payloads.MAX_LISTED
    elif format == CLOUDEVENTS:
        events = decoded if isinstance(decoded, list) else [decoded]
        assert len(events) == len(found)
        assert all(event["specversion"] == "1.0" and event["id"] and event["type"] for event in events)
    else:
        assert decoded["count"] == len(found)
