"""Registry push events: how soon a pushed rebuild is recorded when the registry notifies tagledger,
with the repository's poll interval at 1 h (issue 14, section 2: within 5 s).

`python -m bench.hooks [--pushes N] [--quick]`

Everything real, each in its own process: Debian's docker-registry with `notifications:
endpoints:` pointing at tagledger's web service (gunicorn, `tagledger.gunicorn`, 2 workers), one
Celery worker (`--pool=threads --concurrency=4`), PostgreSQL (its own database `tl_bench_hooks`,
made afresh) and Redis (`BENCH_REDIS_URL`, default db 6, as the broker and the cache; nothing in
it is flushed). This process pushes over the registry's HTTP API and reads the database.

Measured, each push a rebuild of one tag (new layer, new manifest) of a repository watched with a
1 h interval, after its first poll:
- spaced:        N pushes, each waited for and then TAGLEDGER_HOOK_MIN_INTERVAL + 0.5 s apart, so
                 each is the first of its gap (the poll is enqueued at once);
- back-to-back:  N pushes, each pushed as soon as the previous one is recorded: each lands in the
                 gap of the poll before it and waits for the follow-up at the gap's end;
from the moment the manifest PUT returned to the moment the `moved` event is in the database
(read every 10 ms). Also: the endpoint's answer time over 100 POSTs of an event for a repository
that is not watched, and the polls a burst of 100 events for the watched one causes.

Results: p50, p95 and max on stdout (markdown) and var/bench/hooks[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres:postgres@127.0.0.1:5432")
DATABASE_URL = f"{PG_SERVER}/tl_bench_hooks"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
TOKEN = "bench-hooks-token-0123456789"  # noqa: S105 (the benchmark's own)
MIN_INTERVAL = 2
TARGET_S = 5.0
os.environ.update(
    DJANGO_SETTINGS_MODULE="tagledger.settings",
    DATABASE_URL=DATABASE_URL,
    REDIS_URL=REDIS_URL,
    CELERY_BROKER_URL=REDIS_URL,
    TAGLEDGER_HOOK_TOKEN=TOKEN,
    TAGLEDGER_HOOK_MIN_INTERVAL=str(MIN_INTERVAL),
    TAGLEDGER_LOG_LEVEL=os.environ.get("TAGLEDGER_LOG_LEVEL", "warning"),
)

from bench.common import PROJECT_DIR, percentile, write_results  # noqa: E402
from tests.support import worker as celery_support  # noqa: E402
from tests.support.pusher import Pusher  # noqa: E402
from tests.support.registry import free_port, notification_endpoint, start_registry  # noqa: E402

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def log(message: str) -> None:
    print(f"[bench.hooks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS tl_bench_hooks WITH (FORCE)")
        connection.execute("CREATE DATABASE tl_bench_hooks")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=PROJECT_DIR, check=True)
    import django

    django.setup()


def web(port: int, data_dir: Path, log_dir: Path) -> celery_support.CeleryProcess:
    """tagledger's web service as compose runs it, on a loopback port (not yet started)."""
    argv = [GUNICORN, "-c", "python:tagledger.gunicorn", "tagledger.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", "2"]  # fmt: skip
    env = dict(os.environ, TAGLEDGER_DATA_DIR=str(data_dir))
    return celery_support.CeleryProcess("web", argv, env, log_dir / "web.log", re.compile(r"Booting worker"))


def wait_until(predicate, timeout: float, what: str):
    # Polled every 10 ms: the step is part of the push-to-recorded figure this measures.
    return celery_support.wait_until(predicate, timeout=timeout, what=what, step=0.01)


def moved(repository) -> int:
    from history.models import TagEvent

    return TagEvent.objects.filter(tag__repository=repository, kind=TagEvent.Kind.MOVED).count()


def polls_started(repository, since) -> int:
    from history.models import PollRun

    return PollRun.objects.filter(repository=repository, started_at__gte=since).count()


def rebuilds(pusher: Pusher, repository, pushes: int, *, pause: float, seed: str) -> list[float]:
    """Seconds from each rebuild's manifest PUT to its `moved` event in the database."""
    latencies = []
    for index in range(pushes):
        time.sleep(pause)  # before: the first push must be out of the gap of the poll before it too
        before = moved(repository)
        pusher.push(repository.name, "1.0", seed=f"{seed}-{index}")
        pushed_at = time.perf_counter()
        wait_until(lambda before=before: moved(repository) > before, 60, f"push {index} recorded")
        latencies.append(time.perf_counter() - pushed_at)
    return latencies


def endpoint_times(url: str, count: int = 100) -> list[float]:
    """The endpoint's answer time for an event naming a repository nobody watches."""
    body = json.dumps({"events": [{"action": "push", "target": {"repository": "not/watched", "tag": "1"},
                                   "request": {"host": "127.0.0.1:1"}}]})  # fmt: skip
    headers = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}
    times = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=10)
            times.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
    return times


def burst(url: str, repository, registry_host: str, events: int = 100) -> int:
    """Polls caused by `events` events for the watched repository sent as fast as one client can."""
    from django.utils import timezone

    wait_until(lambda: polls_finished(repository), 60, "the last poll to end")
    time.sleep(MIN_INTERVAL + 0.5)  # out of any gap the rebuilds left
    since = timezone.now()
    body = json.dumps({"events": [{"action": "push", "target": {"repository": repository.name, "tag": "1.0"},
                                   "request": {"host": registry_host}}]})  # fmt: skip
    headers = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}
    with requests.Session() as session:
        for _ in range(events):
            session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    time.sleep(3 * MIN_INTERVAL + 5)  # the follow-up at the end of the gap, and its poll
    wait_until(lambda: polls_finished(repository), 60, "the burst's polls to end")
    return polls_started(repository, since)


def polls_finished(repository) -> bool:
    repository.refresh_from_db()
    return repository.lease_until is None


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
        "values": values,
    }


def run(pushes: int, quick: bool) -> dict:
    prepare_database()
    from catalog.models import Registry, Repository
    from history.models import PollRun

    workdir = Path(tempfile.mkdtemp(prefix="tl-bench-hooks-"))
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/hooks/registry/{TOKEN}"
    registry = start_registry("none", notifications=[notification_endpoint(hook_url)])
    # celery_environment starts from this process's environment: REDIS_URL and the hook settings too.
    env = celery_support.celery_environment(database_url=DATABASE_URL, broker_url=REDIS_URL, data_dir=workdir)
    pusher = Pusher.for_registry(registry)
    try:
        with celery_support.running(celery_support.worker(env, workdir), web(port, workdir, workdir)):
            host, _ = Registry.objects.get_or_create(host=registry.host)
            repository = Repository.objects.create(
                registry=host, name="bench/app", interval=timedelta(hours=1)
            )
            pusher.push(repository.name, "1.0", seed="first")
            wait_until(lambda: repository.tags.filter(name="1.0").exists(), 60, "the first poll")
            wait_until(lambda: polls_finished(repository), 60, "the first poll to end")
            log(f"spaced: {pushes} rebuilds, {MIN_INTERVAL + 0.5} s apart")
            spaced = rebuilds(pusher, repository, pushes, pause=MIN_INTERVAL + 0.5, seed="spaced")
            log(f"back-to-back: {pushes} rebuilds")
            back_to_back = rebuilds(pusher, repository, pushes, pause=0, seed="b2b")
            log("endpoint: 100 POSTs")
            answers = endpoint_times(hook_url, 20 if quick else 100)
            log("burst: 100 events")
            burst_polls = burst(hook_url, repository, registry.host, 20 if quick else 100)
            polls_total = PollRun.objects.filter(repository=repository).count()
    finally:
        pusher.close()
        registry.stop()
    return {
        "pushes": pushes,
        "min_interval_s": MIN_INTERVAL,
        "interval": "1h",
        "spaced_s": stats(spaced),
        "back_to_back_s": stats(back_to_back),
        "endpoint_ms": stats([value * 1000 for value in answers]),
        "burst_events": 20 if quick else 100,
        "burst_polls": burst_polls,
        "polls_total": polls_total,
    }


def report(results: dict) -> str:
    def row(name: str, data: dict, unit: str, fmt: str = "{:.2f}") -> str:
        cells = " | ".join(fmt.format(data[key]) + f" {unit}" for key in ("p50", "p95", "max"))
        return f"| {name} | {data['n']} | {cells} |"

    worst = max(results["spaced_s"]["p95"], results["back_to_back_s"]["p95"])
    return "\n".join(
        [
            "| push → `moved` recorded | n | p50 | p95 | max |",
            "| --- | --- | --- | --- | --- |",
            row("spaced (first push of its gap)", results["spaced_s"], "s"),
            row("back-to-back (in the previous poll's gap)", results["back_to_back_s"], "s"),
            row("endpoint answer (202, unwatched repository)", results["endpoint_ms"], "ms", "{:.1f}"),
            "",
            f"Burst of {results['burst_events']} events for the watched repository: "
            f"{results['burst_polls']} polls.",
            f"Target: p95 within {TARGET_S:.0f} s: {'met' if worst <= TARGET_S else 'MISSED'} "
            f"({worst:.2f} s).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20, help="Rebuilds per series (default 20).")
    parser.add_argument("--quick", action="store_true", help="5 rebuilds a series: a smoke run.")
    options = parser.parse_args()
    pushes = 5 if options.quick else options.pushes
    results = run(pushes, options.quick)
    path = write_results("hooks-quick" if options.quick else "hooks", results)
    print(report(results))
    log(f"results in {path}")


if __name__ == "__main__":
    main()
