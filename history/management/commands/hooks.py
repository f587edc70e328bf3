"""`manage.py hooks token REFERENCE`: a repository's own push-event token, printed once (or revoked)."""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Repository
from catalog.oci.reference import InvalidReference, parse


class Command(BaseCommand):
    help = (
        "Push events: make a watched repository's own token for POST /hooks/registry/<token> "
        "(it triggers polls of that repository only, matched by name whatever host the event names), "
        "or revoke it. The token is printed this once; only its SHA-256 is kept."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        token = actions.add_parser("token", help="Make (or, with --revoke, revoke) a repository's token.")
        token.add_argument(
            "reference", metavar="REPOSITORY", help="A watched repository, e.g. ghcr.io/o/app."
        )
        token.add_argument("--revoke", action="store_true", help="Revoke the repository's token.")

    def handle(self, *args, action, reference, revoke, **options):
        repository = self.watched(reference)
        if revoke:
            if repository.revoke_hook_token():
                self.stdout.write(f"Revoked the push-event token of {repository.reference}.")
            else:
                self.stdout.write(f"{repository.reference} has no push-event token.")
            return
        secret = repository.issue_hook_token()
        self.stderr.write(
            f"Push-event token of {repository.reference} (any earlier one no longer works), shown this "
            f"once; send events to /hooks/registry/<token>:"
        )
        self.stdout.write(secret)

    def watched(self, text: str) -> Repository:
        try:
            repository = Repository.objects.named(text)
        except InvalidReference as error:
            raise CommandError(f"{text[:200]!r}: {error}") from None
        if repository is None:
            raise CommandError(f"{parse(text.strip()).name} is not watched")
        return repository
