"""Forms that make something and show its secret once (an API token, a subscription) must not make
it twice when the browser sends the same form again: a reload of the page that showed the secret,
or Back and Submit. Each rendered form carries a random value; the first POST to carry it spends it,
and a later one finds it spent and makes nothing.

The secret is never stored to show it again; the page that made it is its only showing.
"""

import re
import secrets

from django import forms
from django.core.cache import cache

FIELD = "once"
# Long enough for a tab left open over a weekend; a spent value is a few bytes in the cache.
LIFETIME = 7 * 24 * 3600
_VALUE = re.compile(r"[A-Za-z0-9_-]{22}")


def field() -> forms.CharField:
    """The hidden field: a new value each time an unbound form is rendered."""
    return forms.CharField(
        widget=forms.HiddenInput, required=False, initial=lambda: secrets.token_urlsafe(16)
    )


def spend(value: str) -> bool:
    """True the first time a form's value is spent, False when that form was sent already. A POST
    without a well-formed value (a script, not this page's form) is not told apart."""
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        return True
    return cache.add(f"tagledger:once:{value}", 1, timeout=LIFETIME)
