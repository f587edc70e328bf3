"""`manage.py poll`: polls now, in this process, one summary line per repository, exit 1 on any trouble.

A poll running elsewhere is not trouble: it is waited for and reported, or skipped after the wait.
"""

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from history import slots
from history.management.commands.poll import summary
from history.models import PollRun, TagEvent
from history.tasks import POLL_LEASE, QUEUED_LEASE, poll_repository
from tests.history.factories import watch
from tests.support.faultproxy import Respond

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent

SUMMARY = (
    r"(?P<status>\w+), (?P<tags>\d+) tags, (?P<heads>\d+) HEADs, (?P<gets>\d+) GETs, "
    r"(?P<changes>\d+) changes, \d+\.\ds"
)


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def poll_command(*references: str, stderr=None) -> tuple[str, str]:
    """(stdout, stderr) of a poll that finished ok for every repository."""
    out, err = StringIO(), stderr or StringIO()
    call_command("poll", *references, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing_poll_command(*references: str) -> tuple[str, CommandError]:
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("poll", *references, stdout=out, stderr=StringIO())
    return out.getvalue(), failure.value


def test_polls_a_pushed_repository_and_prints_its_summary(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    pusher.push(repo_name, "2.0", "oci-index", seed=2)
    repository = watch(registry, repo_name)

    stdout, stderr = poll_command(repository.reference)

    # oci: one manifest GET; the index: its own GET and one per platform.
    assert re.fullmatch(
        rf"{re.escape(repository.reference)}: ok, 2 tags, 2 HEADs, 4 GETs, 2 changes, \d+\.\ds\n", stdout
    )
    assert stderr == ""  # no progress bar: stderr is not a terminal
    assert TagEvent.objects.filter(tag__repository=repository).count() == 2


def test_a_poll_releases_the_lease_and_schedules_the_next_one(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name, interval=timedelta(hours=2))
    poll_command(repository.reference)
    repository.refresh_from_db()
    assert repository.lease_until is None
    assert timezone.now() + timedelta(hours=1, minutes=59) < repository.next_poll_at


def test_a_familiar_or_full_reference_names_the_repository(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    watch(registry, repo_name)
    stdout, _ = poll_command(f" {registry.host}/{repo_name} ")
    assert stdout.startswith(f"{registry.host}/{repo_name}: ok, 1 tags")


def test_an_unknown_reference_fails_naming_it_before_any_poll(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    known = watch(registry, repo_name)
    stdout, error = failing_poll_command(known.reference, "127.0.0.1:1/not/watched")
    assert str(error) == "not watched: 127.0.0.1:1/not/watched (add with: manage.py watch REFERENCE)"
    assert stdout == ""
    assert not PollRun.objects.exists()


@pytest.mark.parametrize(
    ("reference", "message"),
    [("python:3.14", "name a repository, without tag or digest"), ("Not/Valid", "must be lowercase")],
)
def test_a_reference_that_is_not_a_repository_fails(reference, message):
    _, error = failing_poll_command(reference)
    assert message in str(error)


def test_a_failing_registry_fails_the_poll_with_its_reason_and_exit_1(fault_proxy, repo_name):
    fault_proxy.add_rule(Respond(500, {"Retry-After": "0"}), path=r"/tags/list")
    repository = watch(fault_proxy, repo_name)

    stdout, error = failing_poll_command(repository.reference)

    line = re.fullmatch(rf"{re.escape(repository.reference)}: {SUMMARY}; (?P<error>.+)\n", stdout)
    assert line, stdout
    assert (line["status"], line["tags"], line["changes"]) == ("failed", "0", "0")
    assert "500" in line["error"]
    assert error.returncode == 1
    assert str(error) == "1 of 1 poll did not finish ok"


def test_a_partial_poll_prints_what_was_not_checked_and_exits_1(fault_proxy, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    pusher.push(repo_name, "2.0", "oci", seed=2)
    fault_proxy.add_rule(Respond(500, {"Retry-After": "0"}), method="HEAD", path=r"/manifests/2\.0$")
    repository = watch(fault_proxy, repo_name)

    stdout, error = failing_poll_command(repository.reference)

    line = re.fullmatch(rf"{re.escape(repository.reference)}: {SUMMARY}; (?P<error>.+)\n", stdout)
    assert line, stdout
    assert (line["status"], line["tags"], line["changes"]) == ("partial", "2", "1")
    assert "1 tag not checked: Unavailable" in line["error"]
    assert "(1 tag: 2.0)" in line["error"]  # which tag, by name
    assert "/manifests/2.0: HTTP 500" in line["error"]
    assert error.returncode == 1


def test_a_repository_whose_lease_is_held_is_skipped_at_once_with_wait_0_and_exit_0(
    registry, pusher, repo_name
):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name)
    assert repository.claim(lease=POLL_LEASE)  # a worker is polling it

    stdout, stderr = poll_command(repository.reference, "--wait", "0")

    assert stdout == f"{repository.reference}: being polled elsewhere, skipped\n"
    assert stderr == ""
    assert not PollRun.objects.exists()
    repository.refresh_from_db()
    assert repository.lease_until is not None  # the worker's lease is left alone


def test_a_poll_still_running_elsewhere_after_the_wait_is_skipped_with_exit_0(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name)
    assert repository.claim(lease=POLL_LEASE)  # a worker is polling it, for longer than we wait

    started = time.monotonic()
    stdout, stderr = poll_command(repository.reference, "--wait", "1")

    assert time.monotonic() - started >= 1
    assert stderr == f"{repository.reference}: being polled elsewhere; waiting up to 1s for its result\n"
    assert stdout == f"{repository.reference}: being polled elsewhere, skipped after waiting 1s\n"
    assert not PollRun.objects.exists()
    repository.refresh_from_db()
    assert repository.lease_until is not None


class Announcing(StringIO):
    """stderr that tells a waiting test thread when the command has said it is waiting."""

    def __init__(self):
        super().__init__()
        self.waiting = threading.Event()

    def write(self, text: str) -> int:
        if "waiting up to" in text:
            self.waiting.set()
        return super().write(text)


# transaction=True: the worker's poll runs on its own connection, as it does in a worker process.
@pytest.mark.django_db(transaction=True)
def test_a_poll_running_elsewhere_is_waited_for_and_its_result_printed(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    pusher.push(repo_name, "2.0", "oci", seed=2)
    repository = watch(registry, repo_name)
    assert repository.claim(lease=QUEUED_LEASE)  # dispatch queued its poll; a worker is about to run it
    stderr = Announcing()

    def worker() -> None:
        try:
            assert stderr.waiting.wait(timeout=30)
            poll_repository(repository.pk)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        polled = pool.submit(worker)
        stdout, _ = poll_command(repository.reference, "--wait", "60", stderr=stderr)
        polled.result()

    worker_run = PollRun.objects.get()  # the worker's: the command did not poll a second time
    assert stdout == summary(repository.reference, worker_run) + "\n"
    line = re.fullmatch(rf"{re.escape(repository.reference)}: {SUMMARY}\n", stdout)
    assert (line["status"], line["tags"], line["changes"]) == ("ok", "2", "2")
    assert stderr.getvalue().startswith(f"{repository.reference}: being polled elsewhere; waiting up to 60s")


def test_a_lease_that_ends_without_a_poll_is_followed_by_a_poll_here(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name)
    # A queued poll that expired unrun (or bounced off a busy registry) leaves no PollRun behind.
    assert repository.claim(lease=timedelta(seconds=1))

    stdout, stderr = poll_command(repository.reference, "--wait", "30")

    assert "waiting up to 30s" in stderr
    assert re.fullmatch(rf"{re.escape(repository.reference)}: {SUMMARY}\n", stdout)["status"] == "ok"
    assert PollRun.objects.get().status == PollRun.Status.OK
    repository.refresh_from_db()
    assert repository.lease_until is None


def test_a_negative_wait_is_refused():
    _, error = failing_poll_command("--wait", "-1")
    assert str(error) == "--wait must be 0 or more seconds"


# transaction=True: the command runs in its own process, on the test database.
@pytest.mark.django_db(transaction=True)
def test_the_error_comes_after_the_summaries_on_its_own_line(fault_proxy, make_repo_name):
    fault_proxy.add_rule(Respond(500, {"Retry-After": "0"}), path=r"/tags/list")
    first, second = watch(fault_proxy, make_repo_name()), watch(fault_proxy, make_repo_name())
    database = connection.settings_dict
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    environment |= {
        "DATABASE_URL": f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}",
        "TAGLEDGER_LOG_LEVEL": "error",
    }

    # Both streams into one pipe, as in a cron mail or a CI log; stdout is block-buffered there.
    done = subprocess.run(
        [sys.executable, "manage.py", "poll", "--wait", "0", first.reference, second.reference],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )

    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout
    assert [line.split(": failed, 0 tags")[0] for line in lines[:2]] == [first.reference, second.reference]
    assert lines[2:] == ["CommandError: 2 of 2 polls did not finish ok"], done.stdout


def test_a_paused_registry_is_reported_busy_with_exit_1(registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    repository = watch(registry, repo_name)
    slots.pause(repository.registry, 120)
    try:
        stdout, error = failing_poll_command(repository.reference)
    finally:
        cache.delete(slots._pause_key(repository.registry))

    assert stdout.startswith(f"{repository.reference}: registry busy or paused, skipped: ")
    assert "is paused by its rate limit; try again in 1" in stdout
    assert error.returncode == 1
    assert not PollRun.objects.exists()


def test_without_arguments_every_enabled_repository_is_polled(registry, pusher, make_repo_name):
    names = [make_repo_name() for _ in range(3)]
    for name in names:
        pusher.push(name, "1.0", "oci")
    first, second = watch(registry, names[0]), watch(registry, names[1])
    removed = watch(registry, names[2], enabled=False)

    stdout, _ = poll_command()

    polled = sorted(line.split(": ")[0] for line in stdout.splitlines())
    assert polled == sorted([first.reference, second.reference])
    assert not PollRun.objects.filter(repository=removed).exists()


def test_without_arguments_and_nothing_watched_says_so():
    assert poll_command() == ("nothing is watched; start with: manage.py watch REFERENCE\n", "")


def test_one_failure_does_not_stop_the_other_polls(registry, fault_proxy, pusher, make_repo_name):
    good_name, bad_name = make_repo_name(), make_repo_name()
    pusher.push(good_name, "1.0", "oci")
    fault_proxy.add_rule(Respond(500, {"Retry-After": "0"}), path=rf"{bad_name}/tags/list")
    good, bad = watch(registry, good_name), watch(fault_proxy, bad_name)

    stdout, error = failing_poll_command(bad.reference, good.reference)

    assert [line.split(": ")[1].split(",")[0] for line in stdout.splitlines()] == ["failed", "ok"]
    assert str(error) == "1 of 2 polls did not finish ok"


def test_a_terminal_gets_a_progress_bar_on_stderr_only(registry, pusher, repo_name):
    for tag in ("1", "2", "3"):
        pusher.push(repo_name, tag, "oci")
    repository = watch(registry, repo_name)

    stdout, stderr = poll_command(repository.reference, stderr=Terminal())

    assert f"\r{repository.reference} [{'#' * 30}] 3/3 tags" in stderr
    assert stderr.endswith("\r\x1b[2K")  # cleared before the summary line
    assert "[" not in stdout
