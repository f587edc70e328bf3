"""Saved pin lists: what saving takes and refuses, and which pins fell further behind since last told.

History comes from real pushes to the real registry, recorded by real polls.
"""

import json
from html import escape

import hypothesis
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from history.models import PinList
from history.pin_lists import PAGE_SIZE, PinListError, fallen_behind, save, status, statuses
from history.pins import MAX_INPUT, MAX_REFERENCES
from tagledger.tokens.models import ApiToken
from tagledger.wsgi import application
from tests.history.factories import polled, watch
from tests.history.test_api_schema import BOUNDED, CHECKS

pytestmark = pytest.mark.django_db

ZERO = "sha256:" + "0" * 64


class Rebuilt:
    """A repository whose tag `3.12` is rebuilt on demand (each rebuild polled)."""

    def __init__(self, registry, pusher, name):
        self.pusher, self.name = pusher, name
        self.repository = watch(registry, name)
        self.ref = self.repository.reference
        self.digests = []
        self.rebuild()

    def rebuild(self) -> str:
        self.digests.append(
            self.pusher.push(self.name, "3.12", "oci-index", seed=f"build {len(self.digests)}").digest
        )
        polled(self.repository)
        return self.digests[-1]

    def pin(self, index: int = -1) -> str:
        return f"{self.ref}:3.12@{self.digests[index]}"


@pytest.fixture
def rebuilt(registry, pusher, repo_name) -> Rebuilt:
    return Rebuilt(registry, pusher, repo_name)


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("dev")


# --- saving -----------------------------------------------------------------------------------------


def test_a_list_is_saved_as_given_with_its_owner_and_its_pins_baseline(rebuilt, owner):
    text = f"# base images\nFROM {rebuilt.pin()} AS build\nRUN make\n"

    saved = save(name="  api Dockerfile ", text=text, owner=owner)

    saved.refresh_from_db()
    assert (saved.name, saved.text, saved.owner) == ("api Dockerfile", text, owner)
    assert saved.behind == {"2": 0}
    assert [result.status for result in status(saved)] == ["current"]


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("", "python:3.12@" + ZERO, "name: give the list a name"),
        ("   ", "python:3.12@" + ZERO, "name: give the list a name"),
        ("x" * 101, "python:3.12@" + ZERO, "name: at most 100 characters (101 given)"),
        ("two\nlines", "python:3.12@" + ZERO, "name: only printable characters"),
        ("nul\x00", "python:3.12@" + ZERO, "name: only printable characters"),
        ("bell\x07", "python:3.12@" + ZERO, "name: only printable characters"),
        ("surrogate \ud800", "python:3.12@" + ZERO, "name: only printable characters"),
        (None, "python:3.12@" + ZERO, "name: give the list a name (text)"),
        (["a"], "python:3.12@" + ZERO, "name: give the list a name (text)"),
        ("ok", "", "text: no image reference found"),
        ("ok", "# only a comment\nRUN true\n\n", "text: no image reference found"),
        ("ok", "FROM ${BASE}\n", "text: no image reference found"),
        ("ok", "not a reference at all!", "text: no image reference found"),
        ("ok", "python:3.12\x00@" + ZERO, "text: line 1 holds a control character"),
        ("ok", "# fine\nFROM python:3.12\x1b[31m", "text: line 2 holds a control character"),
        ("ok", "FROM python:3.12\x9b31m", "text: line 1 holds a control character"),
        ("ok", "python:3.12 \udfff", "text: line 1 holds a control character or is not text"),
        (
            "ok",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".decode("latin-1"),
            "text: line 1 holds a control character",
        ),
        ("ok", "a" * (MAX_INPUT + 1), "text: the input is too large (at most 512 KiB)"),
        ("ok", "\n".join(f"python:3.{n}" for n in range(MAX_REFERENCES + 1)), "text: too many references"),
        ("ok", None, "text: give the references as text"),
        ("ok", {"text": "python:3.12"}, "text: give the references as text"),
    ],
)
def test_saving_refuses_what_is_no_list_and_says_why(owner, name, text, error):
    with pytest.raises(PinListError) as refused:
        save(name=name, text=text, owner=owner)

    assert str(refused.value).startswith(error), str(refused.value)
    assert not PinList.objects.exists()


def test_a_hostile_name_and_a_list_of_the_most_references_are_saved_as_text(owner):
    text = "\n".join(f"python:3.{n}@{ZERO}" for n in range(MAX_REFERENCES))
    saved = save(name='<script>alert("x")</script>', text=text, owner=owner)

    assert PinList.objects.get().name == '<script>alert("x")</script>'
    assert len(status(saved)) == MAX_REFERENCES


def test_a_list_with_some_unreadable_lines_is_kept_and_shows_them_invalid(owner):
    saved = save(name="mixed", text=f"FROM ${{BASE}}\nFROM python:3.12@{ZERO}\n", owner=owner)

    assert [result.status for result in status(saved)] == ["invalid", "unknown"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.text(max_size=120), text=st.text(max_size=300))
def test_any_text_is_saved_or_refused_with_a_reason_never_an_error(name, text):
    owner, _ = User.objects.get_or_create(username="fuzz")
    try:
        saved = save(name=name, text=text, owner=owner)
    except PinListError as refused:
        assert str(refused).split(":")[0] in {"name", "text"}
    else:
        saved.refresh_from_db()
        assert saved.text == text and 1 <= len(saved.name) <= 100
        status(saved)


# --- falling behind -----------------------------------------------------------------------------


def test_a_pin_that_falls_behind_is_told_once_then_again_when_it_falls_further(rebuilt, owner):
    current = rebuilt.pin()
    saved = save(name="app", text=f"FROM {current}\n", owner=owner)
    assert fallen_behind(saved) == []  # nothing moved since saving

    rebuilt.rebuild()
    (fell,) = fallen_behind(saved)
    assert (fell.line, fell.status, fell.builds_behind) == (1, "behind", 1)
    assert fell.current_reference == rebuilt.pin()
    assert PinList.objects.get().behind == {"1": 1}

    polled(rebuilt.repository)  # a poll that sees nothing new
    assert fallen_behind(saved) == []
    assert fallen_behind(PinList.objects.get()) == []  # the baseline is stored, not only in memory

    rebuilt.rebuild()
    (further,) = fallen_behind(saved)
    assert further.builds_behind == 2
    assert PinList.objects.get().behind == {"1": 2}


def test_a_pin_already_behind_when_saved_fires_only_when_it_falls_further(rebuilt, owner):
    rebuilt.rebuild()
    saved = save(name="old", text=rebuilt.pin(0), owner=owner)
    assert saved.behind == {"1": 1}
    assert fallen_behind(saved) == []

    rebuilt.rebuild()
    assert [result.builds_behind for result in fallen_behind(saved)] == [2]


def test_editing_a_list_resets_its_baseline(rebuilt, owner):
    saved = save(name="app", text=rebuilt.pin(), owner=owner)
    rebuilt.rebuild()
    rebuilt.rebuild()

    # The same line now holds another pin: its old count says nothing about it.
    save(name="app", text=f"{rebuilt.pin(1)}\n", owner=owner, pin_list=saved)
    assert PinList.objects.get().behind == {"1": 1}
    assert fallen_behind(saved) == []
    rebuilt.rebuild()
    assert [result.builds_behind for result in fallen_behind(saved)] == [2]


def test_only_the_pins_that_fell_are_told_and_unknown_ones_never(rebuilt, owner):
    text = f"{rebuilt.pin()}\n{rebuilt.ref}:3.12@{ZERO}\nexample.com/nothing:1@{ZERO}\n"
    saved = save(name="three", text=text, owner=owner)
    assert saved.behind == {"1": 0}  # neither unknown pin is counted

    rebuilt.rebuild()
    assert [result.line for result in fallen_behind(saved)] == [1]


def test_a_pin_that_catches_up_and_falls_behind_again_is_told_again(rebuilt, registry, pusher, owner):
    first = rebuilt.pin()
    saved = save(name="app", text=first, owner=owner)
    rebuilt.rebuild()
    assert len(fallen_behind(saved)) == 1

    pusher.tag(rebuilt.name, rebuilt.digests[0], "3.12")  # the tag goes back to the pinned build
    polled(rebuilt.repository)
    assert fallen_behind(saved) == [] and saved.behind == {"1": 0}
    pusher.tag(rebuilt.name, rebuilt.digests[1], "3.12")
    polled(rebuilt.repository)
    assert [result.builds_behind for result in fallen_behind(saved)] == [1]


def test_a_deleted_list_has_nothing_to_tell(rebuilt, owner):
    saved = save(name="gone", text=rebuilt.pin(), owner=owner)
    PinList.objects.filter(pk=saved.pk).delete()

    assert fallen_behind(saved) == []


def test_checking_a_list_of_fifty_pins_costs_what_checking_one_does(rebuilt, owner):
    one = save(name="one", text=rebuilt.pin(), owner=owner)
    lines = [f"FROM {rebuilt.pin()} AS stage{n}" for n in range(50)]
    many = save(name="fifty", text="\n".join(lines), owner=owner)

    with CaptureQueriesContext(connection) as single:
        fallen_behind(one)
    with CaptureQueriesContext(connection) as fifty:
        fallen_behind(many)
    assert len(fifty) == len(single)

    with CaptureQueriesContext(connection) as page:
        checked = statuses([one, many] * 10)
    assert len(page) <= len(single)
    assert [len(each.results) for each in checked[:2]] == [1, 50]
    assert checked[1].summary == [("current", "current", 50)]


# --- pages ----------------------------------------------------------------------------------------


@pytest.fixture
def users() -> dict[str, User]:
    return {
        "owner": User.objects.create_user("owner"),
        "other": User.objects.create_user("other"),
        "staff": User.objects.create_user("staff", is_staff=True),
    }


def signed_in(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_paste_page_offers_to_save_a_checked_list_when_signed_in(rebuilt, public, users):
    text = f"FROM {rebuilt.pin()}\nRUN make\n"
    anonymous = Client().post("/pins", {"refs": text}).content.decode()
    assert "Save as a list" not in anonymous

    client = signed_in(users["owner"])
    html = client.post("/pins", {"refs": text}).content.decode()
    assert f'<input type="hidden" name="text" value="FROM {rebuilt.pin()}\nRUN make\n">' in html

    response = client.post("/pins/lists/", {"name": "api <b>Dockerfile</b>", "text": text})
    saved = PinList.objects.get()
    assert response.status_code == 302 and response.url == f"/pins/lists/{saved.pk}"
    assert (saved.name, saved.text, saved.owner) == ("api <b>Dockerfile</b>", text, users["owner"])
    page = client.get(response.url).content.decode()
    assert "api &lt;b&gt;Dockerfile&lt;/b&gt;" in page and "<b>Dockerfile" not in page
    assert f'<button type="button" class="copy" data-copy="{rebuilt.pin()}">Copy</button>' in page


def test_the_lists_page_counts_each_lists_pins_by_status(rebuilt, public, users):
    current, old = rebuilt.pin(), None
    rebuilt.rebuild()
    old = current
    save(
        name="mixed",
        text=f"{rebuilt.pin()}\n{rebuilt.pin()}\n{old}\n{rebuilt.ref}:3.12@{ZERO}",
        owner=users["owner"],
    )

    html = signed_in(users["owner"]).get("/pins/lists/").content.decode()

    assert (
        '2 <span class="pin pin-current">current</span> · 1 <span class="pin pin-behind">behind</span>'
        in html
    )
    assert '1 <span class="pin pin-unknown">unknown</span>' in html
    assert 'owner <span class="muted">(you)</span>' in html


def test_a_list_shows_the_reference_to_pin_now_how_far_behind_and_a_compare_link(rebuilt, public, users):
    old = rebuilt.pin()
    rebuilt.rebuild()
    rebuilt.rebuild()
    saved = save(name="app", text=f"FROM {old}\n", owner=users["owner"])

    html = Client().get(f"/pins/lists/{saved.pk}").content.decode()

    assert '<span class="pin pin-behind">behind 2</span>' in html
    assert f'data-copy="{rebuilt.pin()}"' in html
    (result,) = status(saved)
    assert escape(result.compare_url) in html
    assert "Delete this list" not in html and "Save changes" not in html  # not the owner's


@pytest.mark.parametrize(
    ("who", "may"),
    [(None, False), ("other", False), ("owner", True), ("staff", True)],
)
def test_only_the_owner_and_staff_edit_or_delete_a_list(rebuilt, public, users, who, may):
    saved = save(name="app", text=rebuilt.pin(), owner=users["owner"])
    client = signed_in(users.get(who))

    page = client.get(f"/pins/lists/{saved.pk}")
    assert page.status_code == 200
    assert ("Save changes" in page.content.decode()) is may
    edited = client.post(f"/pins/lists/{saved.pk}", {"name": "renamed", "text": rebuilt.pin()})
    assert edited.status_code == (302 if may else 403)
    assert PinList.objects.get().name == ("renamed" if may else "app")
    assert PinList.objects.get().owner == users["owner"]  # staff editing does not take it over
    deleted = client.post(f"/pins/lists/{saved.pk}/delete")
    assert deleted.status_code == (302 if may else 403)
    assert PinList.objects.exists() is not may


def test_saving_needs_a_signed_in_user_and_reading_follows_the_instance(rebuilt, settings, users):
    saved = save(name="app", text=rebuilt.pin(), owner=users["owner"])
    settings.TAGLEDGER_PUBLIC = False
    for path in ("/pins/lists/", f"/pins/lists/{saved.pk}"):
        assert Client().get(path).status_code == 302  # to sign in
        assert signed_in(users["other"]).get(path).status_code == 200
    settings.TAGLEDGER_PUBLIC = True
    response = Client().post("/pins/lists/", {"name": "x", "text": rebuilt.pin()})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert PinList.objects.count() == 1


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"name": "", "text": "python:3.12"}, "Not saved: name: give the list a name"),
        ({"name": "x", "text": "RUN true"}, "Not saved: text: no image reference found"),
        ({"name": "x", "text": "python:3.12\x00"}, "Not saved: text: line 1 holds a control character"),
        ({"name": "x" * 5000, "text": "python:3.12"}, "Not saved: name: at most 100 characters"),
        ({"text": "python:3.12"}, "Not saved: name: give the list a name"),
        ({}, "Not saved: name: give the list a name"),
    ],
)
def test_a_refused_list_is_shown_again_with_the_reason(public, users, form, error):
    response = signed_in(users["owner"]).post("/pins/lists/", form)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not PinList.objects.exists()


def test_a_refused_edit_keeps_the_stored_list(rebuilt, public, users):
    saved = save(name="app", text=rebuilt.pin(), owner=users["owner"])

    response = signed_in(users["owner"]).post(f"/pins/lists/{saved.pk}", {"name": "new", "text": "RUN true"})

    assert response.status_code == 400
    assert "Not saved: text: no image reference found" in response.content.decode()
    assert (PinList.objects.get().name, PinList.objects.get().text) == ("app", rebuilt.pin())


@pytest.mark.parametrize("path", ["/pins/lists/999999", "/pins/lists/999999/delete"])
def test_a_missing_list_is_a_404(public, users, path):
    assert signed_in(users["staff"]).post(path).status_code == 404


@pytest.mark.parametrize("cursor", ["x", "%00", "a" * 300, "MjAyNi0wMS0wMXww"])
def test_a_damaged_page_link_is_a_400(public, cursor):
    assert Client().get(f"/pins/lists/?cursor={cursor}").status_code == 400


def test_the_lists_page_pages_newest_first(rebuilt, public, users):
    for n in range(PAGE_SIZE + 2):
        save(name=f"list {n:02}", text=rebuilt.pin(), owner=users["owner"])
    client = Client()

    first = client.get("/pins/lists/")
    names = [item.pin_list.name for item in first.context["page"].items]
    assert names == [f"list {n:02}" for n in range(PAGE_SIZE + 1, 1, -1)]
    following = client.get("/pins/lists/", {"cursor": first.context["page"].next.encode()})
    assert [item.pin_list.name for item in following.context["page"].items] == ["list 01", "list 00"]
    assert following.context["page"].next is None


def test_the_lists_page_costs_the_same_queries_for_one_list_or_a_full_page(rebuilt, public, users):
    save(name="one", text=rebuilt.pin(), owner=users["owner"])
    with CaptureQueriesContext(connection) as one:
        Client().get("/pins/lists/")
    for n in range(PAGE_SIZE):
        owner = User.objects.create_user(f"user{n}")
        save(name=f"list {n}", text="\n".join([rebuilt.pin()] * 8), owner=owner)
    with CaptureQueriesContext(connection) as full:
        Client().get("/pins/lists/")
    assert len(full) == len(one)


# --- API ------------------------------------------------------------------------------------------


def api(client: Client, method: str, path: str, body=None, **headers):
    send = getattr(client, method)
    if body is None:
        return send(f"/api/v1/{path}", **headers)
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return send(f"/api/v1/{path}", data, content_type="application/json", **headers)


def test_the_api_saves_reads_changes_and_deletes_a_list(rebuilt, public, users):
    client = signed_in(users["owner"])
    text = f"FROM {rebuilt.pin()}\nRUN make\nFROM {rebuilt.ref}:3.12@{ZERO}\n"

    made = api(client, "post", "pin-lists", {"name": "api", "text": text})
    assert made.status_code == 201, made.content
    body = made.json()
    saved = PinList.objects.get()
    assert (body["id"], body["name"], body["owner"], body["text"]) == (saved.pk, "api", "owner", text)
    assert body["counts"] == {"current": 1, "unknown": 1}
    assert body["pins"] == [result.as_dict() for result in status(saved)]
    assert body["pins"] == client.get("/api/v1/pins/check", {"ref": text}).json()["pins"]

    listed = Client().get("/api/v1/pin-lists").json()
    assert listed["next"] is None
    assert [(item["id"], item["counts"]) for item in listed["items"]] == [(saved.pk, body["counts"])]
    assert set(listed["items"][0]) == {"id", "name", "owner", "created_at", "updated_at", "counts"}
    assert Client().get(f"/api/v1/pin-lists/{saved.pk}").json() == body

    changed = api(client, "put", f"pin-lists/{saved.pk}", {"name": "renamed", "text": rebuilt.pin()})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["name"], changed.json()["counts"]) == ("renamed", {"current": 1})

    assert api(client, "delete", f"pin-lists/{saved.pk}").status_code == 204
    assert not PinList.objects.exists()
    assert Client().get(f"/api/v1/pin-lists/{saved.pk}").status_code == 404


@pytest.mark.parametrize(
    ("who", "may"),
    [(None, None), ("other", False), ("owner", True), ("staff", True)],
)
def test_the_api_lets_only_the_owner_and_staff_change_a_list(rebuilt, public, users, who, may):
    saved = save(name="app", text=rebuilt.pin(), owner=users["owner"])
    client = signed_in(users.get(who))
    refused = 401 if may is None else 403

    changed = api(client, "put", f"pin-lists/{saved.pk}", {"name": "renamed", "text": rebuilt.pin()})
    assert changed.status_code == (200 if may else refused), changed.content
    deleted = api(client, "delete", f"pin-lists/{saved.pk}")
    assert deleted.status_code == (204 if may else refused), deleted.content
    assert PinList.objects.exists() is not may
    made = api(client, "post", "pin-lists", {"name": "mine", "text": rebuilt.pin()})
    assert made.status_code == (401 if who is None else 201)


def test_api_writes_with_a_session_need_the_csrf_token(rebuilt, public, users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["owner"])

    refused = api(client, "post", "pin-lists", {"name": "x", "text": rebuilt.pin()})

    assert refused.status_code == 403 and not PinList.objects.exists()


@pytest.mark.parametrize("public_instance", [True, False])
def test_api_writes_with_a_token_need_staff_scope(rebuilt, settings, users, public_instance):
    settings.TAGLEDGER_PUBLIC = public_instance
    read_only = ApiToken.objects.issue(users["owner"], "ci").secret
    staff = ApiToken.objects.issue(users["staff"], "ops", staff=True).secret
    body = {"name": "from CI", "text": rebuilt.pin()}

    refused = api(Client(), "post", "pin-lists", body, HTTP_AUTHORIZATION=f"Bearer {read_only}")
    assert refused.status_code == 403 and refused.json()["detail"]
    made = api(Client(), "post", "pin-lists", body, HTTP_AUTHORIZATION=f"Bearer {staff}")
    assert made.status_code == 201 and made.json()["owner"] == "staff"
    read = Client().get("/api/v1/pin-lists", HTTP_AUTHORIZATION=f"Bearer {read_only}")
    assert read.status_code == 200 and len(read.json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "", "text": "python:3.12"}, "name: String should have at least 1 character"),
        ({"name": " ", "text": "python:3.12"}, "name: give the list a name"),
        ({"name": "x" * 101, "text": "python:3.12"}, "name: String should have at most 100 characters"),
        ({"name": "x", "text": "RUN true"}, "text: no image reference found"),
        ({"name": "x\x00", "text": "python:3.12"}, "name: only printable characters"),
        ({"name": "x", "text": "python:3.12\x00"}, "text: line 1 holds a control character"),
        ({"name": "x", "text": "\n".join(["python:3.12"] * 201)}, "text: too many references"),
        ({"name": "x", "text": "a" * (MAX_INPUT + 1)}, "text: String should have at most"),
        ({"name": "x"}, "text: Field required"),
        ({"name": 5, "text": "python:3.12"}, "name: Input should be a valid string"),
        ({"name": "x", "text": ["python:3.12"]}, "text: Input should be a valid string"),
        ({"name": "x", "text": "python:3.12", "owner": "root"}, "owner: Extra inputs are not permitted"),
        ([], "Input should be a valid dictionary"),
        ("null", "Input should be a valid dictionary"),
        ('{"name": "x", "text": ', "Cannot parse request body"),
        ("[" * 10_000 + "]" * 10_000, ""),
        ('{"name": "\\ud800", "text": "python:3.12"}', ""),
        ('{"name": "x", "text": "' + "\\u00a5" * 500_000 + '"}', "request body: larger than 2621440 bytes"),
    ],
)
def test_the_api_refuses_a_bad_body_with_a_400_saying_why(public, users, body, detail):
    response = api(signed_in(users["owner"]), "post", "pin-lists", body)

    assert response.status_code == 400, response.content
    assert detail in response.json()["detail"]
    assert not PinList.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_the_api_answers_a_missing_list_with_a_404(public, users, method):
    body = {"name": "x", "text": "python:3.12"} if method == "put" else None
    response = api(signed_in(users["staff"]), method, "pin-lists/999999", body)

    assert response.status_code == 404 and response.json() == {"detail": "no pin list with id 999999"}


def test_the_api_pages_lists_with_the_pages_cursor(rebuilt, public, users):
    for n in range(PAGE_SIZE + 1):
        save(name=f"list {n}", text=rebuilt.pin(), owner=users["owner"])

    first = Client().get("/api/v1/pin-lists").json()
    following = Client().get("/api/v1/pin-lists", {"cursor": first["next"]}).json()

    assert len(first["items"]) == PAGE_SIZE and [item["name"] for item in following["items"]] == ["list 0"]
    assert Client().get("/api/v1/pin-lists", {"cursor": "bad"}).status_code == 400


@pytest.fixture
def wsgi(public):
    """The WSGI app; requests share the test's transaction (as in test_api_schema.py)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_generated_requests_with_a_staff_token_never_get_a_5xx_and_match_the_schema(wsgi, rebuilt, users):
    """Schemathesis's valid and invalid requests to the pin-list endpoints, as a staff token that may
    write, at a list that exists: the writes' own checks, not only the 401 of the anonymous."""
    saved = save(name="app", text=rebuilt.pin(), owner=users["owner"])
    secret = ApiToken.objects.issue(users["staff"], "fuzz", staff=True).secret
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)
    operations = [result.ok() for result in schema.get_all_operations() if "/pin-lists" in result.ok().path]
    assert len(operations) == 5
    headers = {"Authorization": f"Bearer {secret}"}
    for operation in operations:
        path = {"id": saved.pk} if "{id}" in operation.path else None
        strategies = [
            operation.as_strategy(generation_mode=mode, path_parameters=path)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]

        @hypothesis.settings(BOUNDED, max_examples=40)
        @given(case=st.one_of(strategies))
        def check(case):
            case.call_and_validate(checks=CHECKS, headers=headers)

        check()
