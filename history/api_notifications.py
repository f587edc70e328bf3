"""The API's notification endpoints, staff only: subscriptions (list, make, read, remove, test) and the
delivery log. Mounted on history.api's API; the same readers as the staff pages (history.delivery_log).

Staff only whatever TAGLEDGER_PUBLIC says, since a subscription holds a webhook URL (itself a key, for
Slack) and a signing secret: a staff member's session (CSRF-checked on writes) or an API token of a
staff user, which needs staff scope for anything but GET.
"""

from typing import Annotated

from django.http import HttpResponse
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError
from ninja.security import SessionAuth
from pydantic import BeforeValidator

from catalog.models import Line, Repository, Version
from tagledger.tokens.auth import bearerAuth

from . import api_schemas as out
from . import delivery_log, notify, params
from .keyset import Cursor, InvalidCursor
from .models import PinList, Subscription

STAFF_ONLY = "staff only: subscriptions hold webhook URLs and secrets"
ERRORS = {400: out.Error, 401: out.Error, 403: out.Error, 404: out.Error}


class Staff(SessionAuth):
    """A signed-in staff member's Django session; the anonymous get a 401, others a 403."""

    def __call__(self, request):
        if not request.user.is_authenticated:
            return None  # a 401, as every other endpoint answers the anonymous
        return super().__call__(request)  # reads the cookie after the CSRF check of a write

    def authenticate(self, request, key):
        if not request.user.is_staff:
            raise HttpError(403, STAFF_ONLY)
        return request.user


router = Router(auth=[bearerAuth(staff=True), Staff()], tags=["notifications"])


def _strictly(parser):
    def validate(value: object) -> object:
        return parser(value) if isinstance(value, str) else value

    return BeforeValidator(validate)


Id = Annotated[int, _strictly(params.positive_id), Path(ge=1, le=params.MAX_ID)]


@router.get("subscriptions", response={200: list[out.SubscriptionOut], **ERRORS})
def subscriptions(request):
    """Every subscription, oldest first: what it hears, whether it is enabled (and why not), its
    failures in a row and its newest delivery's status. URLs are masked; secrets are never shown."""
    return [delivery_log.subscription_data(subscription) for subscription in delivery_log.subscriptions()]


@router.post("subscriptions", response={201: out.SubscriptionCreated, **ERRORS})
def subscribe(request, body: out.SubscriptionIn):
    """A new subscription; the answer holds its signing secret, which no later answer shows.

    A URL that is not http(s) or reaches a private or loopback address (unless
    TAGLEDGER_NOTIFY_ALLOW names it), a pattern that will not compile, an unknown kind, repository,
    line, version or pin list: a 400 saying which."""

    # PostgreSQL refuses NUL in text: a 400 here, not a DataError later.
    for field in ("url", "secret", "name", "tag_pattern", "line", "version", "kinds"):
        value = getattr(body, field) or ""
        if any("\x00" in text for text in ([value] if isinstance(value, str) else value)):
            raise HttpError(400, f"{field}: must not contain NUL")
    repository = line = version = pin_list = None
    if body.repository is not None:
        repository = Repository.objects.select_related("registry").filter(pk=body.repository).first()
        if repository is None:
            raise HttpError(400, f"repository: no repository with id {body.repository}")
    for field, model in (("line", Line), ("version", Version)):
        shown = (getattr(body, field) or "").strip()
        if not shown:
            continue
        if repository is None:
            raise HttpError(400, f"{field}: a {field} is of one repository: give `repository` too")
        found = delivery_log.named(model, repository, shown)
        if found is None:
            raise HttpError(400, f"{field}: {repository.reference} has no {field} {shown!r}")
        line, version = (found, version) if field == "line" else (line, found)
    if body.pin_list is not None:
        pin_list = PinList.objects.filter(pk=body.pin_list).first()
        if pin_list is None:
            raise HttpError(400, f"pin_list: no pin list with id {body.pin_list}")
    try:
        subscription, secret = notify.subscribe(
            url=body.url,
            format=body.format,
            secret=body.secret,
            repository=repository,
            tag_pattern=body.tag_pattern,
            kinds=body.kinds,
            line=line,
            version=version,
            pin_list=pin_list,
            name=body.name.strip(),
            created_by=request.user if request.user.is_authenticated else None,
        )
    except notify.SubscriptionError as error:
        raise HttpError(400, str(error)) from None
    subscription = delivery_log.subscriptions().get(pk=subscription.pk)
    return Status(201, {**delivery_log.subscription_data(subscription), "secret": secret})


@router.get("subscriptions/{id}", response={200: out.SubscriptionOut, **ERRORS})
def subscription(request, id: Id):
    """One subscription, as the list shows it."""
    return delivery_log.subscription_data(_subscription_or_404(id))


@router.delete("subscriptions/{id}", response={204: None, **ERRORS})
def unsubscribe(request, id: Id):
    """Removes the subscription and its delivery log."""
    _subscription_or_404(id).delete()
    return HttpResponse(status=204)


@router.post("subscriptions/{id}/test", response={200: out.DeliveryOut, **ERRORS})
def test_subscription(request, id: Id):
    """Sends a test message now (a disabled subscription too: to see whether its receiver is back) and
    answers the delivery as the log records it: delivered with the response code, or failed and why."""
    delivery = notify.send_test(_subscription_or_404(id))
    return delivery_log.delivery_data(delivery_log.entry(delivery.pk))


@router.get("deliveries", response={200: out.DeliveryPage, **ERRORS})
def deliveries(
    request,
    subscription: Annotated[
        int | None,
        Query(ge=1, le=params.MAX_ID, description="A subscription's id."),
        _strictly(params.positive_id),
    ] = None,
    status: out.DeliveryStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200, description="`next` of the previous page.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=delivery_log.MAX_PAGE), _strictly(params.number)
    ] = delivery_log.PAGE,
):
    """The delivery log, newest first, a keyset page at a time (ask again with `cursor=<next>`): when,
    to which subscription, status, attempts, response code, latency, next retry and the last error."""
    if subscription is not None:
        _subscription_or_404(subscription)
    try:
        after = Cursor.decode(cursor) if cursor else None
    except InvalidCursor as invalid:
        raise HttpError(400, f"cursor: {invalid}") from None
    found = delivery_log.page(subscription=subscription, status=status, after=after, limit=limit)
    return delivery_log.page_data(found)


def _subscription_or_404(pk: int) -> Subscription:
    found = delivery_log.subscriptions().filter(pk=pk).first()
    if found is None:
        raise HttpError(404, f"no subscription with id {pk}")
    return found
