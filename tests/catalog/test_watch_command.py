"""`manage.py watch`: what it stores, what it refuses, how it lists and stops watching."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import Registry, Repository
from history.models import PollRun, TagEvent
from history.polling import poll

pytestmark = pytest.mark.django_db


def watch(*args: str) -> str:
    out = StringIO()
    call_command("watch", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_watching_a_repository_stores_it_due_now():
    before = timezone.now()
    output = watch("127.0.0.1:5000/demo/app")
    repository = Repository.objects.select_related("registry").get()
    assert (repository.registry.host, repository.name) == ("127.0.0.1:5000", "demo/app")
    assert repository.enabled
    assert repository.interval == timedelta(minutes=30)
    assert before <= repository.next_poll_at <= timezone.now()
    assert output == ("watching 127.0.0.1:5000/demo/app every 30m (plain HTTP); first poll is due now\n")


def test_a_familiar_name_is_normalised_as_docker_does():
    watch("python")
    repository = Repository.objects.select_related("registry").get()
    assert repository.reference == "docker.io/library/python"


def test_each_option_is_stored():
    watch(
        "ghcr.io/acme/app",
        "--interval", "1h30m",
        "--include", r"^3\.",
        "--exclude", "rc",
        "--immutable", r".*-\d{12}",
        "--platforms", "linux/amd64, linux/arm64/v8",
        "--line-depth", "2",
    )  # fmt: skip
    repository = Repository.objects.get()
    assert repository.interval == timedelta(hours=1, minutes=30)
    assert repository.include_pattern == r"^3\."
    assert repository.exclude_pattern == "rc"
    assert repository.immutable_pattern == r".*-\d{12}"
    assert repository.platforms == "linux/amd64,linux/arm64/v8"
    assert repository.line_depth == 2


def test_insecure_makes_a_remote_registry_use_plain_http():
    watch("registry.internal:5000/team/app", "--insecure")
    assert Registry.objects.get(host="registry.internal:5000").insecure


def test_insecure_is_not_stored_for_loopback_which_is_always_plain_http():
    watch("127.0.0.1:5000/demo/app", "--insecure")
    assert not Registry.objects.get(host="127.0.0.1:5000").insecure


def test_watching_again_updates_only_the_options_given():
    watch("ghcr.io/acme/app", "--interval", "1h", "--include", "^3")
    output = watch("ghcr.io/acme/app", "--exclude", "rc")
    repository = Repository.objects.get()
    assert (repository.interval, repository.include_pattern) == (timedelta(hours=1), "^3")
    assert repository.exclude_pattern == "rc"
    assert output == "ghcr.io/acme/app is already watched; updated: exclude 'rc'\n"


def test_watching_again_with_nothing_new_changes_nothing():
    watch("ghcr.io/acme/app", "--interval", "1h")
    output = watch("ghcr.io/acme/app", "--interval", "60m")
    assert output == "ghcr.io/acme/app is already watched; nothing to update\n"
    assert Repository.objects.count() == 1


def test_an_empty_pattern_clears_it():
    watch("ghcr.io/acme/app", "--include", "^3")
    output = watch("ghcr.io/acme/app", "--include", "")
    assert Repository.objects.get().include_pattern == ""
    assert "include cleared" in output


def test_a_shorter_interval_brings_the_next_poll_forward():
    watch("ghcr.io/acme/app", "--interval", "7d")
    Repository.objects.update(next_poll_at=timezone.now() + timedelta(days=7))
    watch("ghcr.io/acme/app", "--interval", "5m")
    assert Repository.objects.get().next_poll_at <= timezone.now() + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["python:3.14"], "names a tag; watch the repository instead (docker.io/library/python)"),
        (["python@sha256:" + "a" * 64], "names a digest"),
        (["127.0.0.1:5000/Demo/App"], "must be lowercase"),
        (["not a reference!"], "invalid reference format"),
        (["ghcr.io/acme/app", "--include", "("], "--include: not a valid regular expression"),
        (["ghcr.io/acme/app", "--exclude", "[a-"], "--exclude: not a valid regular expression"),
        (["ghcr.io/acme/app", "--immutable", "*"], "--immutable: not a valid regular expression"),
        (["ghcr.io/acme/app", "--interval", "0"], "not a duration: '0'"),
        (["ghcr.io/acme/app", "--interval", "0m"], "too short: at least 1m"),
        (["ghcr.io/acme/app", "--interval", "10s"], "too short: at least 1m"),
        (["ghcr.io/acme/app", "--interval", "8d"], "too long: at most 7d"),
        (["ghcr.io/acme/app", "--interval", "abc"], "not a duration: 'abc'"),
        (["ghcr.io/acme/app", "--platforms", "linux amd64"], "--platforms: 'linux amd64' is not os/arch"),
        (["ghcr.io/acme/app", "--line-depth", "3"], "invalid choice: 3"),
        (["ghcr.io/acme/app", "--include", "x" * 501], "--include: longer than 500 characters (501)"),
        (["--interval", "1h"], "give one of"),
        (["ghcr.io/acme/app", "--list"], "give one of"),
        (["--list", "--interval", "1h"], "--interval only goes with a REFERENCE"),
    ],
)
def test_bad_input_fails_with_a_clear_message_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        watch(*args)
    assert not Repository.objects.exists()
    assert not Registry.objects.exists()


# Patterns that raised OverflowError or RecursionError (a traceback), compiled into gigabytes, or
# could not be stored; each is refused with why. tests/catalog/test_patterns.py has the full table.
HOSTILE_PATTERNS = [
    ("a{4294967295}", "not a valid regular expression: repeat count too big"),
    ("(" * 5000, "longer than 500 characters (5000)"),
    ("x" * 10_000, "longer than 500 characters (10000)"),
    ("(?:a{1000}){1000}", "its repeats are too large"),
    ("(" * 12 + "a" + ")+" * 12, "its repeats are too large"),
    ("(" * 400, "not a valid regular expression"),
    ("\\", "bad escape"),
    ("(?V0V1)a", "mutually incompatible"),
    ("a\x00b", "contains a NUL"),
    ("\udcff", "unpaired surrogate"),  # an argument that is not UTF-8, as Python hands it over
]


@pytest.mark.parametrize("option", ["--include", "--exclude", "--immutable"])
@pytest.mark.parametrize(("pattern", "message"), HOSTILE_PATTERNS, ids=lambda value: repr(value[:12]))
def test_a_hostile_pattern_is_refused_clearly_and_nothing_is_written(option, pattern, message):
    with pytest.raises(CommandError, match=f"^{re.escape(option)}: .*{re.escape(message)}"):
        watch("ghcr.io/acme/app", option, pattern)
    assert not Repository.objects.exists()
    assert not Registry.objects.exists()


@pytest.mark.parametrize(("pattern", "message"), HOSTILE_PATTERNS, ids=lambda value: repr(value[:12]))
def test_a_hostile_pattern_leaves_a_watched_repository_as_it_was(pattern, message):
    watch("ghcr.io/acme/app", "--include", "^3", "--immutable", r"3\.\d+")
    with pytest.raises(CommandError, match=re.escape(message)):
        watch("ghcr.io/acme/app", "--exclude", pattern, "--interval", "1h")
    repository = Repository.objects.get()
    assert (repository.include_pattern, repository.exclude_pattern) == ("^3", "")
    assert repository.interval == timedelta(minutes=30)


def test_a_backtracking_pattern_is_stored_because_each_match_is_bounded():
    """`^(a|aa)+$` compiles fine; the time it takes on a tag is bounded per match, and the poll
    reports the tags it times out on (tests/catalog/test_patterns.py)."""
    watch("ghcr.io/acme/app", "--include", "^(a|aa)+$")
    assert Repository.objects.get().include_pattern == "^(a|aa)+$"


def test_bad_input_leaves_a_watched_repository_as_it_was():
    watch("ghcr.io/acme/app", "--include", "^3")
    with pytest.raises(CommandError):
        watch("ghcr.io/acme/app", "--include", "^4", "--interval", "8d")
    assert Repository.objects.get().include_pattern == "^3"


def test_list_shows_each_repository_in_aligned_columns(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    watch(f"{registry.host}/{repo_name}")
    watch("docker.io/library/python", "--interval", "2d")
    polled = Repository.objects.get(name=repo_name)
    run = poll(polled)
    watch("--remove", "python")

    lines = watch("--list").splitlines()

    assert re.split(r"\s{2,}", lines[0]) == ["REFERENCE", "INTERVAL", "ENABLED", "LAST POLL", "NEXT POLL"]
    columns = [lines[0].index(title) for title in ("INTERVAL", "ENABLED", "LAST POLL", "NEXT POLL")]
    rows = {line.split()[0]: line for line in lines[1:]}
    python, ours = rows["docker.io/library/python"], rows[polled.reference]
    assert [python[column - 2 : column] for column in columns] == ["  "] * 4  # aligned under the titles
    assert re.split(r"\s{2,}", python) == ["docker.io/library/python", "2d", "no", "never", "-"]
    started = timezone.localtime(run.started_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert re.split(r"\s{2,}", ours) == [polled.reference, "30m", "yes", f"ok {started}", "due now"]


def test_list_says_when_nothing_is_watched():
    assert watch("--list") == "nothing is watched; start with: manage.py watch REFERENCE\n"


def test_remove_stops_watching_but_keeps_the_history(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    watch(f"{registry.host}/{repo_name}")
    repository = Repository.objects.select_related("registry").get()
    assert poll(repository).status == PollRun.Status.OK
    events = list(TagEvent.objects.values_list("pk", flat=True))
    assert events

    output = watch("--remove", f"{registry.host}/{repo_name}")

    assert output == (
        f"stopped watching {registry.host}/{repo_name}; its history is kept "
        "(watch it again to resume, which keeps its options)\n"
    )
    assert not Repository.objects.get().enabled
    assert list(TagEvent.objects.values_list("pk", flat=True)) == events
    assert not Repository.objects.due_for_poll(timezone.now() + timedelta(days=30)).exists()


def test_watching_a_removed_repository_again_re_enables_it_with_its_options():
    watch("ghcr.io/acme/app", "--include", "^3")
    watch("--remove", "ghcr.io/acme/app")
    output = watch("ghcr.io/acme/app")
    repository = Repository.objects.get()
    assert repository.enabled and repository.include_pattern == "^3"
    assert repository.next_poll_at <= timezone.now()
    assert output.startswith("watching ghcr.io/acme/app again every 30m (include '^3'); its history is kept")


def test_removing_an_unwatched_repository_fails():
    with pytest.raises(CommandError, match=r"^ghcr.io/acme/app is not watched$"):
        watch("--remove", "ghcr.io/acme/app")


def test_removing_twice_says_there_is_nothing_to_do():
    watch("ghcr.io/acme/app")
    watch("--remove", "ghcr.io/acme/app")
    output = watch("--remove", "ghcr.io/acme/app")
    assert output == "ghcr.io/acme/app is not watched any more; nothing to do\n"
