"""Who may read: everyone when TAGLEDGER_PUBLIC is set, otherwise signed-in users."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login


def readable(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if settings.TAGLEDGER_PUBLIC or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path())

    return wrapper
