"""`manage.py pins check FILE`: the pins CI gate; exits 1 when a pin of a Dockerfile, compose file
or list fails the policy (history.pin_gate), 2 when the file cannot be read."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from history.pin_gate import Policy, Verdict, gate
from history.pins import MAX_INPUT, PinError, PinResult
from history.wording import plural

PASSED, FAILED, USAGE = 0, 1, 2
# A UTF-8 character is at most 4 bytes: a file longer than this is past MAX_INPUT characters
# whatever it holds, and is refused before it is read whole.
MAX_BYTES = 4 * MAX_INPUT
MAX_SHOWN = 80  # characters of an unreadable line, or a version from a label, in the table


class Command(BaseCommand):
    help = "Pinned references: `pins check FILE` is a CI gate over a Dockerfile, compose file or list."
    stealth_options = ("stdin",)  # tests give `-` a stream

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        checking = actions.add_parser(
            "check",
            help="Check a file's pins against recorded history; exit 1 when one fails.",
            description=(
                "Read FILE as the pin check page reads pasted text (FROM lines of a Dockerfile, image: "
                "lines of a compose file or Kubernetes manifest, or one reference per line), print each "
                "pin's status and the reference to pin to now, and exit 0 when every pin passes, 1 when "
                "one fails, 2 when FILE cannot be read. A pin fails when it is more than --max-behind "
                "builds behind its tag, not a build of its tag, unknown to tagledger or unreadable "
                "(unless --allow-unknown), not pinned to a digest (unless --allow-unpinned), or, with "
                "--fail-on-inactive, when its tag's version gets no new builds. A pin newer than its tag "
                "(a newer build of its version or line) passes."
            ),
        )
        checking.add_argument("file", metavar="FILE", help="The file to check; - reads standard input.")
        checking.add_argument(
            "--max-behind",
            type=int,
            default=0,
            metavar="N",
            help="Builds a pin may be behind its tag and still pass (default 0: only the current build).",
        )
        checking.add_argument(
            "--fail-on-inactive", action="store_true", help="Fail pins whose tag's version is inactive."
        )
        checking.add_argument(
            "--allow-unknown",
            action="store_true",
            help="Pass pins tagledger cannot check (an unwatched repository, an unknown tag or digest, "
            "an unreadable line) instead of failing them.",
        )
        checking.add_argument(
            "--allow-unpinned",
            action="store_true",
            help="Pass references without a digest (FROM python:3.12) instead of failing them.",
        )
        checking.add_argument(
            "--json", action="store_true", help="Print the API's body (POST /api/v1/pins/check)."
        )

    def handle(self, *args, **options):
        if options["max_behind"] < 0:
            raise CommandError("--max-behind must be 0 or more", returncode=USAGE)
        text = read_text(options["file"], options.get("stdin") or sys.stdin)
        policy = Policy(
            max_behind=options["max_behind"],
            fail_on_inactive=options["fail_on_inactive"],
            allow_unknown=options["allow_unknown"],
            allow_unpinned=options["allow_unpinned"],
        )
        try:
            verdict = gate(text, policy)
        except PinError as refused:
            raise CommandError(f"{options['file']}: {refused}", returncode=USAGE) from None
        if options["json"]:
            self.stdout.write(json.dumps(verdict.as_dict(), indent=2))
        else:
            self.print_table(verdict)
        if not verdict.ok:
            raise CommandError(
                f"{plural(len(verdict.failed), 'pin')} of {len(verdict.pins)} failed", returncode=FAILED
            )

    def print_table(self, verdict: Verdict) -> None:
        if not verdict.pins:
            self.stdout.write("no references found")
            return
        failed = {failure.pin.line: failure.reason for failure in verdict.failed}
        header = ["LINE", "REFERENCE", "STATUS", "BEHIND", "VERSION", "PIN TO NOW"]
        rows = [header, *(row(pin, failed.get(pin.line)) for pin in verdict.pins)]
        widths = [max(len(line[column]) for line in rows) for column in range(len(header) - 1)]
        for line in rows:
            columns = [value.ljust(width) for value, width in zip(line, widths, strict=False)] + line[-1:]
            self.stdout.write("  ".join(columns).rstrip())
        for pin in verdict.pins:
            if pin.line in failed:
                self.stdout.write(f"line {pin.line}: FAIL {failed[pin.line]}: {printable(pin.message)}")


def row(pin: PinResult, failure: str | None) -> list[str]:
    status = pin.label + (" FAIL" if failure else "")
    behind = "" if pin.builds_behind is None else str(pin.builds_behind)
    version = (pin.version or "") + (" (inactive)" if pin.version_inactive else "")
    return [
        str(pin.line),
        # a reference whole (it is what one copies); a line it could not read, its start
        pin.reference or shortened(printable(pin.text)),
        status,
        behind,
        shortened(printable(version)),
        pin.current_reference or "",
    ]


def printable(text: str) -> str:
    """A line of the file or a version from a label, for a terminal: no control characters (an
    escape sequence in a file must not drive the CI log)."""
    return "".join(character if character.isprintable() else "?" for character in text)


def shortened(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def read_text(name: str, stdin) -> str:
    """The file as text, or a CommandError with exit code 2 saying why it cannot be checked."""
    try:
        if name == "-":
            data = stdin.buffer.read(MAX_BYTES + 1) if hasattr(stdin, "buffer") else stdin.read(MAX_BYTES + 1)
        else:
            with open(name, "rb") as file:
                data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CommandError(f"{name}: no such file", returncode=USAGE) from None
    except IsADirectoryError:
        raise CommandError(f"{name}: is a directory, not a file", returncode=USAGE) from None
    except OSError as error:
        raise CommandError(f"{name}: cannot read it ({error.strerror or error})", returncode=USAGE) from None
    if isinstance(data, str):  # a text stream
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BYTES:
        raise CommandError(
            f"{name}: too large (at most {MAX_INPUT // 1024} KiB of text); split it", returncode=USAGE
        )
    if b"\x00" in data:
        raise CommandError(f"{name}: holds NUL bytes: a binary file, not text", returncode=USAGE)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{name}: not UTF-8 text (byte {error.start} cannot be read)", returncode=USAGE
        ) from None
