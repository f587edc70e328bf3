"""Per-user API tokens: issued once, stored as a SHA-256 digest, revoked by keeping the row.

A token is `tl_` and 43 characters of `secrets.token_urlsafe(32)`: 256 random bits, so a fast hash
is right (as GitHub's tokens are stored); a slow password hash would buy nothing and cost every
request. The first characters after `tl_` are kept in clear as `prefix`, to find the row with one
indexed lookup and to tell a user's tokens apart in lists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

SCHEME = "tl_"
PREFIX_LENGTH = 8
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet; nothing else is a token.
TOKEN_PATTERN = re.compile(rf"{SCHEME}[A-Za-z0-9_-]{{43}}")
MAX_NAME = 100
# last_used_at is a hint for people ("used 3 days ago"), not an audit log: one write a minute at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Methods that only read: any valid token may use them; every other needs staff scope.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenRefused(Exception):
    """A presented token that does not authenticate; the message says why, for the 401's detail."""


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A new token and its secret: the only time the secret exists outside the caller's hands."""

    token: ApiToken
    secret: str


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def of(self, user):
        return self.filter(user=user).order_by("-created_at", "-pk")

    def issue(self, user, name: str, *, staff: bool = False) -> Issued:
        """A new token for `user`; staff scope only for a staff user (ValueError otherwise)."""
        if staff and not user.is_staff:
            raise ValueError(f"{user.get_username()} is not staff: a staff-scoped token needs a staff user")
        for _ in range(5):  # a prefix collision is a 1 in 2**48 event; try again rather than fail
            secret = SCHEME + secrets.token_urlsafe(32)
            try:
                with transaction.atomic():
                    token = self.create(
                        user=user,
                        name=name,
                        staff=staff,
                        prefix=secret[len(SCHEME) : len(SCHEME) + PREFIX_LENGTH],
                        digest=digest_of(secret),
                    )
            except IntegrityError:
                continue
            return Issued(token, secret)
        raise RuntimeError("could not find an unused token prefix")

    def authenticate(self, secret: str) -> ApiToken:
        """The token `secret` names, with its user; TokenRefused saying why not."""
        if not TOKEN_PATTERN.fullmatch(secret):
            raise TokenRefused("not a tagledger API token (expected tl_ and 43 characters)")
        prefix = secret[len(SCHEME) : len(SCHEME) + PREFIX_LENGTH]
        token = self.select_related("user").filter(prefix=prefix).first()
        # Compared in constant time even when no row matched, so timing says nothing about prefixes.
        stored = token.digest if token else "0" * 64
        if not hmac.compare_digest(stored, digest_of(secret)) or token is None:
            raise TokenRefused("invalid token")
        if token.revoked_at is not None:
            raise TokenRefused("token revoked")
        if not token.user.is_active:
            raise TokenRefused("the token's user is deactivated")
        token.touch()
        return token


class ApiToken(models.Model):
    """One token of one user. Revoking sets revoked_at and keeps the row: who held what, when."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=MAX_NAME, help_text="What it is for, e.g. the CI job that uses it.")
    # The lookup key: unique, so a presented token finds at most one row.
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole token, hex.")
    staff = models.BooleanField(default=False, help_text="May use methods other than GET, HEAD and OPTIONS.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        indexes = [
            # The tokens page and `token list USER`: a user's tokens, newest first.
            models.Index(fields=["user", "-created_at"], name="apitoken_user_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.display_prefix} ({self.name})"

    @property
    def display_prefix(self) -> str:
        return f"{SCHEME}{self.prefix}…"

    @property
    def scope(self) -> str:
        return "staff" if self.staff else "read"

    def may(self, method: str) -> bool:
        """Whether this token may make a request with `method`: reading always; anything else only
        with staff scope held by a user who is still staff."""
        if method.upper() in READING_METHODS:
            return True
        return self.staff and self.user.is_staff and self.user.is_active

    def touch(self, now=None) -> None:
        """Note a use, at most once per LAST_USED_RESOLUTION: a compare-and-set, so concurrent
        requests write once and a busy token costs no write per request."""
        now = now or timezone.now()
        if self.last_used_at and now - self.last_used_at < LAST_USED_RESOLUTION:
            return
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        if ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now):
            self.last_used_at = now

    def revoke(self, now=None) -> bool:
        """Revoke; False if it already was (the first revocation's time stays)."""
        now = now or timezone.now()
        revoked = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now) == 1
        if revoked:
            self.revoked_at = now
        return revoked
