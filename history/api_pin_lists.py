"""The API's saved pin lists: list, read (each pin checked now), save, change, delete. Mounted on
history.api's API; the same reader as the pages (history.pin_lists).

Reading follows the pages (everyone on a public instance, else signed-in users or an API token).
Writing needs a signed-in session (CSRF-checked) or an API token with staff scope, on every
instance: a read-only token never writes. Only a list's owner or staff change or delete it.
"""

from typing import Annotated

from django.http import HttpResponse
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError
from ninja.security import SessionAuth
from pydantic import BeforeValidator

from tagledger.tokens.auth import bearerAuth

from . import api_schemas as out
from . import params, pin_lists
from .keyset import Cursor, InvalidCursor
from .models import PinList

ERRORS = {400: out.Error, 401: out.Error, 404: out.Error}
WRITE_ERRORS = {**ERRORS, 403: out.Error}


class SignedIn(SessionAuth):
    """A signed-in user's Django session, CSRF-checked as every write is; the anonymous get a 401."""

    def __call__(self, request):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


# A token is read on a public instance too (reads need none there); a write needs staff scope.
WRITERS = [bearerAuth(staff=True), SignedIn()]

router = Router(tags=["pin lists"])


def _strictly(parser):
    def validate(value: object) -> object:
        return parser(value) if isinstance(value, str) else value

    return BeforeValidator(validate)


Id = Annotated[int, _strictly(params.positive_id), Path(ge=1, le=params.MAX_ID)]


@router.get("pin-lists", response={200: out.PinListPage, **ERRORS})
def pin_list_page(
    request,
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
):
    """Saved pin lists, newest first, 25 a page, each with its pins counted by status now (the lists
    page's). Ask again with `cursor=<next>` for older ones."""
    try:
        position = Cursor.decode(cursor) if cursor else None
    except InvalidCursor as invalid:
        raise HttpError(400, f"cursor: {invalid}") from None
    return pin_lists.page(position).as_dict()


@router.post("pin-lists", response={201: out.PinListDetail, **WRITE_ERRORS}, auth=WRITERS)
def save_pin_list(request, body: out.PinListIn):
    """Save a new list, owned by the caller; the answer checks its pins. A name that is not one line
    of printable text, or text with no image reference, too many references or control
    characters: a 400 saying which."""
    try:
        saved = pin_lists.save(name=body.name, text=body.text, owner=request.user)
    except pin_lists.PinListError as refused:
        raise HttpError(400, str(refused)) from None
    return Status(201, pin_lists.checked(saved).as_dict(pins=True))


@router.get("pin-lists/{id}", response={200: out.PinListDetail, **ERRORS})
def pin_list(request, id: Id):
    """One saved list: its text and each reference line checked now, as `GET /api/v1/pins` answers."""
    return pin_lists.checked(_pin_list_or_404(id)).as_dict(pins=True)


@router.put("pin-lists/{id}", response={200: out.PinListDetail, **WRITE_ERRORS}, auth=WRITERS)
def change_pin_list(request, id: Id, body: out.PinListIn):
    """Rename and rewrite a list (its owner or staff): both fields, as when saving. A change resets
    how far behind each pin was last told, so a subscription fires on what happens next."""
    found = _editable_or_403(request, id)
    try:
        pin_lists.save(name=body.name, text=body.text, owner=found.owner, pin_list=found)
    except pin_lists.PinListError as refused:
        raise HttpError(400, str(refused)) from None
    return pin_lists.checked(found).as_dict(pins=True)


@router.delete("pin-lists/{id}", response={204: None, **WRITE_ERRORS}, auth=WRITERS)
def delete_pin_list(request, id: Id):
    """Delete a list (its owner or staff), and the subscriptions to it."""
    _editable_or_403(request, id).delete()
    return HttpResponse(status=204)


def _pin_list_or_404(pk: int) -> PinList:
    found = PinList.objects.select_related("owner").filter(pk=pk).first()
    if found is None:
        raise HttpError(404, f"no pin list with id {pk}")
    return found


def _editable_or_403(request, pk: int) -> PinList:
    found = _pin_list_or_404(pk)
    if not pin_lists.may_edit(request.user, found):
        raise HttpError(403, "only the list's owner or staff may change it")
    return found
