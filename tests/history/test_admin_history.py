"""History in the admin can be looked at, never added to, changed or deleted, not even by a superuser.

The rows come from a real poll of a real push (a buildx index: builds, platforms, attestations).
"""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from catalog.models import Repository, Tag
from history.models import Attestation, Build, Platform, PollRun, TagEvent, TagState

pytestmark = pytest.mark.django_db

HISTORY = [TagEvent, TagState, Build, Platform, Attestation, PollRun]


@pytest.fixture(autouse=True)
def _history(polled) -> None:
    """Every test here reads rows of each history model, from the real poll in `polled`."""
    for model in HISTORY:
        assert model.objects.exists(), model


def url(model, *path) -> str:
    """/admin/<app>/<model>/ followed by `path`'s parts."""
    return "/".join(["/admin", model._meta.app_label, model._meta.model_name, *map(str, path), ""])


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in HISTORY}


@pytest.mark.parametrize("model", HISTORY, ids=lambda model: model.__name__)
def test_a_superuser_can_view_history_but_not_add_change_or_delete_it(admin_client, polled, model):
    before = counts()
    row = model.objects.first()
    listing = admin_client.get(url(model))

    assert listing.status_code == 200
    assert listing.context["has_add_permission"] is False
    assert listing.context["action_form"] is None, "no actions, so no bulk delete"
    detail = admin_client.get(url(model, row.pk, "change"))
    assert detail.status_code == 200
    assert not detail.context["has_change_permission"] and not detail.context["has_delete_permission"]
    assert 'name="_save"' not in detail.content.decode()

    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "add"), {}).status_code == 403
    assert admin_client.post(url(model, row.pk, "change"), {}).status_code == 403
    assert admin_client.get(url(model, row.pk, "delete")).status_code == 403
    assert admin_client.post(url(model, row.pk, "delete"), {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    assert admin_client.post(url(model), bulk).status_code in {200, 302}
    assert counts() == before


def test_staff_with_only_the_view_permission_see_history(polled):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_tagevent", "view_build"]))
    browser = Client()
    browser.force_login(viewer)

    assert browser.get(url(TagEvent)).status_code == 200
    assert browser.get(url(Build, Build.objects.first().pk, "change")).status_code == 200
    assert browser.get(url(PollRun)).status_code == 403


@pytest.mark.parametrize("model", [Repository, Tag], ids=lambda model: model.__name__)
def test_a_catalog_row_whose_deletion_would_take_history_with_it_is_kept(admin_client, polled, model):
    target = polled if model is Repository else polled.tags.get(name="1.0")
    before = counts()

    confirm = admin_client.get(url(model, target.pk, "delete"))
    refused = admin_client.post(url(model, target.pk, "delete"), {"post": "yes"})

    assert confirm.status_code == 200 and confirm.context["perms_lacking"]
    assert refused.status_code == 403
    assert model.objects.filter(pk=target.pk).exists()
    assert counts() == before
