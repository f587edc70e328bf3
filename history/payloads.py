"""The bytes a subscription receives: one batch of items rendered as tagledger's JSON, a Slack or
Mattermost incoming-webhook message, or CloudEvents 1.0 — pure functions of plain dicts, no database.

An item is what history.notify makes of an event (or a pin that fell behind): plain JSON values.
Anything in it may come from a registry (tag names, versions from labels) and so may be long or
hostile: every string is bounded and made encodable here, and the Slack form escapes what Slack's
mrkdwn would read as markup (`<!channel>`, `<url|text>`). The same items always give the same bytes.
"""

import json
from datetime import UTC, datetime
from typing import Any

JSON, SLACK, CLOUDEVENTS = "json", "slack", "cloudevents"
FORMATS = (JSON, SLACK, CLOUDEVENTS)
PAYLOAD_VERSION = 1

# Bounds on values from a registry: a tag is at most 128 characters, but labels and stored text
# need not be; nesting and lists are bounded for items of any shape.
MAX_VALUE = 1024
MAX_LIST = 100
MAX_DEPTH = 6
# Slack: items shown as attachments (the rest counted in the text), characters of one shown value,
# tags of a build listed.
MAX_LISTED = 20
MAX_SHOWN = 200
MAX_TAGS_SHOWN = 10

CONTENT_TYPE = "application/json"
CLOUDEVENT_TYPE = "application/cloudevents+json"
CLOUDEVENT_BATCH_TYPE = "application/cloudevents-batch+json"

# What each kind is called in a message, and the colour of its bar (security events in red).
WORDS = {
    "created": "created",
    "moved": "moved",
    "deleted": "deleted",
    "restored": "restored",
    "immutable_moved": "moved although immutable",
    "pin_behind": "pin fell behind",
}
SIGNING_WORDS = {"unsigned": "now unsigned", "signer_changed": "signer changed"}
COLOURS = {
    "created": "#2e8540",
    "restored": "#2e8540",
    "moved": "#2f6fdf",
    "deleted": "#b26b00",
    "pin_behind": "#b26b00",
    "immutable_moved": "#c81e1e",
}
ALARM = "#c81e1e"


def render(format: str, items: list[dict], *, test: bool = False) -> bytes:
    """The body for `format` (json, slack or cloudevents); ValueError for another format."""
    items = [bounded(item) if isinstance(item, dict) else {} for item in items]
    if format == JSON:
        document: Any = json_document(items, test=test)
    elif format == SLACK:
        document = slack_message(items, test=test)
    elif format == CLOUDEVENTS:
        events = [cloudevent(item, test=test) for item in items]
        document = events[0] if len(events) == 1 else events
    else:
        raise ValueError(f"unknown format {format!r:.40}")
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def content_type(format: str, body: bytes = b"") -> str:
    """The Content-Type of a body `render` made: CloudEvents structured mode for one event, the
    CloudEvents JSON batch format (an array) for several."""
    if format == CLOUDEVENTS:
        return CLOUDEVENT_BATCH_TYPE if body.lstrip()[:1] == b"[" else CLOUDEVENT_TYPE
    return CONTENT_TYPE


# --- tagledger's own JSON -------------------------------------------------------------------------


def json_document(items: list[dict], *, test: bool) -> dict:
    return {"payload_version": PAYLOAD_VERSION, "test": test, "count": len(items), "events": items}


# --- CloudEvents 1.0 ------------------------------------------------------------------------------


def cloudevent(item: dict, *, test: bool) -> dict:
    """One structured-mode event: the item is its `data`; `type` names the kind
    (dev.tagledger.tag.moved, dev.tagledger.pin.behind, dev.tagledger.test)."""
    kind = _text(item.get("kind")) or "unknown"
    links = item.get("links") if isinstance(item.get("links"), dict) else {}
    if test:
        type_ = "dev.tagledger.test"
    elif kind == "pin_behind":
        type_ = "dev.tagledger.pin.behind"
    else:
        type_ = f"dev.tagledger.tag.{kind}"
    if kind == "pin_behind":
        subject = _text(item.get("reference"))
    else:
        subject = f"{_text(item.get('repository'))}:{_text(item.get('tag'))}"
    event = {
        "specversion": "1.0",
        "id": _text(item.get("id")) or "unknown",
        # the context the id is unique in: the repository's changelog (or the pin list's page)
        "source": _text(links.get("changelog") or links.get("pin_list")) or "/tagledger",
        "type": type_,
        "subject": subject,
    }
    if time := _text(item.get("detected_at")):
        event["time"] = time
    return {**event, "datacontenttype": "application/json", "data": item}


# --- Slack and Mattermost -------------------------------------------------------------------------


def slack_message(items: list[dict], *, test: bool) -> dict:
    """An incoming-webhook message both Slack and Mattermost render: `text` (the headline, what a
    notification shows) and one legacy attachment per item, up to MAX_LISTED, with a plain-text
    `fallback`. Registry values are shown as code and escaped for mrkdwn."""
    repositories = sorted({_text(item.get("repository")) for item in items if item.get("repository")})
    if test:
        headline = "tagledger test delivery: this webhook receives tagledger's notifications."
    else:
        what = _count(len(items), "change")
        where = f" in {code(repositories[0])}" if len(repositories) == 1 else ""
        headline = f"tagledger: {what}{where}"
    lines = [headline]
    if len(items) > MAX_LISTED:
        changelog = _link(_links(items[0]).get("changelog"))
        more = f"…and {len(items) - MAX_LISTED} more"
        lines.append(f"{more}: <{changelog}|changelog>" if changelog else f"{more} (see the changelog)")
    return {"text": "\n".join(lines), "attachments": [attachment(item) for item in items[:MAX_LISTED]]}


def attachment(item: dict) -> dict:
    kind = _text(item.get("kind"))
    signing = _text(item.get("signing"))
    links = _links(item)
    if kind == "pin_behind":
        pin_list = item.get("pin_list") if isinstance(item.get("pin_list"), dict) else {}
        title = f"pin {escape(item.get('reference'))} fell behind"
        fields = [
            field("Pin list", pin_list.get("name")),
            field("Builds behind", item.get("builds_behind")),
            field("Pin to now", item.get("current_reference"), short=False),
        ]
        summary = f"{_plain(item.get('reference'))} fell behind"
        target = links.get("compare")
    else:
        said = WORDS.get(kind, kind or "changed")
        if signing in SIGNING_WORDS:
            said += f", {SIGNING_WORDS[signing]}"
        title = f"{escape(item.get('repository'))}:{escape(item.get('tag'))} {escape(said)}"
        summary = f"{_plain(item.get('repository'))}:{_plain(item.get('tag'))} {said}"
        fields = [
            field("Digest", _short_digest(item.get("digest"))),
            field("Previous digest", _short_digest(item.get("previous_digest"))),
            field("Version", item.get("version")),
            field("Detected", _when(item.get("detected_at"))),
            field("Tags of the build", _tags(item.get("tags")), short=False),
        ]
        target = links.get("compare") or links.get("build") or links.get("tag")
    made = {
        "fallback": escape(summary),
        "color": ALARM if signing in SIGNING_WORDS else COLOURS.get(kind, "#767676"),
        "title": title,
    }
    if link := _link(target):
        made["title_link"] = link
    # mrkdwn_in: Slack formats an attachment's fields only when told (Mattermost always does), and
    # the values are code spans.
    return {**made, "fields": [found for found in fields if found["value"] != "—"], "mrkdwn_in": ["fields"]}


def field(title: str, value, *, short: bool = True) -> dict:
    return {"title": title, "value": code(value) if value not in (None, "", []) else "—", "short": short}


def escape(value) -> str:
    """A value as mrkdwn text: bounded, printable, and Slack's three control characters escaped
    (Slack reads `<!channel>` and `<url|text>`; Mattermost translates the same forms)."""
    text = _plain(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value) -> str:
    """A value as inline code: no formatting, no mentions; a backtick in it cannot end the span."""
    return "`" + escape(value).replace("`", "'") + "`"


def _plain(value) -> str:
    """One line of printable text, at most MAX_SHOWN characters."""
    text = "".join(c if c.isprintable() else "?" for c in _text(value))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _when(value) -> str:
    """An ISO time as people read it in chat (UTC, to the second); text that is none, as it is."""
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return _text(value)


def _tags(tags) -> str:
    if not isinstance(tags, list):
        return ""
    names = [_text(tag) for tag in tags[:MAX_TAGS_SHOWN]]
    more = len(tags) - MAX_TAGS_SHOWN
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _short_digest(digest) -> str:
    text = _text(digest)
    algorithm, _, hex_ = text.partition(":")
    return f"{algorithm}:{hex_[:12]}" if hex_ and len(hex_) > 12 else text


def _links(item: dict) -> dict:
    links = item.get("links")
    return links if isinstance(links, dict) else {}


def _link(url) -> str | None:
    """A link Slack can open (absolute http(s), no characters its <url|text> syntax reads)."""
    text = _text(url)
    if (
        not text.startswith(("https://", "http://"))
        or any(c in text for c in "<>| ")
        or not text.isprintable()
    ):
        return None
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- bounds ---------------------------------------------------------------------------------------


def bounded(value, depth: int = 0):
    """`value` as plain JSON values of bounded size: strings cut to MAX_VALUE and made encodable
    (an unpaired surrogate becomes `?`), lists to MAX_LIST, nesting to MAX_DEPTH; anything else
    (a datetime, a number too large for JSON readers) as its text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return _text(value)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {_text(key)[:100]: bounded(item, depth + 1) for key, item in list(value.items())[:MAX_LIST]}
    if isinstance(value, list | tuple):
        return [bounded(item, depth + 1) for item in value[:MAX_LIST]]
    if hasattr(value, "isoformat"):
        return _text(value.isoformat())
    return _text(str(value))


def _text(value) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "…"
    return text.encode("utf-8", "replace").decode() if not _encodable(text) else text


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
