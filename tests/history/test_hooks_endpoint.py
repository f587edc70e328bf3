"""POST /hooks/registry/<token>: who may send events (the hook token, a repository's own token),
what it answers, and that no body, method or token makes it answer 500.

No registry is contacted and no worker runs: a triggered poll shows as the repository's lease
taken (history.tasks.enqueue claims it before queuing the poll).
"""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository
from history.hooks import DISTRIBUTION_EVENTS, MAX_BODY
from tests.history.test_hooks_parsing import DOCKER_HUB, JSON, SHAPED, distribution_event, github

TOKEN = "hook-token-0123456789abcdef"
HOST = "127.0.0.1:5000"

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_token(settings) -> str:
    settings.TAGLEDGER_HOOK_TOKEN = TOKEN
    return TOKEN


def watched(name: str = "team/app", host: str = HOST, **options) -> Repository:
    registry, _ = Registry.objects.get_or_create(host=host)
    return Repository.objects.create(registry=registry, name=name, **options)


def pushed(name: str = "team/app", tag: str | None = "1.0", host: str = HOST) -> bytes:
    return json.dumps({"events": [distribution_event(repository=name, tag=tag, host=host)]}).encode()


def post(token: str, body: bytes, content_type: str = DISTRIBUTION_EVENTS, **extra):
    return Client().post(f"/hooks/registry/{token}", data=body, content_type=content_type, **extra)


def is_polled(repository: Repository) -> bool:
    repository.refresh_from_db()
    return repository.lease_until is not None


def test_a_push_to_a_watched_repository_polls_it_and_answers_at_once(hook_token):
    repository, other = watched(), watched("team/other")

    response = post(hook_token, pushed())

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "polls": 1}
    assert is_polled(repository) and not is_polled(other)


@pytest.mark.parametrize(
    "bad",
    [
        {"action": "push", "target": None},
        {"action": "push", "target": {"repository": "team/<img src=x>", "tag": "1.0"}},
        {"action": "push", "target": {"repository": "team/app", "tag": "1.0\r\nX-Injected: 1"}},
        "not an event",
        [{"deep": [[[[]]]]}],
    ],
)
def test_an_unreadable_event_beside_readable_ones_is_skipped_saying_why_not_the_envelope(hook_token, bad):
    """distribution resends a refused envelope until it is taken, holding back every later event:
    one bad event must not stall a registry's notifications, nor keep its neighbours from polling."""
    repository = watched()
    envelope = {"events": [bad, distribution_event(repository="team/app", tag="1.0", host=HOST)]}

    response = post(hook_token, json.dumps(envelope).encode())

    assert response.status_code == 202
    answer = response.json()
    assert (answer["accepted"], answer["polls"]) == (1, 1)
    assert len(answer["skipped"]) == 1 and answer["skipped"][0].startswith("events[0]")
    assert is_polled(repository)


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        pytest.param(pushed("team/unknown"), 1, id="unwatched-repository"),
        pytest.param(pushed(host="other.example:5000"), 1, id="same-name-other-registry"),
        pytest.param(pushed(tag=None), 1, id="pushed-by-digest"),
        pytest.param(json.dumps({"events": [distribution_event("pull", repository="team/app")]}).encode(), 0,
                     id="a-pull"),
    ],
)  # fmt: skip
def test_an_event_that_moves_no_watched_tag_polls_nothing_and_tells_no_more(hook_token, body, accepted):
    repository = watched()

    response = post(hook_token, body)

    assert (response.status_code, response.json()) == (202, {"accepted": accepted, "polls": 0})
    assert not is_polled(repository)


def test_a_disabled_repository_is_not_polled(hook_token):
    repository = watched(enabled=False)
    assert post(hook_token, pushed()).json() == {"accepted": 1, "polls": 0}
    assert not is_polled(repository)


def test_docker_hub_names_official_images_as_references_do(hook_token):
    python = watched("library/python", host="docker.io")
    body = json.dumps({**DOCKER_HUB, "repository": {"repo_name": "python"}}).encode()

    assert post(hook_token, body, "application/json").json() == {"accepted": 1, "polls": 1}
    assert is_polled(python)


def test_github_names_the_ghcr_repository_in_lowercase(hook_token):
    app = watched("octo-org/web-app", host="ghcr.io")
    assert post(hook_token, json.dumps(github()).encode(), "application/json").json()["polls"] == 1
    assert is_polled(app)


@pytest.mark.parametrize(
    "token", [TOKEN + "x", TOKEN[:-1], TOKEN.upper(), "x", "%C3%A9", "%00", "tlh_" + "a" * 43, "a" * 3000]
)
def test_a_wrong_token_is_a_404_that_reads_nothing(hook_token, token):
    repository = watched()
    assert post(token, pushed()).status_code == 404
    assert not is_polled(repository)


def test_without_a_hook_token_the_endpoint_is_not_there(settings):
    settings.TAGLEDGER_HOOK_TOKEN = ""
    repository = watched()
    assert post("", pushed()).status_code == 404
    assert post("anything-at-all-1234", pushed()).status_code == 404
    assert not is_polled(repository)


@pytest.mark.parametrize("hook_token_set", [True, False])
def test_a_repositorys_own_token_polls_that_repository_by_name_whatever_host_the_event_says(
    settings, hook_token_set
):
    settings.TAGLEDGER_HOOK_TOKEN = TOKEN if hook_token_set else ""
    repository, other = watched(), watched("team/other")
    secret = repository.issue_hook_token()

    # Behind a proxy, the registry knows itself by another name than the one tagledger polls.
    assert post(secret, pushed(host="registry.internal:5000")).json() == {"accepted": 1, "polls": 1}
    assert post(secret, pushed("team/other")).json() == {"accepted": 1, "polls": 0}
    assert is_polled(repository) and not is_polled(other)


def test_a_new_or_revoked_repository_token_ends_the_old_one(hook_token):
    repository = watched()
    first = repository.issue_hook_token()
    second = repository.issue_hook_token()

    assert post(first, pushed()).status_code == 404
    assert repository.revoke_hook_token()
    assert post(second, pushed()).status_code == 404
    assert not repository.revoke_hook_token()
    assert Repository.objects.get(pk=repository.pk).hook_token_digest is None


def test_manage_py_hooks_token_prints_the_secret_once_and_revokes_it(capsys):
    repository = watched()

    call_command("hooks", "token", f"{HOST}/team/app")
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("tlh_") and len(secret) == 47
    assert Repository.objects.by_hook_token(secret).get() == repository
    assert secret not in str(Repository.objects.filter(pk=repository.pk).values().get())

    call_command("hooks", "token", f"{HOST}/team/app", "--revoke")
    assert "Revoked" in capsys.readouterr().out
    assert not Repository.objects.by_hook_token(secret).exists()


@pytest.mark.parametrize("reference", ["127.0.0.1:5000/team/nope", "127.0.0.1:5000/team/app:1.0", "Bad Name"])
def test_manage_py_hooks_token_refuses_what_is_not_a_watched_repository(reference):
    watched()
    with pytest.raises(CommandError):
        call_command("hooks", "token", reference)


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch", "head", "options"])
def test_only_post_is_served(hook_token, method):
    assert getattr(Client(), method)(f"/hooks/registry/{hook_token}").status_code == 405


def test_a_body_announced_or_sent_over_the_cap_is_413(hook_token):
    repository = watched()
    padded = b'{"events": [], "padding": "' + b"x" * MAX_BODY + b'"}'

    assert post(hook_token, padded).status_code == 413
    assert post(hook_token, pushed(), CONTENT_LENGTH=str(MAX_BODY + 1)).status_code == 413
    assert not is_polled(repository)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(pushed(), "application/x-www-form-urlencoded", 415, id="form"),
        pytest.param(pushed(), "text/html", 415, id="html"),
        pytest.param(b"\xff\xfe", DISTRIBUTION_EVENTS, 400, id="not-utf8"),
        pytest.param(b"[" * 100_000, DISTRIBUTION_EVENTS, 400, id="deep"),
        pytest.param(b"1e999999", "application/json", 400, id="huge-number"),
        pytest.param(b'{"events": "<script>alert(1)</script>"}', "application/json", 400, id="xss"),
        pytest.param(pushed("team/<img src=x>"), DISTRIBUTION_EVENTS, 400, id="xss-name"),
        pytest.param(pushed("team/app\u202e"), DISTRIBUTION_EVENTS, 400, id="bidi-name"),
        pytest.param(pushed(tag="1.0\r\nX-Injected: 1"), DISTRIBUTION_EVENTS, 400, id="crlf-tag"),
        pytest.param(b"", "", 400, id="empty"),
    ],
)
def test_a_body_that_is_no_push_event_is_refused_with_a_json_reason(hook_token, body, content_type, status):
    repository = watched()

    response = post(hook_token, body, content_type)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
    # A hostile name quoted in the reason is JSON text, which no browser may take for markup.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not is_polled(repository)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.one_of(JSON, SHAPED), content_type=st.sampled_from(["application/json", DISTRIBUTION_EVENTS])
)
def test_any_json_is_answered_202_or_400_never_500(hook_token, document, content_type):
    response = post(hook_token, json.dumps(document).encode(), content_type)
    assert response.status_code in {202, 400}, response.content
    assert isinstance(response.json(), dict)


def test_metrics_count_the_requests_by_outcome(hook_token, public):
    from tests.tagledger.test_metrics import by_label, scrape

    watched()
    post(hook_token, pushed())  # polled
    post(hook_token, pushed())  # within the gap: left for its end
    post(hook_token, pushed("team/unknown"))
    post(hook_token, b"{}")
    post(hook_token, pushed(), "text/plain")
    post("wrong-token-0123456789", pushed())

    counts = by_label(scrape(), "tagledger_hook_requests_total", "outcome")
    assert counts == {"polled": 1, "quiet": 2, "refused": 2, "denied": 1}


@pytest.mark.parametrize(
    "token",
    ["short", "x" * 15, "with/a/slash-0123456789", "sixteen chars ok", "tøken-with-ümlaut-1234", "a?b#c" * 4],
)
def test_a_weak_or_unsendable_hook_token_stops_start_up(tmp_path, token):
    from tests.tagledger.test_env import run_check

    result = run_check(tmp_path, TAGLEDGER_HOOK_TOKEN=token)
    assert result.returncode != 0 and "TAGLEDGER_HOOK_TOKEN must be" in result.stderr


def test_a_url_safe_hook_token_and_a_min_interval_start_up(tmp_path):
    from tests.tagledger.test_env import run_check

    result = run_check(tmp_path, TAGLEDGER_HOOK_TOKEN="A-z_0.9~" * 3, TAGLEDGER_HOOK_MIN_INTERVAL="5")
    assert result.returncode == 0, result.stderr
    assert run_check(tmp_path, TAGLEDGER_HOOK_MIN_INTERVAL="0").returncode != 0
