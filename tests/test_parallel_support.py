"""Each pytest-xdist worker's Redis databases (tests/support/parallel.py): its own, and refused when
the server has too few."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.support.parallel import (
    SLOT_VARIABLE,
    ParallelConfigError,
    most_workers,
    plan,
    shifted,
    worker_environment,
)
from tests.support.worker import IDLE_BROKER_URL

MAKE_TEST = {"REDIS_URL": "redis://127.0.0.1:6379/15"}  # what the Makefile sets; the brokers default


@pytest.mark.parametrize(
    ("index", "cache", "worker_broker", "idle_broker"),
    [
        (0, "redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/13"),
        (1, "redis://127.0.0.1:6379/12", "redis://127.0.0.1:6379/11", "redis://127.0.0.1:6379/10"),
        (2, "redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/8", "redis://127.0.0.1:6379/7"),
        (4, "redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/1"),
    ],
)
def test_worker_k_takes_each_base_minus_3k_and_gw0_keeps_the_single_process_databases(
    index, cache, worker_broker, idle_broker
):
    assert worker_environment(MAKE_TEST, index) == {
        "REDIS_URL": cache,
        "TAGLEDGER_TEST_WORKER_BROKER": worker_broker,
        "TAGLEDGER_TEST_IDLE_BROKER": idle_broker,
        SLOT_VARIABLE: str(index),
    }


def test_other_bases_shift_the_same_way_on_their_own_server():
    environ = {
        "REDIS_URL": "redis://127.0.0.1:6380/39",
        "TAGLEDGER_TEST_WORKER_BROKER": "redis://127.0.0.1:6380/38",
        "TAGLEDGER_TEST_IDLE_BROKER": "redis://127.0.0.1:6380/37",
    }
    assert worker_environment(environ, 2) == {
        "REDIS_URL": "redis://127.0.0.1:6380/33",
        "TAGLEDGER_TEST_WORKER_BROKER": "redis://127.0.0.1:6380/32",
        "TAGLEDGER_TEST_IDLE_BROKER": "redis://127.0.0.1:6380/31",
        SLOT_VARIABLE: "2",
    }


def test_without_redis_url_the_cache_stays_in_memory_and_only_the_brokers_move():
    env = worker_environment({}, 1)
    assert "REDIS_URL" not in env
    assert env["TAGLEDGER_TEST_WORKER_BROKER"] == "redis://127.0.0.1:6379/11"


@pytest.mark.parametrize(
    ("url", "by", "expected"),
    [
        ("redis://127.0.0.1:6379/15", 0, "redis://127.0.0.1:6379/15"),
        ("redis://:s3cret@cache.internal:6390/30", 3, "redis://:s3cret@cache.internal:6390/27"),
        (
            "rediss://user:pw@[::1]:6379/7?ssl_cert_reqs=none",
            6,
            "rediss://user:pw@[::1]:6379/1?ssl_cert_reqs=none",
        ),
        ("redis://127.0.0.1:6379", 0, "redis://127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/", 0, "redis://127.0.0.1:6379/0"),
    ],
)
def test_only_the_database_number_changes(url, by, expected):
    assert shifted(url, by) == expected


@pytest.mark.parametrize(
    ("url", "by", "says"),
    [
        ("redis://127.0.0.1:6379/2", 3, "no database 3 below"),
        ("redis://127.0.0.1:6379", 3, "no database 3 below"),
        ("redis://127.0.0.1:6379/?db=4", 0, "not ?db="),
        ("redis://127.0.0.1:6379/cache", 0, "must be a database number"),
        ("redis://127.0.0.1:6379/-1", 0, "must be a database number"),
        ("unix:///run/redis.sock", 0, "not a redis:// URL"),
        ("", 0, "not a redis:// URL"),
    ],
)
def test_a_base_that_cannot_move_is_refused_with_the_reason(url, by, says):
    with pytest.raises(ParallelConfigError, match=says.replace("?", r"\?")):
        shifted(url, by)


def test_bases_that_would_overlap_another_workers_are_refused():
    # gw0's worker broker (12) would be gw1's cache.
    environ = {**MAKE_TEST, "TAGLEDGER_TEST_WORKER_BROKER": "redis://127.0.0.1:6379/12"}
    assert len(plan(environ, 1, check_server=False)) == 1
    with pytest.raises(ParallelConfigError, match=r"gw1's REDIS_URL .* is also gw0's TAGLEDGER_TEST_WORKER"):
        plan(environ, 2, check_server=False)


def test_one_database_on_another_server_is_not_a_collision():
    environ = {
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "TAGLEDGER_TEST_WORKER_BROKER": "redis://127.0.0.1:6380/15",
        "TAGLEDGER_TEST_IDLE_BROKER": "redis://127.0.0.1:6381/15",
    }
    assert len(plan(environ, 3, check_server=False)) == 3


def _on_the_suites_server(number: int) -> str:
    return urlunsplit(urlsplit(IDLE_BROKER_URL)._replace(path=f"/{number}"))


def _bases(top: int) -> dict[str, str]:
    return {
        "REDIS_URL": _on_the_suites_server(top),
        "TAGLEDGER_TEST_WORKER_BROKER": _on_the_suites_server(top - 1),
        "TAGLEDGER_TEST_IDLE_BROKER": _on_the_suites_server(top - 2),
    }


def test_the_server_says_which_databases_exist():
    """Redis refuses a SELECT past its `databases`: a run asking for those stops before it starts.
    Only PING is sent, so the databases of whoever else uses this server are left as they are."""
    client = redis.Redis.from_url(IDLE_BROKER_URL)
    databases = int(client.config_get("databases")["databases"])
    client.close()

    assert len(plan(_bases(databases - 1), 1)) == 1
    with pytest.raises(ParallelConfigError, match="out of range"):
        plan(_bases(databases), 1)
    # 5/4/3: gw1 takes 2/1/0, gw2 would need -1.
    assert most_workers(_bases(5), up_to=8) == 2
    assert most_workers(_bases(databases + 5), up_to=8) == 0
