"""`manage.py notify`: subscribe webhooks to tag events (add, list, test, remove, enable, disable).

The same operations as the notifications page and /api/v1/subscriptions: history.notify subscribes,
history.delivery_log reads and describes (masked URLs, never a secret after `add`)."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.text import aligned
from history import delivery_log, notify
from history.models import Delivery, PinList, Subscription
from history.serializers import ExactTimes

FAILED, USAGE = 1, 2
MAX_ID = 2**31 - 1
MAX_SHOWN = 80


class Command(BaseCommand):
    help = (
        "Webhooks told about tag events: `notify add URL` subscribes one (its secret is printed once), "
        "`list`, `test ID` (send a test message now), `remove ID`, `enable ID`, `disable ID`."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="ACTION", parser_class=UsageParser
        )
        adding = actions.add_parser(
            "add",
            help="Subscribe URL to tag events; prints its id and its signing secret (shown once).",
            description=(
                "Subscribe URL to the events of one poll after another, batched (TAGLEDGER_NOTIFY_BATCH "
                "events per message). Each choice narrows what is sent; none: every event of every "
                "repository. Kinds: "
                + "; ".join(f"{kind}: {said}" for kind, said in notify.KINDS.items())
                + ". The body is signed: X-Tagledger-Signature is sha256=HMAC-SHA256(secret, body)."
            ),
        )
        adding.add_argument("url", metavar="URL", help="Where to POST: http(s), a public address.")
        adding.add_argument(
            "--format",
            choices=Subscription.Format.values,
            default=Subscription.Format.JSON,
            help="json (tagledger's), slack (Slack and Mattermost incoming webhooks) or cloudevents.",
        )
        adding.add_argument("--secret", help="The signing secret (16-256 printable ASCII); default: made.")
        adding.add_argument(
            "--name", default="", help=f"What it is for (up to {notify.MAX_NAME} characters)."
        )
        adding.add_argument(
            "--repository", metavar="REF", help="Only this watched repository (registry/name)."
        )
        adding.add_argument(
            "--tag", metavar="REGEX", default="", help="Only tags this regular expression finds."
        )
        adding.add_argument(
            "--kind",
            dest="kinds",
            action="extend",
            nargs="+",
            default=[],
            metavar="KIND",
            help=f"Only these kinds (repeatable): {', '.join(notify.KINDS)}.",
        )
        adding.add_argument(
            "--line", metavar="LINE", help="Only builds of this line of --repository (3.14, 3.14-slim)."
        )
        adding.add_argument(
            "--version", metavar="VERSION", help="Only builds of this version of --repository (3.14.2)."
        )
        adding.add_argument(
            "--pin-list",
            type=_id,
            metavar="ID",
            help="Also tell when a pin of this saved pin list falls further behind (kind pin_behind).",
        )
        adding.add_argument(
            "--json", dest="as_json", action="store_true", help="Print the subscription and secret as JSON."
        )
        listing = actions.add_parser("list", help="List subscriptions (URLs masked, secrets never shown).")
        listing.add_argument(
            "--json", dest="as_json", action="store_true", help="Print what GET /api/v1/subscriptions does."
        )
        testing = actions.add_parser("test", help="Send a test message now; exit 1 when it is not delivered.")
        testing.add_argument("id", type=_id, metavar="ID")
        testing.add_argument(
            "--json", dest="as_json", action="store_true", help="Print the delivery as the log shows it."
        )
        removing = actions.add_parser("remove", help="Remove a subscription and its delivery log.")
        removing.add_argument("id", type=_id, metavar="ID")
        enabling = actions.add_parser("enable", help="Deliver to a disabled subscription again.")
        enabling.add_argument("id", type=_id, metavar="ID")
        disabling = actions.add_parser("disable", help="Stop delivering to a subscription.")
        disabling.add_argument("id", type=_id, metavar="ID")
        disabling.add_argument("--reason", default="disabled by hand", help="Shown beside it in the list.")

    def handle(self, *args, action, **options):
        return getattr(self, f"_{action}")(**options)

    def _add(self, url, format, secret, name, repository, tag, kinds, line, version, pin_list, **options):
        given = {"URL": url, "--secret": secret, "--name": name, "--repository": repository, "--tag": tag}
        given |= {"--line": line, "--version": version, "--kind": "".join(kinds)}
        for label, value in given.items():
            # PostgreSQL text cannot hold NUL: refused here rather than as a database error
            if value and "\x00" in value:
                raise CommandError(f"{label} must not contain NUL", returncode=USAGE)
        try:
            found = notify.find_repository(repository) if repository else None
            chosen_line = self._named("line", found, line) if line else None
            chosen_version = self._named("version", found, version) if version else None
            chosen_pins = None
            if pin_list is not None:
                chosen_pins = PinList.objects.filter(pk=pin_list).first()
                if chosen_pins is None:
                    raise CommandError(f"--pin-list: no pin list {pin_list}", returncode=USAGE)
            subscription, made = notify.subscribe(
                url=url, format=format, secret=secret, repository=found, tag_pattern=tag, kinds=kinds,
                line=chosen_line, version=chosen_version, pin_list=chosen_pins, name=name,
            )  # fmt: skip
        except notify.SubscriptionError as refused:
            raise CommandError(str(refused), returncode=USAGE) from None
        shown = delivery_log.subscription_data(delivery_log.subscriptions().get(pk=subscription.pk))
        if options["as_json"]:
            self.stdout.write(_dumps({**shown, "secret": made}))
            return
        self.stdout.write(
            f"Subscription {subscription.pk}: {printable(shown['url'])} ({subscription.format}), "
            f"{printable(shown['filters'])}."
        )
        self.stdout.write("Its signing secret, shown this once (X-Tagledger-Signature signs with it):")
        self.stdout.write(made)

    def _named(self, field: str, repository, shown: str):
        if repository is None:
            raise CommandError(
                f"--{field} names a {field} of one repository: give --repository too", returncode=USAGE
            )
        model = Subscription._meta.get_field(field).related_model
        found = delivery_log.named(model, repository, shown.strip())
        if found is None:
            raise CommandError(f"{repository} has no {field} {_quoted(shown)}", returncode=USAGE)
        return found

    def _list(self, as_json: bool = False, **options):
        found = [
            delivery_log.subscription_data(subscription) for subscription in delivery_log.subscriptions()
        ]
        if as_json:
            self.stdout.write(_dumps(found))
            return
        if not found:
            self.stdout.write("no subscriptions; add one with: manage.py notify add URL")
            return
        rows = [("ID", "STATE", "FORMAT", "FAILURES", "LAST", "URL", "CHOOSES")]
        rows += [
            (
                str(data["id"]),
                "enabled" if data["enabled"] else "disabled",
                data["format"],
                str(data["consecutive_failures"]),
                data["last_status"] or "-",
                shortened(printable(data["url"])),
                printable((data["name"] + ": " if data["name"] else "") + data["filters"]),
            )
            for data in found
        ]
        for line in aligned(rows):
            self.stdout.write(line)
        for data in found:
            if not data["enabled"] and data["disabled_reason"]:
                self.stdout.write(
                    f"{data['id']}: disabled: {shortened(printable(data['disabled_reason']), 200)}"
                )

    def _test(self, id, as_json=False, **options):
        delivery = notify.send_test(self._subscription(id))
        data = delivery_log.delivery_data(delivery_log.entry(delivery.pk))
        if as_json:
            self.stdout.write(_dumps(data))
        elif delivery.status == Delivery.Status.DELIVERED:
            self.stdout.write(f"delivered: HTTP {delivery.response_code} in {delivery.latency_ms} ms")
        if delivery.status != Delivery.Status.DELIVERED:
            raise CommandError(
                f"not delivered: {printable(data['error'] or delivery.status)}", returncode=FAILED
            )

    def _remove(self, id, **options):
        subscription = self._subscription(id)
        shown = printable(delivery_log.label(subscription))
        subscription.delete()
        self.stdout.write(f"Removed subscription {id} ({shortened(shown)}) and its delivery log.")

    def _enable(self, id, **options):
        subscription = self._subscription(id)
        was = subscription.enabled
        notify.enable(subscription)
        self.stdout.write(f"Subscription {id} {'was already' if was else 'is'} enabled.")

    def _disable(self, id, reason, **options):
        reason = printable(reason.strip())[:500] or "disabled by hand"
        subscription = self._subscription(id)
        notify.disable(subscription, reason)
        self.stdout.write(f"Subscription {id} is disabled: nothing is sent to it until `notify enable {id}`.")

    def _subscription(self, pk: int) -> Subscription:
        found = delivery_log.subscriptions().filter(pk=pk).first()
        if found is None:
            raise CommandError(f"no subscription {pk}: see manage.py notify list", returncode=USAGE)
        return found


class UsageParser(CommandParser):
    """A subcommand's parser whose refusals are usage errors (2) under call_command too, as they
    are on the command line, where argparse exits with 2."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"Error: {message}", returncode=USAGE)


def _id(text: str) -> int:
    """A subscription's or pin list's id, as argparse's type: its error is the command's usage error."""
    import argparse

    if not (text.isascii() and text.isdigit() and 0 < len(text) < 11 and 0 < int(text) <= MAX_ID):
        raise argparse.ArgumentTypeError(f"{_quoted(text)} is not an id (a whole number from `notify list`)")
    return int(text)


def _dumps(value) -> str:
    return json.dumps(value, cls=ExactTimes, indent=2, ensure_ascii=False)


def _quoted(text: str) -> str:
    return repr(shortened(printable(text)))


def printable(text: str) -> str:
    """Stored text for a terminal: no control characters (an escape sequence must not drive it)."""
    return "".join(character if character.isprintable() else "?" for character in str(text))


def shortened(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
