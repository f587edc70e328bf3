"""The changelog as an Atom feed: the same filters as the page, its newest (or cursor's) page of events.

Registry-supplied text is escaped twice where Atom says the content is HTML (the summary) and
once where it is text (titles); XML 1.0 cannot carry control characters, so they become U+FFFD.
"""

import re
import uuid
from urllib.parse import urlencode

from django.contrib.syndication.views import Feed
from django.http import HttpResponseBadRequest
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import format_html

from catalog.models import Repository
from tagledger.access import readable

from .changelog import ChangelogFilter, InvalidFilter, imported_rows, page, parse
from .keyset import Cursor
from .models import TagEvent
from .supply_chain import SIGNING_WORDS

SIGNING_TITLES = {"unsigned": "signed → unsigned", "signer_changed": "another signer"}

# A fixed namespace: an entry's id is derived from what it records, so it never changes.
ENTRY_NAMESPACE = uuid.UUID("0b6f7f1e-3c2a-5d47-9a51-7461676c6564")
_NOT_XML = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]")


@readable
def changelog_feed(request):
    try:
        changelog, cursor = parse(request.GET)
    except InvalidFilter as invalid:
        lines = [f"{name}: {message}" for name, message in invalid.errors.items()]
        return HttpResponseBadRequest(
            "\n".join(["This feed's filters are not valid:", *lines, ""]),
            content_type="text/plain; charset=utf-8",
        )
    return ChangelogFeed()(request, changelog=changelog, cursor=cursor)


class ChangelogFeed(Feed):
    feed_type = Atom1Feed
    author_name = "tagledger"

    def get_object(self, request, changelog: ChangelogFilter, cursor: Cursor | None):
        repository = None
        if changelog.repository:
            repository = Repository.objects.select_related("registry").filter(pk=changelog.repository).first()
        return {"changelog": changelog, "cursor": cursor, "repository": repository}

    def title(self, obj) -> str:
        scope = f" of {obj['repository'].reference}" if obj["repository"] else ""
        narrowed = {
            name: value for name, value in obj["changelog"].as_query().items() if name != "repository"
        }
        described = [
            "with artifacts" if name == "artifacts" else f"{name} {value}" for name, value in narrowed.items()
        ]
        details = f" ({', '.join(described)})" if described else ""
        return _text(f"tagledger changelog{scope}{details}")

    def link(self, obj) -> str:
        return _with_query(reverse("history:changelog"), obj["changelog"].as_query())

    def feed_url(self, obj) -> str:
        return _with_query(reverse("history:changelog_feed"), obj["changelog"].as_query())

    def items(self, obj) -> list[TagEvent]:
        return page(obj["changelog"], obj["cursor"], collapse_imports=True).events

    def item_title(self, event: TagEvent) -> str:
        where = event.tag.repository.reference
        if event.import_size is not None:
            return _text(f"imported {event.import_size} {_tags(event.import_size)} in {where}")
        flag = f" ({SIGNING_TITLES[event.signing]})" if event.signing else ""
        if event.kind == TagEvent.Kind.IMMUTABLE_MOVED:
            return _text(f"immutable tag moved: {event.tag.name} in {where}{flag}")
        return _text(f"{event.tag.name} {event.kind} in {where}{flag}")

    def item_link(self, event: TagEvent) -> str:
        if event.import_size is not None:
            return _with_query(reverse("history:changelog"), imported_rows(event).as_query())
        build_id = event.build_id or event.previous_build_id
        return reverse("history:build", args=[build_id])

    def item_guid(self, event: TagEvent) -> str:
        """What the event records, not its row id: the same across restores and reimports. An
        import's entry is the import, not the first sighting its row also is (a feed of that tag
        lists that one)."""
        where, at = event.tag.repository.reference, event.detected_at.isoformat()
        if event.import_size is not None:
            seen = f"{where}|imported|{at}"
        else:
            seen = f"{where}:{event.tag.name}|{event.kind}|{at}"
        return uuid.uuid5(ENTRY_NAMESPACE, seen).urn

    item_guid_is_permalink = False

    def item_updateddate(self, event: TagEvent):
        return event.detected_at

    def item_description(self, event: TagEvent) -> str:
        """HTML (Atom's summary type="html"): format_html escapes, the XML writer escapes again."""
        if event.import_size is not None:
            return _text(
                format_html(
                    "<p>The first poll of <code>{}</code> saw {} {} for the first time.</p>",
                    event.tag.repository.reference,
                    event.import_size,
                    _tags(event.import_size),
                )
            )
        old = event.previous_build.digest if event.previous_build else "none"
        new = event.build.digest if event.build else "not tracked" if event.kind == "untracked" else "deleted"
        version = (event.build and event.build.version) or (
            event.previous_build and event.previous_build.version
        )
        summary = format_html(
            "<p>{} <code>{}</code>: <code>{}</code> → <code>{}</code></p>",
            event.kind.replace("_", " "),
            f"{event.tag.repository.reference}:{event.tag.name}",
            old,
            new,
        )
        if event.not_before:
            summary += format_html(
                "<p>Changed between {} and {}.</p>",
                event.not_before.isoformat(),
                event.detected_at.isoformat(),
            )
        if version:
            summary += format_html("<p>Version {}.</p>", str(version))
        if event.signing:
            summary += format_html("<p><strong>Signing:</strong> {}.</p>", SIGNING_WORDS[event.signing])
        return _text(summary)


def _tags(count: int) -> str:
    return "tag" if count == 1 else "tags"


def _with_query(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


def _text(value: str) -> str:
    """XML 1.0 cannot carry control characters at all, escaped or not."""
    return _NOT_XML.sub("\ufffd", value)
