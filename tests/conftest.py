"""Pytest fixtures for tests against a real registry; the logic lives in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.support import parallel
from tests.support.faultproxy import FaultProxy
from tests.support.pusher import Pusher
from tests.support.registry import RunningRegistry, start_registry, unique_repository
from tests.support.tokenserver import TokenServer

# Hypothesis's deadline (200 ms an example) and its too_slow health check are timing assertions:
# on a loaded two-core machine running the suite in parallel, an example that happens to wait for
# the CPU fails as DeadlineExceeded, or as Flaky when its replay is quick. What bounds the
# property tests is their max_examples and sizes; pytest-timeout still ends a test that hangs. No
# example database either: parallel workers would share one .hypothesis/ folder in the checkout.
hypothesis_settings.register_profile(
    "tagledger", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("tagledger")

# Parallel runs (pytest-xdist, `make test` runs `-n`): each worker has its own test database
# (pytest-django names it test_<name>_gw0, test_<name>_gw1, …, and tests/support/worker.py hands
# that name to the Celery processes it starts) and its own three Redis databases, below the bases
# given in REDIS_URL, TAGLEDGER_TEST_WORKER_BROKER and TAGLEDGER_TEST_IDLE_BROKER: worker k takes
# each base's number minus 3k (15/14/13 -> gw0 15/14/13, gw1 12/11/10, gw2 9/8/7; see
# tests/support/parallel.py). pytest-django reads the settings before any conftest is imported,
# so a worker cannot change REDIS_URL for itself: the controller puts the variables in each
# worker's environment as it starts it (an execnet spec's env), and a worker that crashes and is
# replaced comes back with the same ones. Asking for more workers than the server has databases
# for stops the run before it starts.


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list) -> None:
    """Controller, before the workers start: each worker's Redis databases into its environment."""
    try:
        environments = parallel.plan(os.environ, len(specs))
    except parallel.ParallelConfigError as error:
        fits = parallel.most_workers(os.environ, len(specs) - 1)
        advice = f"At most {fits} fit here (make test PYTEST_WORKERS={fits})." if fits else "None fits."
        raise pytest.UsageError(
            f"-n {len(specs)}: each worker needs {parallel.STRIDE} Redis databases of its own, below "
            f"those in REDIS_URL, TAGLEDGER_TEST_WORKER_BROKER and TAGLEDGER_TEST_IDLE_BROKER: {error}. "
            + advice
        ) from None
    for spec, env in zip(specs, environments, strict=True):
        spec.env.update(env)


def pytest_configure(config: pytest.Config) -> None:
    """A worker refuses to run on databases it may share: only the controller can assign them."""
    if not hasattr(config, "workerinput"):
        return
    from django.conf import settings

    if parallel.SLOT_VARIABLE not in os.environ:
        raise pytest.UsageError(
            "this xdist worker was started without Redis databases of its own "
            "(tests/conftest.py's pytest_xdist_setupnodes did not run)"
        )
    if (settings.REDIS_URL or None) != (os.environ.get("REDIS_URL") or None):
        raise pytest.UsageError(
            f"the settings read REDIS_URL={settings.REDIS_URL} before this worker's "
            f"{os.environ.get('REDIS_URL')} was set"
        )


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> None:
    """Registry slots and rate-limit pauses live in the cache: no test inherits another's (the
    cache database is this process's alone, one per xdist worker)."""
    if settings.REDIS_URL:
        from django.core.cache import cache

        cache.clear()


@pytest.fixture
def public(settings) -> None:
    """A public instance: pages and the API readable without signing in (TAGLEDGER_PUBLIC)."""
    settings.TAGLEDGER_PUBLIC = True


@pytest.fixture(scope="session")
def registry() -> Iterator[RunningRegistry]:
    """An open registry (no auth), shared by the whole session: use `repo_name`."""
    reg = start_registry("none")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_registry() -> Iterator[RunningRegistry]:
    """A registry behind htpasswd Basic auth (creds in .username/.password)."""
    reg = start_registry("basic")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def _token_registry_session() -> Iterator[RunningRegistry]:
    reg = start_registry("token")
    yield reg
    reg.stop()


@pytest.fixture
def token_registry(_token_registry_session: RunningRegistry) -> RunningRegistry:
    """A registry verifying JWTs from `.token_server`, whose settings are reset per test."""
    assert _token_registry_session.token_server is not None
    _token_registry_session.token_server.reset()
    return _token_registry_session


@pytest.fixture
def token_server(token_registry: RunningRegistry) -> TokenServer:
    """The token server in front of `token_registry` (fresh defaults, empty request log)."""
    assert token_registry.token_server is not None
    return token_registry.token_server


@pytest.fixture
def fault_proxy(registry: RunningRegistry) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of the session `registry`."""
    with FaultProxy(registry.url) as proxy:
        yield proxy


@pytest.fixture
def make_pusher() -> Iterator[Callable[..., Pusher]]:
    """Factory: make_pusher(registry, base_url=None) -> Pusher using the registry's creds."""
    made: list[Pusher] = []

    def factory(reg: RunningRegistry, base_url: str | None = None) -> Pusher:
        made.append(Pusher.for_registry(reg, base_url=base_url))
        return made[-1]

    yield factory
    for pusher in made:
        pusher.close()


@pytest.fixture
def pusher(registry: RunningRegistry, make_pusher: Callable[..., Pusher]) -> Pusher:
    """A Pusher bound to the session `registry`."""
    return make_pusher(registry)


@pytest.fixture
def make_repo_name(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Factory for more repository names unique to this test, e.g. `t/test-foo-oci-7`."""
    return lambda: unique_repository(request.node.name)


@pytest.fixture
def repo_name(make_repo_name: Callable[[], str]) -> str:
    """A repository name no other test in the session uses."""
    return make_repo_name()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its corpus shares to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        from tests.support.corpus import REPORT

        workeroutput["corpus_report"] = dict(REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    from tests.support.corpus import REPORT

    REPORT.update(getattr(node, "workeroutput", {}).get("corpus_report", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    """The corpus tests' shares (images placed in a version row, date stamps recognised)."""
    from tests.support.corpus import REPORT

    if REPORT:
        terminalreporter.section("real tag sets (tests/catalog/corpus)")
        for label, line in REPORT.items():
            terminalreporter.write_line(f"{label}: {line}")
