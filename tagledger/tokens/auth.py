"""Reading `Authorization: Bearer <token>` for the API: a ninja auth class beside the session one."""

from __future__ import annotations

import re

from django.conf import settings
from ninja.errors import AuthenticationError, HttpError
from ninja.security.http import HttpAuthBase

from .models import ApiToken, TokenRefused

# A token is 46 characters; anything far longer is not one, and is not worth reading further.
MAX_HEADER = 512


class TokenAuthenticationError(AuthenticationError):
    """A 401 whose detail says what was wrong with the token presented."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail)
        self.detail = detail


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization` header, None when the header is of another scheme (Basic:
    not ours to judge), TokenRefused when it says Bearer but is malformed."""
    if len(header) > MAX_HEADER:
        raise TokenRefused(f"Authorization header longer than {MAX_HEADER} characters")
    # RFC 9110: the scheme, then spaces or tabs, then the credentials.
    scheme, value = [*re.split(r"[ \t]+", header.strip(" \t"), maxsplit=1), ""][:2]
    if scheme.lower() != "bearer":
        return None
    if not value:
        raise TokenRefused("Bearer with no token: send 'Authorization: Bearer <token>'")
    if any(character in value for character in " \t"):
        raise TokenRefused("malformed Authorization header: one token after 'Bearer ', nothing else")
    return value


def check_method(token: ApiToken, method: str) -> None:
    """The scope rule: a token without staff scope only reads (403 on any other method)."""
    if not token.may(method):
        raise HttpError(403, f"this token is read-only: {method} needs a token with staff scope")


class bearerAuth(HttpAuthBase):
    """(Named for the OpenAPI security scheme it declares: ninja names schemes after their class.)

    `Authorization: Bearer <token>` with a token from the tokens page or `manage.py token`.

    On a public instance reads need no credentials, so the header is not read at all: a revoked
    token sent anyway does not turn a read anyone may make into a 401."""

    openapi_scheme = "bearer"

    def __init__(self, *, staff: bool = False) -> None:
        """`staff`: for endpoints only staff may use (notifications hold webhook URLs and secrets): the
        header is read on a public instance too, and a token of a user who is not staff is a 403."""
        self.staff = staff
        super().__init__()

    def __call__(self, request):
        if settings.TAGLEDGER_PUBLIC and not self.staff:
            return None
        header = request.headers.get("Authorization")
        if not header:
            return None
        try:
            secret = bearer_token(header)
            if secret is None:
                return None
            token = ApiToken.objects.authenticate(secret)
        except TokenRefused as refused:
            raise TokenAuthenticationError(str(refused)) from None
        if self.staff and not token.user.is_staff:
            raise HttpError(403, "staff only: this token's user is not staff")
        check_method(token, request.method)
        request.user = token.user
        return token
