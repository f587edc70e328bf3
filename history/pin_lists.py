"""Saved pin lists: saving one (read as the pin check reads pasted text), its pins' status on every
read, and which of its pins fell further behind since a subscription was last told."""

import unicodedata
from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .keyset import Cursor
from .models import PinList
from .pins import STATUS_LABELS, PinError, PinResult, check, check_each

MAX_NAME = 100  # PinList.name's max_length
PAGE_SIZE = 25  # lists per page: each of up to MAX_REFERENCES pins, all checked together


class PinListError(ValueError):
    """What is wrong with a list to save, said so a form, the API or the CLI can show it as is."""


@dataclass(frozen=True)
class Checked:
    """A saved list and its pins' status now: the one shape the lists page and the API show."""

    pin_list: PinList
    results: list[PinResult]

    @property
    def counts(self) -> dict[str, int]:
        """Pins per status, in the pin check's order of statuses, only those that occur."""
        counted = Counter(result.status for result in self.results)
        return {status: counted[status] for status in STATUS_LABELS if counted[status]}

    @property
    def summary(self) -> list[tuple[str, str, int]]:
        """(status, label, count) per status present: "3 current · 2 behind · 1 unknown"."""
        return [(status, STATUS_LABELS[status], count) for status, count in self.counts.items()]

    def as_dict(self, *, pins: bool = False) -> dict:
        """Plain JSON types, for the API; `pins`: each line's result, as /api/v1/pins/check has them."""
        pin_list = self.pin_list
        answer = {
            "id": pin_list.pk,
            "name": pin_list.name,
            "owner": pin_list.owner.get_username() if pin_list.owner else None,
            "created_at": pin_list.created_at.isoformat(),
            "updated_at": pin_list.updated_at.isoformat(),
            "counts": self.counts,
        }
        if pins:
            answer |= {"text": pin_list.text, "pins": [result.as_dict() for result in self.results]}
        return answer


@dataclass(frozen=True)
class Page:
    """A keyset page of lists, newest first; `next` continues after its last one."""

    items: list[Checked]
    next: Cursor | None

    def as_dict(self) -> dict:
        return {"items": [item.as_dict() for item in self.items], "next": self.next and self.next.encode()}


def save(*, name: str, text: str, owner, pin_list: PinList | None = None) -> PinList:
    """A new list of `owner`'s, or `pin_list` renamed and rewritten (it keeps its owner).

    The text is stored as given and must hold at least one image reference (other lines of a
    Dockerfile or compose file are kept and skipped). Saving records how far behind each pin is
    now, so a pin already behind does not fire a notification; one that falls further behind does.
    """
    name = _checked_name(name)
    results = _checked_text(text)
    behind = _baseline(results)
    now = timezone.now()
    if pin_list is None:
        return PinList.objects.create(
            name=name, text=text, owner=owner, created_at=now, updated_at=now, behind=behind
        )
    pin_list.name, pin_list.text, pin_list.updated_at, pin_list.behind = name, text, now, behind
    pin_list.save(update_fields=["name", "text", "updated_at", "behind"])
    return pin_list


def may_edit(user, pin_list: PinList) -> bool:
    """Its owner and staff may change or delete a list; everyone who may read sees it."""
    return bool(user.is_authenticated and (user.is_staff or pin_list.owner_id == user.pk))


def page(cursor: Cursor | None = None, *, size: int = PAGE_SIZE) -> Page:
    """Saved lists, newest first, each with its pins checked: the lists page's and the API's reader."""
    lists = PinList.objects.select_related("owner").order_by("-created_at", "-pk")
    if cursor is not None:
        lists = lists.filter(Q(created_at__lt=cursor.at) | Q(created_at=cursor.at, pk__lt=cursor.id))
    found = list(lists[: size + 1])
    more, found = len(found) > size, found[:size]
    return Page(statuses(found), Cursor(found[-1].created_at, found[-1].pk) if more else None)


def checked(pin_list: PinList) -> Checked:
    """One list and its pins' status now: the list page's and the API's."""
    return Checked(pin_list, status(pin_list))


def status(pin_list: PinList) -> list[PinResult]:
    """Each reference line of the list, checked against recorded history now."""
    return check(pin_list.text)


def statuses(pin_lists: list[PinList]) -> list[Checked]:
    """status() of several lists in the queries of one check (the lists page, the API's list)."""
    checked = check_each([pin_list.text for pin_list in pin_lists])
    return [Checked(pin_list, results) for pin_list, results in zip(pin_lists, checked, strict=True)]


def fallen_behind(pin_list: PinList) -> list[PinResult]:
    """The pins now further behind than when last told (or saved), recording where each is now.

    A pin counts only while it is current (0) or behind (its builds behind); a pin that turns
    unknown keeps its last count, so it does not fire again when it is known once more. The row is
    locked while it is read and written, so two fan-outs after one poll do not both fire.
    """
    with transaction.atomic():
        locked = PinList.objects.select_for_update().filter(pk=pin_list.pk).first()
        if locked is None:  # deleted meanwhile: nothing to tell
            return []
        results = check(locked.text)
        was = {line: count for line, count in locked.behind.items() if isinstance(count, int)}
        now = _baseline(results)
        fell = [
            result
            for result in results
            if (count := now.get(str(result.line))) is not None
            and (before := was.get(str(result.line))) is not None
            and count > before
        ]
        behind = {**was, **now}
        if behind != locked.behind:
            PinList.objects.filter(pk=locked.pk).update(behind=behind)
    pin_list.behind = behind
    return fell


def _baseline(results: list[PinResult]) -> dict[str, int]:
    """{line: builds behind} of the pins that are current or behind: what a later check compares."""
    counted = {}
    for result in results:
        if result.status == "current":
            counted[str(result.line)] = 0
        elif result.status == "behind" and result.builds_behind is not None:
            counted[str(result.line)] = result.builds_behind
    return counted


def _checked_name(name: object) -> str:
    if not isinstance(name, str):
        raise PinListError("name: give the list a name (text)")
    name = name.strip()
    if not name:
        raise PinListError("name: give the list a name")
    if len(name) > MAX_NAME:
        raise PinListError(f"name: at most {MAX_NAME} characters ({len(name)} given)")
    if not name.isprintable():
        raise PinListError("name: only printable characters (no control characters or line breaks)")
    return name


def _checked_text(text: object) -> list[PinResult]:
    if not isinstance(text, str):
        raise PinListError("text: give the references as text, one per line")
    for number, line in enumerate(text.splitlines(), start=1):
        # A NUL cannot be stored, a lone surrogate cannot be encoded; neither is in a Dockerfile.
        if any(_unreadable(character) for character in line):
            raise PinListError(f"text: line {number} holds a control character or is not text")
    try:
        results = check(text)
    except PinError as refused:
        raise PinListError(f"text: {refused}") from None
    if not any(result.status != "invalid" for result in results):
        raise PinListError(
            "text: no image reference found: paste name:tag@digest lines, FROM lines of a Dockerfile"
            " or image: lines of a compose file"
        )
    return results


def _unreadable(character: str) -> bool:
    # Cc: C0, DEL and C1 controls; Cs: surrogates, which no UTF-8 text holds.
    return character != "\t" and unicodedata.category(character) in {"Cc", "Cs"}
