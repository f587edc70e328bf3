"""POST /hooks/registry/<token>: a registry's push events trigger polls (history.triggers).

Fast and quiet: it reads the body, looks up the watched repositories and enqueues; it never talks
to the registry. A wrong token is a 404, as is every token while no hook token is configured, so
the URL tells nothing to whom does not hold one.
"""

import hmac

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from catalog.models import Repository

from .. import hook_counts, hooks, triggers

EVERY_REPOSITORY = object()  # what TAGLEDGER_HOOK_TOKEN opens, where a repository's token opens one


@csrf_exempt  # registries send no cookie and no CSRF token: the token in the URL is the credential
@require_POST
def registry_push(request, token: str):
    scope = _scope_of(token)
    if scope is None:
        hook_counts.record("denied")
        raise Http404("no such hook")
    try:
        # Refused unread when announced too large; else read one byte past the cap to tell.
        if _declared_length(request) > hooks.MAX_BODY:
            raise hooks.HookRefused(f"the body is larger than {hooks.MAX_BODY} bytes", status=413)
        body = request.read(hooks.MAX_BODY + 1)
        read = hooks.read(body, request.META.get("CONTENT_TYPE", ""))
    except hooks.HookRefused as refused:
        hook_counts.record("refused")
        return JsonResponse({"error": str(refused)}, status=refused.status)
    only = None if scope is EVERY_REPOSITORY else scope
    polls = sum(triggers.trigger(repository) for repository in triggers.watched(read.pushes, only=only))
    hook_counts.record("polled" if polls else "quiet")
    answer = {"accepted": len(read.pushes), "polls": polls}
    if read.skipped:
        answer["skipped"] = read.skipped
    return JsonResponse(answer, status=202)


def _scope_of(token: str):
    """EVERY_REPOSITORY for the configured token, the repository of its own token, else None."""
    given = token.encode("utf-8", "surrogatepass")
    configured = settings.TAGLEDGER_HOOK_TOKEN
    if configured and hmac.compare_digest(given, configured.encode()):
        return EVERY_REPOSITORY
    # Looked up by its SHA-256: the digest of a wrong token tells nothing about a right one.
    return Repository.objects.by_hook_token(token).select_related("registry").first()


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # the WSGI layer reads nothing then either
