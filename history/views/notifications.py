"""Staff pages for notifications: the subscriptions (made, tested, disabled, removed) and the delivery log.

Subscriptions hold webhook URLs and signing secrets, so both pages are staff-only, whatever
TAGLEDGER_PUBLIC says; a URL is shown masked and a secret once, in the response that made it.
"""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from catalog.models import Line, Repository, Version
from tagledger import once

from .. import delivery_log, notify, params
from ..keyset import Cursor, InvalidCursor
from ..models import PinList, Subscription

MAX_NAME = 100


class SubscriptionForm(forms.Form):
    """What notify.subscribe takes, as fields; each refusal is shown beside the field it is about."""

    name = forms.CharField(max_length=MAX_NAME, required=False, help_text="For people: what it is for.")
    url = forms.CharField(
        label="Webhook URL",
        max_length=2048,
        help_text="http or https; shown masked once saved (a Slack or Mattermost URL is itself a key).",
    )
    format = forms.ChoiceField(
        choices=[
            (value, delivery_log.FORMAT_WORDS.get(value, value)) for value in Subscription.Format.values
        ],
        initial=Subscription.Format.JSON,
    )
    secret = forms.CharField(
        max_length=256, required=False, help_text="The HMAC key of the signature; empty: one is made."
    )
    repository = forms.ModelChoiceField(
        queryset=Repository.objects.select_related("registry").order_by("registry__host", "name"),
        required=False,
        empty_label="Every repository",
    )
    tag_pattern = forms.CharField(
        max_length=512,
        required=False,
        label="Tag pattern",
        help_text="A regular expression; empty: every tag.",
    )
    kinds = forms.MultipleChoiceField(
        choices=(), required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: every kind."
    )
    line = forms.CharField(max_length=260, required=False, help_text="A line of the repository, e.g. 3.14.")
    version = forms.CharField(
        max_length=260, required=False, help_text="A version of the repository, e.g. 3.14.4."
    )
    pin_list = forms.ModelChoiceField(
        queryset=PinList.objects.all(), required=False, empty_label="None", label="Pin list"
    )
    once = once.field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kinds"].choices = [(kind, f"{kind}: {words}") for kind, words in notify.KINDS.items()]

    # Each field through notify's own check, so a refusal is shown beside its field in the words the
    # CLI and the API use; subscribe() checks them all again.
    def clean_url(self):
        return _checked(notify.clean_url, self.cleaned_data["url"])

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        return _checked(notify.clean_secret, secret) if secret else ""

    def clean_name(self):
        return _checked(notify.clean_name, self.cleaned_data["name"])

    def clean_tag_pattern(self):
        return _checked(notify.clean_pattern, self.cleaned_data["tag_pattern"])

    def clean(self):
        data = super().clean()
        for field, model in (("line", Line), ("version", Version)):
            named = data.get(field, "").strip()
            if not named:
                data[field] = None
                continue
            repository = data.get("repository")
            if repository is None:
                self.add_error(field, f"a {field} is of one repository: choose the repository too")
                continue
            data[field] = delivery_log.named(model, repository, named)
            if data[field] is None:
                self.add_error(field, f"{repository.reference} has no {field} {named!r}")
        return data


def _checked(check, value):
    try:
        return check(value)
    except notify.SubscriptionError as error:
        raise forms.ValidationError(str(error)) from None


@staff_member_required
@require_http_methods(["GET", "HEAD", "POST"])
def subscriptions(request):
    """Every subscription and the form for a new one; a POST that makes one shows its secret here only."""
    created = None
    if request.method == "POST":
        form = SubscriptionForm(request.POST)
        if form.is_valid() and not once.spend(form.cleaned_data[once.FIELD]):
            # The same form again (a reload of the page that showed the secret): made already.
            messages.info(request, "That form was sent already: its subscription is below.")
            return redirect("history:notifications")
        if form.is_valid():
            data = form.cleaned_data
            try:
                subscription, secret = notify.subscribe(
                    url=data["url"],
                    format=data["format"],
                    secret=data["secret"] or None,
                    repository=data["repository"],
                    tag_pattern=data["tag_pattern"],
                    kinds=data["kinds"],
                    line=data["line"],
                    version=data["version"],
                    pin_list=data["pin_list"],
                    name=data["name"],
                    created_by=request.user,
                )
            except notify.SubscriptionError as error:
                form.add_error(None, str(error))
            else:
                created = {"label": delivery_log.label(subscription), "secret": secret}
                form = SubscriptionForm()
    else:
        form = SubscriptionForm()
    rows = [
        {
            "subscription": subscription,
            "label": delivery_log.label(subscription),
            "masked": delivery_log.masked_url(subscription.url),
            "format": delivery_log.FORMAT_WORDS.get(subscription.format, subscription.format),
            "filters": delivery_log.describe(subscription),
        }
        for subscription in delivery_log.subscriptions()
    ]
    context = {"form": form, "created": created, "rows": rows}
    return render(request, "history/notifications.html", context, status=201 if created else 200)


@require_POST
@staff_member_required
def send_test(request, pk: int):
    subscription = get_object_or_404(Subscription, pk=pk)
    delivery = notify.send_test(subscription)
    outcome = delivery_log.STATUS_WORDS.get(delivery.status, delivery.status)
    detail = f" ({delivery.response_code})" if delivery.response_code else ""
    if delivery.error:
        detail += f": {delivery_log.short_error(delivery)}"
    (messages.success if delivery.status == "delivered" else messages.error)(
        request, f"Test message to {delivery_log.label(subscription)}: {outcome}{detail}."
    )
    return redirect(f"{reverse('history:deliveries')}?{urlencode({'subscription': subscription.pk})}")


@require_POST
@staff_member_required
def disable(request, pk: int):
    subscription = get_object_or_404(Subscription, pk=pk)
    notify.disable(subscription, f"disabled by {request.user.get_username()}")
    messages.success(
        request,
        f"Disabled {delivery_log.label(subscription)}: nothing more is sent until it is enabled again.",
    )
    return redirect("history:notifications")


@require_POST
@staff_member_required
def enable(request, pk: int):
    subscription = get_object_or_404(Subscription, pk=pk)
    notify.enable(subscription)
    messages.success(request, f"Enabled {delivery_log.label(subscription)} again.")
    return redirect("history:notifications")


@require_POST
@staff_member_required
def remove(request, pk: int):
    subscription = get_object_or_404(Subscription, pk=pk)
    name = delivery_log.label(subscription)
    subscription.delete()  # its deliveries go with it: a log of a receiver no one can see is noise
    messages.success(request, f"Removed {name} and its delivery log.")
    return redirect("history:notifications")


@staff_member_required
@require_http_methods(["GET", "HEAD"])
def deliveries(request):
    """The delivery log, newest first, by subscription and status, a keyset page at a time."""
    errors, subscription, status, cursor = [], None, request.GET.get("status", ""), None
    raw = request.GET.get("subscription", "")
    if raw:
        try:
            subscription = Subscription.objects.filter(pk=params.positive_id(raw)).first()
        except params.InvalidParameter as invalid:
            errors.append(f"subscription: {invalid}")
        else:
            if subscription is None:
                errors.append(f"subscription: no subscription with id {raw}")
    if status and status not in delivery_log.STATUSES:
        errors.append(f"status: one of {', '.join(delivery_log.STATUSES)}")
    if request.GET.get("cursor"):
        try:
            cursor = Cursor.decode(request.GET["cursor"])
        except InvalidCursor as invalid:
            errors.append(str(invalid))
    found = delivery_log.Page([], None)
    if not errors:
        found = delivery_log.page(subscription=subscription, status=status or None, after=cursor)
    here = {
        name: value for name, value in (("subscription", raw), ("status", status)) if value and not errors
    }
    context = {
        "errors": errors,
        "subscription": subscription,
        "status": status,
        "statuses": delivery_log.STATUSES,
        "choices": delivery_log.subscriptions(),
        "rows": [
            (delivery, delivery_log.masked_url(delivery.subscription.url)) for delivery in found.deliveries
        ],
        "first_query": urlencode(here),
        "is_first": not cursor,
        "next_query": urlencode({**here, "cursor": found.next_cursor.encode()}) if found.next_cursor else "",
    }
    return render(request, "history/notifications_deliveries.html", context, status=400 if errors else 200)
