"""Each pytest-xdist worker's own Redis databases, so parallel workers never flush each other's.

The suite uses three Redis databases: the cache (REDIS_URL, also the default Celery broker), which
tests/conftest.py empties before every test; the broker a real Celery worker consumes
(TAGLEDGER_TEST_WORKER_BROKER); and one that nothing consumes (TAGLEDGER_TEST_IDLE_BROKER). Two
processes sharing one of them would wipe each other's registry slots, rate-limit pauses and queued
tasks in the middle of a test.

Worker k (gw0, gw1, …) takes each base database number minus 3k: from `make test`'s 15/14/13, gw0
keeps 15/14/13 (what a single-process run uses), gw1 gets 12/11/10, gw2 9/8/7, up to gw4's 3/2/1;
from 39/38/37 on another server, gw1 gets 36/35/34. Host, port and password stay the base's.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.support.worker import DEFAULT_IDLE_BROKER, DEFAULT_WORKER_BROKER

# Variable -> its default when unset (None: unset means no Redis at all, the cache is in memory).
VARIABLES: dict[str, str | None] = {
    "REDIS_URL": None,
    "TAGLEDGER_TEST_WORKER_BROKER": DEFAULT_WORKER_BROKER,
    "TAGLEDGER_TEST_IDLE_BROKER": DEFAULT_IDLE_BROKER,
}
STRIDE = len(VARIABLES)
# Set in each worker's environment with its index; tests/conftest.py refuses a worker without it.
SLOT_VARIABLE = "TAGLEDGER_TEST_REDIS_SLOT"


class ParallelConfigError(ValueError):
    """The Redis databases cannot be split between this many workers."""


def database_number(url: str) -> int:
    """The database a redis:// URL selects: its path (/15), 0 when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ParallelConfigError(f"{url!r} is not a redis:// URL")
    if "db=" in parts.query:
        raise ParallelConfigError(f"{url!r}: give the database as the path (/15), not ?db=")
    path = parts.path.strip("/")
    if not path:
        return 0
    if not path.isdigit():
        raise ParallelConfigError(f"{url!r}: the path must be a database number")
    return int(path)


def shifted(url: str, by: int) -> str:
    """`url` selecting the database `by` below its own, e.g. shifted('redis://h:6379/15', 3) -> /12."""
    number = database_number(url) - by
    if number < 0:
        raise ParallelConfigError(f"{url!r} has no database {by} below it")
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


def worker_environment(environ: Mapping[str, str], index: int) -> dict[str, str]:
    """The variables worker `index` starts with: each Redis base shifted down by 3 * index."""
    env = {SLOT_VARIABLE: str(index)}
    for name, default in VARIABLES.items():
        base = environ.get(name) or default
        if base is not None:
            try:
                env[name] = shifted(base, STRIDE * index)
            except ParallelConfigError as error:
                raise ParallelConfigError(f"gw{index}'s {name}: {error}") from None
    return env


def plan(environ: Mapping[str, str], workers: int, *, check_server: bool = True) -> list[dict[str, str]]:
    """Every worker's variables, refused unless no two workers share a database and each exists.

    With `check_server`, each URL is opened: Redis refuses a SELECT beyond its `databases` (16 by
    default), so the server says how many workers fit.
    """
    environments = [worker_environment(environ, index) for index in range(workers)]
    owners: dict[tuple, str] = {}
    for index, env in enumerate(environments):
        for name in VARIABLES:
            if name not in env:
                continue
            parts = urlsplit(env[name])
            key = (parts.hostname, parts.port or 6379, database_number(env[name]))
            if key in owners:
                raise ParallelConfigError(
                    f"gw{index}'s {name} ({env[name]}) is also {owners[key]}: give the bases as "
                    f"three adjacent databases, e.g. REDIS_URL=/15, WORKER_BROKER=/14, IDLE_BROKER=/13"
                )
            owners[key] = f"gw{index}'s {name}"
            if check_server:
                _check_selectable(env[name], f"gw{index}'s {name}")
    return environments


def _check_selectable(url: str, who: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.ResponseError as error:  # "DB index is out of range"
        raise ParallelConfigError(f"{who} ({url}): {error}") from None
    except redis.ConnectionError as error:
        raise ParallelConfigError(f"{who} ({url}): {error}") from None
    finally:
        client.close()


def most_workers(environ: Mapping[str, str], up_to: int) -> int:
    """The most workers (at most `up_to`) whose databases the server has, each their own; 0 if none."""
    for workers in range(up_to, 0, -1):
        try:
            plan(environ, workers)
        except ParallelConfigError:
            continue
        return workers
    return 0
