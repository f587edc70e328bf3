"""Django's database sessions, less the session keys no session has.

Django makes keys of 32 lowercase letters and digits; a quoted cookie can carry `\\000`, a NUL
that PostgreSQL refuses in a query (a DataError, so a 500 on every page) before any lookup.
"""

import re

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

_KEY = re.compile(r"[a-z0-9]{8,40}")


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key):
        return isinstance(key, str) and _KEY.fullmatch(key) is not None
