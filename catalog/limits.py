"""Per-registry concurrency slots and rate-limit pauses, shared by all workers through the cache."""

import secrets
import time

from django.core.cache import cache

from .models import Registry

# A crashed worker's slots come back by themselves after this long.
SLOT_LEASE_SECONDS = 30 * 60


# Keyed by host, not id: deployments sharing a cache share the registry's real limits too.
def _slot_key(registry: Registry, index: int) -> str:
    return f"tagledger:registry:{registry.host}:slot:{index}"


def _pause_key(registry: Registry) -> str:
    return f"tagledger:registry:{registry.host}:paused-until"


class Slots:
    """Up to `wanted` of the registry's `concurrency` request slots; `count` says how many were free.

    cache.add is atomic in Redis (and in the database cache), so two workers never hold one slot.
    """

    def __init__(self, registry: Registry, wanted: int):
        self.registry = registry
        self.token = secrets.token_hex(8)
        self.keys: list[str] = []
        for index in range(registry.concurrency):
            if len(self.keys) >= wanted:
                break
            key = _slot_key(registry, index)
            if cache.add(key, self.token, timeout=SLOT_LEASE_SECONDS):
                self.keys.append(key)

    @property
    def count(self) -> int:
        return len(self.keys)

    def release(self) -> None:
        for key in self.keys:
            if cache.get(key) == self.token:  # never free a slot that expired and went to another
                cache.delete(key)
        self.keys = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def pause(registry: Registry, seconds: float) -> None:
    """No worker polls this registry for `seconds` (a Retry-After, or a rate-limit floor reached)."""
    until = time.time() + seconds
    if until > paused_until(registry):
        cache.set(_pause_key(registry), until, timeout=int(seconds) + 1)


def paused_until(registry: Registry) -> float:
    """Epoch seconds until which the registry is paused; 0 when it is not."""
    return float(cache.get(_pause_key(registry)) or 0)
