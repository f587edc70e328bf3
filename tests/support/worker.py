"""Real Celery worker and beat processes for tests whose behaviour crosses the broker."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import redis

PROJECT_DIR = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
# "w1@host ready." (a whole log line: "already" elsewhere in a log must not count).
WORKER_READY = re.compile(r"\S+@\S+ ready\.\s*$", re.MULTILINE)
BEAT_READY = re.compile(r"beat: Starting\.\.\.")
# Linux: the child gets SIGTERM if the test process dies without running its teardown.
_SETPRIV = shutil.which("setpriv")
_PDEATHSIG = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []

# Redis databases of the tests' own (never the test cache's), flushed by the tests that use them:
# one a worker consumes, one that nothing consumes so a test can read what was enqueued. The
# variables let two checkouts on one machine run the suite at once (each with its own
# DATABASE_URL and REDIS_URL as well); each pytest-xdist worker is handed its own databases in
# them (tests/support/parallel.py).
DEFAULT_WORKER_BROKER = "redis://127.0.0.1:6379/14"
DEFAULT_IDLE_BROKER = "redis://127.0.0.1:6379/13"
WORKER_BROKER_URL = os.environ.get("TAGLEDGER_TEST_WORKER_BROKER", DEFAULT_WORKER_BROKER)
IDLE_BROKER_URL = os.environ.get("TAGLEDGER_TEST_IDLE_BROKER", DEFAULT_IDLE_BROKER)

T = TypeVar("T")


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to: pytest-django's `test_<name>`."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def flush_redis(url: str) -> redis.Redis:
    """Empty the Redis database at `url` (a throwaway broker) and return a client for it."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


def celery_environment(*, database_url: str, broker_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment pointed at one database, broker and data dir."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tagledger.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        # Beat's schedule, the generated secret key and the filesystem broker's folders live here.
        TAGLEDGER_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class CeleryProcess:
    """One `celery` command in its own process group, logging to a file; stop() leaves nothing behind."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path, ready: re.Pattern):
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.ready = ready
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> CeleryProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*_PDEATHSIG, *self.argv],
                cwd=PROJECT_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals everything it started
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> CeleryProcess:
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not self.ready.search(self.log):
            if self._exited():
                self.stop()
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} during start-up; log:\n{self.log}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready after {timeout}s; log:\n{self.log}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a warm shutdown: running tasks finish), then SIGKILL after `timeout`."""
        self.terminate()
        self.wait_stopped(timeout)

    def terminate(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self._signal_group(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        if not self._exited(timeout):
            self._signal_group(signal.SIGKILL)
            self._exited(10)
        # Not reaped yet, so its group id cannot have gone to another process: anything the
        # command forked and left behind goes too. Then reap it.
        self._signal_group(signal.SIGKILL)
        process.wait(timeout=10)

    def _exited(self, timeout: float = 0.0) -> bool:
        """Whether the process has ended (waiting up to `timeout`), without reaping it."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def __enter__(self) -> CeleryProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker(
    env: Mapping[str, str], log_dir: Path, *, name: str = "worker", concurrency: int = 4
) -> CeleryProcess:
    """A thread-pool worker, not yet started. Mingle, gossip and heartbeats are off: they cost a
    second or more at start-up and nothing here needs workers to know about each other."""
    argv = [
        CELERY, "-A", "tagledger", "worker", "--pool=threads", f"--concurrency={concurrency}",
        "--loglevel=INFO", f"--hostname={name}@%h", "--without-mingle", "--without-gossip",
        "--without-heartbeat",
    ]  # fmt: skip
    return CeleryProcess(name, argv, env, log_dir / f"{name}.log", WORKER_READY)


def beat(env: Mapping[str, str], log_dir: Path, *, schedule: Path) -> CeleryProcess:
    """`celery beat` with its schedule file in `schedule` (not the project's var/), not yet started."""
    argv = [CELERY, "-A", "tagledger", "beat", "--loglevel=INFO", f"--schedule={schedule}"]
    return CeleryProcess("beat", argv, env, log_dir / "beat.log", BEAT_READY)


@contextlib.contextmanager
def running(*processes: CeleryProcess, timeout: float = 30.0) -> Iterator[tuple[CeleryProcess, ...]]:
    """Start all at once (their start-ups overlap), wait until each is ready, stop all on exit."""
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready(timeout)
        yield processes
    finally:
        for process in processes:
            process.terminate()  # all at once: each warm shutdown takes a second or more
        for process in processes:
            process.wait_stopped()


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    logs_of: tuple[CeleryProcess, ...] = (),
    step: float = 0.05,
) -> T:
    """Poll `predicate` every `step` seconds until it returns something truthy; on timeout fail with
    the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} log ---\n{p.log[-6000:]}" for p in logs_of)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(step)


@contextlib.contextmanager
def app_using_broker(app, url: str, transport_options: dict | None = None) -> Iterator[None]:
    """Point this process's Celery app at another broker, and back afterwards.

    The app caches its broker connection pool, so it is forgotten on the way in and out, as
    Celery's own after-fork reset does. kombu keeps one pool per broker URL for the whole process
    and hands it out again, so it must not be closed here.
    """
    saved = app.conf.broker_url, app.conf.broker_transport_options
    _drop_pools(app)
    app.conf.broker_url, app.conf.broker_transport_options = url, transport_options or {}
    try:
        yield
    finally:
        _drop_pools(app)
        app.conf.broker_url, app.conf.broker_transport_options = saved


def _drop_pools(app) -> None:
    app._pool = None
    app.amqp._producer_pool = None


def manage(env: Mapping[str, str], *args: str, timeout: float = 60.0) -> str:
    """Run `manage.py ARGS` in a separate process with `env`; its stdout, or fail with its stderr."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


@contextlib.contextmanager
def redis_worker(tmp_path_factory, name: str, **extra: str) -> Iterator[tuple[CeleryProcess, ...]]:
    """One worker process consuming the tests' worker broker (emptied before and after) on the test
    database, with this process's Celery app enqueuing onto it; `extra` adds to its environment."""
    from django.db import connection

    from tagledger.celery import app

    broker = flush_redis(WORKER_BROKER_URL)
    env = celery_environment(
        database_url=database_url(connection.settings_dict),
        broker_url=WORKER_BROKER_URL,
        data_dir=tmp_path_factory.mktemp(f"celery-{name}"),
        **extra,
    )
    with (
        running(worker(env, tmp_path_factory.mktemp(f"celery-{name}-logs"), name=name)) as processes,
        app_using_broker(app, WORKER_BROKER_URL),
    ):
        yield processes
    broker.flushdb()
