"""Web-facing defences: a Content-Security-Policy with no inline script, and login throttling."""

import ipaddress

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render

# htmx and our own script are static files; registry-supplied text can never become code.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Failures from one address, over all usernames, that lock it out: a multiple of the per-username
# limit, so a few people behind one NAT who mistype are not locked out together.
ADDRESS_FACTOR = 5


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response

    return middleware


def client_address(request) -> str | None:
    """The address failed sign-ins count against (axes' AXES_CLIENT_IP_CALLABLE).

    The peer, or behind a declared proxy the address that proxy appended to X-Forwarded-For (the
    last one: anything before it came from the client and may be forged). An IPv6 client counts as
    its /64, which one household holds whole. Never anything but an IP address or None, which is
    all axes' address column takes.
    """
    if settings.TAGLEDGER_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2]
        if address := _address(forwarded):
            return address
    return _address(request.META.get("REMOTE_ADDR", ""))


def client_username(request, credentials=None) -> str | None:
    """The username failed sign-ins count against (axes' AXES_USERNAME_CALLABLE): as given, cut to
    axes' 255-character column. Django's login form passes longer ones on to authenticate(), and
    no username that long exists, so cutting them merges only names that can never sign in."""
    given = credentials or getattr(request, "POST", {})
    username = given.get(settings.AXES_USERNAME_FORM_FIELD)
    if not isinstance(username, str):
        return None
    return username.replace("\x00", "")[:255]


def _address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


class LoginThrottle(AxesDatabaseHandler):
    """Axes' database handler with a bound per (username, address) and a higher one per address.

    Axes has one failure limit for all its lockout parameters; AXES_LOCKOUT_PARAMETERS lists
    (username, address) first and address second, and this counts the second against
    ADDRESS_FACTOR times the limit.
    """

    def get_failures(self, request, credentials=None) -> int:
        per_username, per_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        limit = get_failure_limit(request, credentials)
        if per_address >= limit * ADDRESS_FACTOR:
            return max(per_username, limit)
        return per_username


def locked_out(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets (axes' AXES_LOCKOUT_CALLABLE): 429, and when to retry."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = render(request, "registration/locked_out.html", {"minutes": seconds // 60}, status=429)
    response["Retry-After"] = str(seconds)
    return response
