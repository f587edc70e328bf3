"""Keep a running poll's claims alive: its repository's lease and its registry request slots.

Both are short and expire by themselves, so a worker that crashes, is killed, or loses its
database frees them within a minute or two; a live poll renews them from a thread every BEAT
seconds, so a slow poll keeps them for as long as it runs (it stops at its own deadline).
"""

import logging
import threading
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from catalog.models import Repository

from .slots import Slots

log = logging.getLogger(__name__)

BEAT = 20.0


class Heartbeat:
    """`with Heartbeat(repository, slots, lease=...):` renews both every `every` seconds."""

    def __init__(self, repository: Repository, slots: Slots, *, lease: timedelta, every: float = BEAT):
        self.repository = repository
        self.slots = slots
        self.lease = lease
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {repository}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        # A beat waits on the database at most a few seconds (it never locks what the poll holds);
        # should one hang anyway, the poll still ends: the thread is a daemon.
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            log.warning("%s: the heartbeat did not stop; left to end with the process", self.repository)

    def beat(self) -> None:
        """One renewal. Failures are logged, never raised: the leases then run out by themselves."""
        try:
            self.slots.renew()
        except Exception:  # the cache backend's own errors: database, Redis, socket
            log.warning("%s: could not renew the request slots", self.repository, exc_info=True)
        try:
            self.repository.renew_lease(lease=self.lease, now=timezone.now())
        except Exception:  # the database is locked or gone: the poll itself will see it too
            log.warning("%s: could not renew the polling lease", self.repository, exc_info=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self.beat()
        finally:
            connection.close()  # this thread's own connection, opened by its first beat
