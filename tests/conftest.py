"""Pytest fixtures for tests against a real registry; the logic lives in tests/support/."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.pusher import Pusher
from tests.support.registry import RunningRegistry, start_registry, unique_repository
from tests.support.tokenserver import TokenServer


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> None:
    """Registry slots and rate-limit pauses live in the cache: no test inherits another's."""
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


def pytest_terminal_summary(terminalreporter) -> None:
    """The corpus tests' shares (images placed in a version row, date stamps recognised)."""
    from tests.support.corpus import REPORT

    if REPORT:
        terminalreporter.section("real tag sets (tests/catalog/corpus)")
        for label, line in REPORT.items():
            terminalreporter.write_line(f"{label}: {line}")
