"""`manage.py token`: create (prints the secret once), list and revoke API tokens."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.text import aligned
from tagledger.tokens.models import MAX_NAME, PREFIX_LENGTH, SCHEME, ApiToken
from tagledger.tokens.views import clean_name


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


class Command(BaseCommand):
    help = "Create, list or revoke API tokens (sent as 'Authorization: Bearer <token>' to /api/v1/)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Issue a token and print its secret (shown once).")
        create.add_argument("username")
        create.add_argument("--name", required=True, help=f"What it is for (up to {MAX_NAME} characters).")
        create.add_argument("--staff", action="store_true", help="Staff scope (a staff user only).")
        listing = actions.add_parser("list", help="List tokens, a user's or everyone's.")
        listing.add_argument("username", nargs="?")
        revoke = actions.add_parser("revoke", help="Revoke a token by its id or its prefix.")
        revoke.add_argument("token", help=f"An id from 'token list', or its prefix ({SCHEME}… or not).")

    def handle(self, *args, action, **options):
        return getattr(self, f"_{action}")(**options)

    def _user(self, username: str):
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None

    def _create(self, username, name, staff, **options):
        user = self._user(username)
        try:
            issued = ApiToken.objects.issue(user, clean_name(name), staff=staff)
        except ValueError as error:
            raise CommandError(str(error)) from None
        token = issued.token
        self.stderr.write(
            f"Token {token.pk} ({token.display_prefix}, {token.scope}) for {username}. "
            "Its secret, shown this once (only its hash is kept):"
        )
        self.stdout.write(issued.secret)

    def _list(self, username=None, **options):
        tokens = ApiToken.objects.select_related("user").order_by("-created_at", "-pk")
        if username:
            tokens = tokens.filter(user=self._user(username))
        rows = [("ID", "PREFIX", "USER", "SCOPE", "CREATED", "LAST USED", "REVOKED", "NAME")]
        rows += [
            (
                str(token.pk),
                token.display_prefix,
                token.user.get_username(),
                token.scope,
                _when(token.created_at),
                _when(token.last_used_at),
                _when(token.revoked_at),
                token.name,
            )
            for token in tokens
        ]
        for line in aligned(rows):
            self.stdout.write(line)

    def _revoke(self, token, **options):
        wanted = token.strip()
        if wanted.isascii() and wanted.isdigit() and len(wanted) < 19:
            found = ApiToken.objects.filter(pk=int(wanted)).first()
        else:
            prefix = wanted.removeprefix(SCHEME).rstrip("…")[:PREFIX_LENGTH]
            found = ApiToken.objects.filter(prefix=prefix).first() if len(prefix) == PREFIX_LENGTH else None
        if found is None:
            raise CommandError(f"no token {token!r}: give an id or a prefix from 'manage.py token list'")
        if not found.revoke():
            raise CommandError(f"token {found.pk} ({found.display_prefix}) was already revoked")
        self.stdout.write(
            f"Revoked token {found.pk} ({found.display_prefix}) of {found.user.get_username()}."
        )
