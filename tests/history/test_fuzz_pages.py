"""No page and no API answer is a 5xx, and no input comes back as live markup, whatever is sent.

Every URL pattern the resolver knows is fuzzed (the admin aside, but for its login page), so a
new page is covered the day it is added, with the parameters its view reads (found in its
module's source, or in the API's schema). Path parameters are ids of a real poll or hostile
values (huge and negative numbers, Unicode digits, NUL, text, very long strings); query strings
and form bodies carry those parameters and random ones, with hostile values, repeated, and as
percent-encoded bytes that are not UTF-8. Requests go through django.test.Client, which
re-raises a view's exception: a 500 fails with its traceback.

FUZZ_EXAMPLES=20 runs twenty times as many examples, for a longer hunt than the suite affords.
"""

import inspect
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from urllib.parse import quote, quote_from_bytes

import hypothesis
import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from catalog.models import Line, Tag, Version
from history.api import api
from history.changelog import FIELDS
from history.keyset import Cursor, NameCursor
from history.models import Build, Delivery, PollRun, Subscription, TagEvent
from history.polling import poll
from history.versions import position
from history.views.staff import WATCH_OPTIONS
from tests.history.factories import watch

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]

SCRIPT = "<script>alert(1)</script>"
SCALE = int(os.environ.get("FUZZ_EXAMPLES", "1"))
BOUNDED = hypothesis.settings(
    deadline=timedelta(seconds=5),  # a page takes milliseconds; slack for a busy machine
    database=None,  # leave no .hypothesis/ folder behind
    suppress_health_check=list(HealthCheck),
)
FAR_EAST = timezone(timedelta(hours=23, minutes=59))  # beyond the ±15:59 PostgreSQL takes
# One value per class of input that broke a parser somewhere once, or could: every parameter
# of every route gets each of them.
CLASSES = [
    "",
    "-1",
    " 1 ",
    "1e400",
    "²",  # isdigit() is true, int() refuses it
    "٣",  # int() takes it, and so would the database: an id is ASCII digits only
    "9223372036854775808",
    "9" * 400,
    "\x00",
    "1\x00",
    f"'\"><svg onload=alert(1)>{SCRIPT}",
    "a" * 5000,
    "%00",
    "\u202e\ufeff\n\r\t",
    "sha256:" + "0" * 64,
    "sha512:" + "a" * 200,
    "2026-02-30",
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661",  # 2026-01-01 in Arabic-Indic digits
    "9999-12-31T23:59:59-23:59",
    "localhost:1/x:y@sha256:" + "f" * 64,
    "(" * 5000,
    # Cursors that decode: well-formed tokens naming a NUL, or a time PostgreSQL refuses.
    NameCursor("a\x00b").encode(),
    Cursor(datetime(1970, 1, 2, tzinfo=FAR_EAST), 1).encode(),
]
# More of each class, for the random examples.
HOSTILE = [
    *CLASSES,
    *("0", "+1", "1.5", "0x10", "1_000", "nan", "2147483648", "-9223372036854775809"),
    "\uff11\uff12",  # fullwidth 12
    "\U0001d7d9\U0001d7da",  # double-struck 12
    *("a\x00b", "sha256:\x00", SCRIPT, "%", "../../etc/passwd", "null", "[]", "{}", "sha256:"),
    *("md5:abcd", "0123", "9999-12-31", "0001-01-01", "2026-01-01T00:00:00+99:00", "a:b@c"),
    "a{4294967295}",
    *(NameCursor(name).encode() for name in ("\x00", SCRIPT, "é" * 128)),
    Cursor(datetime(9998, 12, 31, 23, 59, tzinfo=FAR_EAST), 2**63 - 1).encode(),
]
# Percent-encoded bytes that are no UTF-8: a lone continuation byte, a surrogate, an overlong NUL.
RAW = [b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\x80", b"\x80", b"a\xff"]
# Form fields no view module names as a literal: Django's login form's, the staff form's.
FORM_FIELDS = {"username", "password", "next", "reference", "insecure", *WATCH_OPTIONS}


# --- what there is to fuzz ----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern: its route with the converters in place, e.g. `versions/<int:pk>/compare`."""

    route: str
    name: str
    view: object

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.route)

    def path(self, values: dict[str, str | bytes]) -> str:
        """The path with `values` percent-encoded in place of the parameters, whether they match or not."""
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda found: _encoded(values[found[1]]), self.route)

    @cached_property
    def operations(self) -> dict | None:
        """Its operations in the API's schema; None: not an API route."""
        schema_path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.route)
        return api.get_openapi_schema()["paths"].get(schema_path)

    @cached_property
    def reads(self) -> list[str]:
        """The query and form parameters its view reads: an API operation's from the schema,
        a page's from its module's source (`request.GET.get("cursor")` and the like)."""
        if self.operations is not None:
            parameters = [
                p for operation in self.operations.values() for p in operation.get("parameters", [])
            ]
            return sorted({p["name"] for p in parameters if p["in"] == "query"})
        module = sys.modules.get(getattr(self.view, "__module__", ""))
        source = inspect.getsource(module) if module else ""
        names = set(_READS.findall(source))
        if "changelog" in self.route:  # read in a loop, by `history.changelog.parse`
            names |= set(FIELDS)
        if "POST" in source:
            names |= FORM_FIELDS
        return sorted(names)


_READS = re.compile(r"""(?:GET|POST|params|given)(?:\.get|\.getlist|\.pop)?[(\[]\s*["'](\w+)["']""")


def _walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace
            )
        elif isinstance(pattern, URLPattern):
            yield Route(prefix + str(pattern.pattern), f"{namespace}:{pattern.name}", pattern.callback)


def routes() -> list[Route]:
    """Every route but the admin's (staff-only, Django's own), whose login page anyone can reach."""
    return [
        route
        for route in _walk(get_resolver().url_patterns)
        if not route.name.startswith("admin:") or route.name == "admin:login"
    ]


def _encoded(value: str | bytes) -> str:
    return quote_from_bytes(value, safe="") if isinstance(value, bytes) else quote(value, safe="")


# --- the data and the requests ------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """Real values from the poll: ids, names, digests and cursors that lead past the first check."""

    ids: dict[str, list[str]]  # by what a path calls them: `repositories`, `versions`, `builds`
    texts: list[str]

    def real(self, route: Route, name: str) -> list[str]:
        """The values naming a row at `name` in `route`: by its name (the API's `<version>`),
        or the segment before it (`versions/<int:pk>`), else any id."""
        segment = re.search(rf"(\w+)/<(?:\w+:)?{name}>", route.route)
        found = self.ids.get(name) or self.ids.get(segment[1] if segment else "")
        return found or sorted({value for values in self.ids.values() for value in values})


@pytest.fixture
def known(public, registry, pusher, repo_name) -> Known:
    """A public instance over a repository polled twice, a version rebuilt in between, a script
    tag in its labels. Returns the values that name its rows."""
    pusher.push(repo_name, "3.13.9", "docker-list", seed="3.13.9")
    pusher.push(repo_name, "3.14.4", "oci-index", seed="day1", labels={"org.example": SCRIPT})
    for tag in ("3.14", "latest", "3.14.4-202611261200"):
        pusher.tag(repo_name, "3.14.4", tag)
    pusher.push(repo_name, "3.14.4-dev", "oci", seed="dev")
    repository = watch(registry, repo_name)
    assert poll(repository).status == PollRun.Status.OK
    pusher.push(repo_name, "3.14.4", "oci-index", seed="day2", labels={"org.example": SCRIPT + "2"})
    for tag in ("3.14", "latest", "3.14.4-202611271200"):
        pusher.tag(repo_name, "3.14.4", tag)
    assert poll(repository).status == PollRun.Status.OK

    builds = list(Build.objects.filter(repository=repository))
    versions = list(Version.objects.filter(repository=repository))
    event = TagEvent.objects.newest_first().filter(tag__repository=repository).first()
    # A notification subscription with a logged delivery, hostile where a person or a receiver writes;
    # its URL reaches nothing (loopback is refused unless TAGLEDGER_NOTIFY_ALLOW lists it).
    hook = Subscription.objects.create(
        name=SCRIPT, url="http://127.0.0.1:9/hook", secret="s" * 32, tag_pattern=SCRIPT
    )
    delivery = Delivery.objects.create(
        subscription=hook, key=SCRIPT, body="{}", status="failed", error=SCRIPT
    )
    ids = {
        "repositories": [str(repository.pk)],
        "versions": [str(version.pk) for version in versions],
        "builds": [str(build.pk) for build in builds],
        "lines": [str(pk) for pk in Line.objects.filter(repository=repository).values_list("pk", flat=True)],
        "notifications": [str(hook.pk)],
    }
    texts = [
        *(value for values in ids.values() for value in values),
        *(build.digest for build in builds),
        *(build.digest[7:19] for build in builds),
        *Tag.objects.filter(repository=repository).values_list("name", flat=True),
        *(version.name for version in versions),
        f"{repository.reference}:latest",
        f"{repository.reference}@{builds[0].digest}",
        Cursor(event.detected_at, event.pk).encode(),
        Cursor(delivery.created_at, delivery.pk).encode(),
        NameCursor("3.14").encode(),
        position(builds[0]).encode(),
        *("2026-01-01", "2026-01-01T00:00:00Z", "1", "true", "moved", "3.14"),
    ]
    return Known({**ids, "version": [version.name for version in versions]}, texts)


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    return client


FORM = "application/x-www-form-urlencoded"
# How a body may claim to be encoded, whatever it is: the form parsers meet what they cannot read.
CONTENT_TYPES = st.one_of(
    st.just(FORM),
    st.sampled_from(
        ["multipart/form-data; boundary=x", "multipart/form-data", "application/json", "text/plain"]
    ),
    st.text(max_size=40),
)


def send(
    client: Client, method: str, path: str, pairs, headers: dict | None = None, content_type: str = FORM
) -> None:
    """One request, its parameters in the query or, posted, in a form; a 5xx, or an input's
    script tag in markup, fails it.

    In a savepoint: a database error must fail this request only, not leave the test's
    transaction aborted for every one after it."""
    encoded = "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in pairs)
    query, body = ("", encoded) if method == "POST" else (encoded, "")
    with transaction.atomic():
        response = client.generic(
            method,
            f"{path}?{query}" if query else path,
            body,
            content_type=content_type,
            headers=headers or {},
        )
    request = f"{method} {path}?{query} {body[:200]!r}"
    assert response.status_code < 500, f"{request}: {response.status_code}"
    kind = response.get("Content-Type", "")
    if "html" in kind or "xml" in kind:
        content = b"".join(response) if response.streaming else response.content
        assert SCRIPT.encode() not in content, f"{request}: a script tag came back as markup"


# --- strategies ---------------------------------------------------------------------------------


def hostile_values(known: Known) -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.sampled_from(known.texts),
        st.text(max_size=30),  # any code point but surrogates: NUL and controls included
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.text(max_size=10).map(lambda text: text + SCRIPT),
        st.sampled_from(RAW),
        st.binary(max_size=12),
    )


def query_pairs(known: Known, names: list[str]) -> st.SearchStrategy:
    """Up to eight (name, value) pairs: the view's names more often than not, repeats allowed."""
    known_name = st.sampled_from(names or ["q"])
    name = st.one_of(known_name, known_name, st.text(max_size=8), st.sampled_from(RAW))
    return st.lists(st.tuples(name, hostile_values(known)), max_size=8)


HEADERS = st.one_of(
    st.sampled_from([{}, {"HX-Request": "true"}, {"HX-Request": "true", "HX-History-Restore-Request": "1"}]),
    # Headers views, middleware or Django read, with any text: they are input too.
    st.dictionaries(
        st.sampled_from(
            ["HX-Request", "HX-History-Restore-Request", "Accept", "Accept-Language", "X-Forwarded-For",
             "If-Modified-Since", "If-None-Match", "Range", "Referer", "Origin"]
        ),
        st.text(max_size=30),
        max_size=3,
    ),
)  # fmt: skip


def fuzz(known: Known, client: Client, *, methods: list[str], examples: int) -> None:
    """Each route on its own, so each gets its share of examples."""
    for route in routes():
        path = {name: st.one_of(st.sampled_from(known.real(route, name)), hostile_values(known))
                for name in route.path_parameters}  # fmt: skip

        @hypothesis.settings(BOUNDED, max_examples=examples * SCALE)
        @given(
            route=st.just(route),
            path=st.fixed_dictionaries(path),
            pairs=query_pairs(known, route.reads),
            method=st.sampled_from(methods),
            headers=HEADERS,
            content_type=CONTENT_TYPES,
        )
        def check(route, path, pairs, method, headers, content_type):
            send(client, method, route.path(path), pairs, headers, content_type)

        check()


# --- tests --------------------------------------------------------------------------------------


def test_every_route_is_fuzzed_with_the_parameters_its_view_reads():
    """What the fuzzing reaches: a route or a parameter missing here was left out of it."""
    reads = {route.name: route.reads for route in routes()}
    assert {"build", "cursor"} <= set(reads["history:version_compare"])
    assert {"q", "line", "cursor", "inactive"} <= set(reads["history:repository"])
    assert {"a", "b"} <= set(reads["history:compare"])
    assert set(FIELDS) <= set(reads["history:changelog_feed"]) & set(reads["history:repository_changelog"])
    assert {"tag", "kind", "since", "until", "cursor", "limit", "artifacts"} <= set(reads["api:events"])
    assert {"reference", "interval", "include"} <= set(reads["history:watch"])


def test_each_class_of_hostile_value_in_each_parameter_gets_no_server_error(known, client, staff):
    """The table: each class in each parameter a route reads, one at a time so that no other
    parameter's refusal hides it (a query, or a form where only POST is answered), and in each
    path parameter. Every failure is listed, not only the first."""
    failures = []
    for route in routes():
        real = {name: known.real(route, name)[0] for name in route.path_parameters}
        posted = client.get(route.path(real)).status_code == 405
        sender, method = (staff, "POST") if posted else (client, "GET")
        for value in [*CLASSES, *RAW]:
            requests = [(sender, method, route.path(real), [(name, value)]) for name in route.reads]
            requests += [
                (client, "GET", route.path({**real, name: value}), []) for name in route.path_parameters
            ]
            for who, how, path, pairs in requests:
                try:
                    send(who, how, path, pairs)
                except Exception as error:  # listed below, with the request
                    failures.append(f"{how} {path} {value!r}: {type(error).__name__}: {error}"[:300])
    assert not failures, "\n".join(failures)


def test_anonymous_readers_of_a_public_instance_get_no_server_error(known, client):
    fuzz(known, client, methods=["GET", "GET", "GET", "HEAD", "POST", "PUT", "OPTIONS"], examples=20)


def test_staff_reading_and_posting_forms_get_no_server_error(known, staff):
    fuzz(known, staff, methods=["GET", "POST"], examples=10)


def test_anonymous_readers_of_a_private_instance_get_no_server_error(known, client, settings):
    """Sent to sign in, the request's path and query in `next`, or a 401 from the API."""
    settings.TAGLEDGER_PUBLIC = False
    fuzz(known, client, methods=["GET", "POST"], examples=3)
