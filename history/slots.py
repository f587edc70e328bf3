"""Per-registry concurrency slots and rate-limit pauses, shared by all workers through the cache."""

import logging
import secrets
import time

from django.core.cache import cache

from catalog.models import Registry

log = logging.getLogger(__name__)

# A crashed worker's slots come back by themselves after this long; a live poll renews them
# every few seconds (history.heartbeat), so a short lease costs nothing and frees a registry fast.
SLOT_LEASE_SECONDS = 90
# Giving slots back is tried this many times, waiting a little longer each time: the cache may be
# the database, and a database that is locked for a moment must not hold the slots for the lease.
RELEASE_ATTEMPTS = 4


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

    def renew(self) -> None:
        """Extend the lease of each slot still held; one that expired (and may be another poll's
        now) is let go rather than taken back."""
        kept = []
        for key in self.keys:
            if cache.get(key) == self.token and cache.touch(key, SLOT_LEASE_SECONDS):
                kept.append(key)
        if len(kept) < len(self.keys):
            log.warning(
                "%s: %d request slots expired before their poll ended",
                self.registry,
                len(self.keys) - len(kept),
            )
        self.keys = kept

    def release(self) -> None:
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                for key in list(self.keys):
                    if cache.get(key) == self.token:  # never free a slot that expired and went to another
                        cache.delete(key)
                    self.keys.remove(key)
                return
            except Exception as error:  # the cache backend's own errors: database, Redis, socket
                if attempt + 1 == RELEASE_ATTEMPTS:
                    log.warning("%s: request slots left to expire: %s", self.registry, error)
                    return
                time.sleep(0.25 * 4**attempt)

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
